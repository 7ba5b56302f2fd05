// The oracle's whole-model backward against central finite differences of its own forward, on
// the tiny model. For each parameter tensor, a random ±1 direction d: the numeric directional
// derivative (L(p + εd) - L(p - εd)) / 2ε must match the analytic g·d.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backends/reference/reference_backend.h"
#include "test_util.h"
#include "workloads/train_step.h"

namespace capbench::testing {
namespace {

ModelConfig tiny_config() {
  // The shipped tiny model's shape, made smaller still: finite differences need many forwards.
  ModelConfig cfg;
  cfg.name = "gradcheck";
  cfg.d_model = 16;
  cfg.n_layers = 2;
  cfg.n_heads = 4;
  cfg.n_kv_heads = 2;
  cfg.d_ff = 24;
  cfg.vocab = 37;
  cfg.max_seq = 16;
  return cfg;
}

TEST(GradCheck, ReferenceModelBackwardMatchesFiniteDifferences) {
  ReferenceBackend be;
  const ModelConfig cfg = tiny_config();
  const int64_t batch = 2, seq = 7;
  Model model(be, cfg, /*seed=*/11, /*training=*/true);
  TrainingPass graph(model, batch, seq);
  std::vector<int32_t> tokens, targets;
  synthetic_batch(cfg, batch, seq, 5, &tokens, &targets);
  graph.set_batch(tokens, targets);

  // Larger weights than the default init (std 0.02), so every path carries gradient well above
  // fp32 rounding, and norm weights away from 1.
  std::mt19937_64 rng(123);
  std::vector<float> params = random_floats(rng, param_count(cfg), 0.3f);
  model.upload_params(params);

  graph.forward();
  graph.backward();
  const std::vector<float> grads = model.download(model.grads_flat());

  const double eps = 1e-2;
  std::bernoulli_distribution coin(0.5);
  int checked = 0;
  for (const ParamSpec& spec : param_specs(cfg)) {
    int64_t n = 1;
    for (int64_t d : spec.shape) n *= d;
    std::vector<float> dir(static_cast<size_t>(n));
    double analytic = 0;
    for (int64_t i = 0; i < n; ++i) {
      dir[static_cast<size_t>(i)] = coin(rng) ? 1.0f : -1.0f;
      analytic += dir[static_cast<size_t>(i)] * grads[static_cast<size_t>(spec.offset + i)];
    }
    auto loss_at = [&](double sign) {
      std::vector<float> p = params;
      for (int64_t i = 0; i < n; ++i)
        p[static_cast<size_t>(spec.offset + i)] +=
            static_cast<float>(sign * eps * dir[static_cast<size_t>(i)]);
      model.upload_params(p);
      graph.forward();
      return graph.mean_loss();
    };
    const double numeric = (loss_at(+1) - loss_at(-1)) / (2 * eps);
    // 2% relative: a wrong gradient formula is off by far more; the floor covers fp32 noise in
    // the loss (~1e-7) divided by 2ε.
    EXPECT_NEAR(analytic, numeric, 0.02 * std::fabs(numeric) + 2e-5)
        << spec.name << ": analytic g·d " << analytic << " vs numeric " << numeric;
    EXPECT_GT(std::fabs(numeric), 1e-4) << spec.name << ": direction carries no gradient";
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(param_specs(cfg).size()));
}

}  // namespace
}  // namespace capbench::testing
