// Whole-workload checks on every backend of this build (the reference included):
// - prefill + incremental decode gives the logits of one full forward over the same tokens;
// - the inference forward gives the training forward's logits;
// - on the tiny model with a fixed seed the loss falls over 20 steps, and each backend's losses
//   agree with the reference's step by step;
// - at bf16 (mixed precision), on backends that run it: the canaries pass, the losses follow the
//   same backend's fp32 losses, and the bf16 weights are the fp32 master copy rounded.
#include <gtest/gtest.h>

#include "harness/config_files.h"
#include "harness/suite.h"
#include "test_util.h"
#include "workloads/inference.h"
#include "workloads/train_step.h"

namespace capbench::testing {
namespace {

std::vector<std::string> all_backends() {
  std::vector<std::string> out = builtin_registry().names();
  for (const UnavailableBackend& u : builtin_registry().unavailable()) out.push_back(u.name);
  return out;
}

ModelConfig tiny() {
  return load_model_config("tiny", default_config_dir());
}

// Emulation measures the host's rate on the products a decode step streams: the inference
// workload names every weight a forward pass multiplies one row by (Q, K and V as the one product
// layer_forward issues, then wo, gate/up, down and the head); a training step names none.
TEST(WorkloadShapes, InferenceNamesTheOneRowProductsItStreams) {
  const ModelConfig cfg = load_model_config("llama-350m", default_config_dir());
  const int64_t d = cfg.d_model;
  const std::vector<std::pair<int64_t, int64_t>> expected = {{d, cfg.q_dim() + 2 * cfg.kv_dim()},
                                                             {cfg.q_dim(), d},
                                                             {d, 2 * cfg.d_ff},
                                                             {cfg.d_ff, d},
                                                             {d, cfg.vocab}};
  ASSERT_NE(find_workload("inference"), nullptr);
  EXPECT_EQ(find_workload("inference")->one_row_products(cfg), expected);
  EXPECT_TRUE(find_workload("train_step")->one_row_products(cfg).empty());
}

class Workloads : public BackendFixture {};

TEST_P(Workloads, IncrementalDecodeEqualsFullForward) {
  const ModelConfig cfg = tiny();
  const int64_t batch = 3, prompt = 9, steps = 6, total = prompt + steps;
  Model model(*be_, cfg, /*seed=*/3, /*training=*/false);
  std::vector<int32_t> stream, unused;
  synthetic_batch(cfg, batch, total, 21, &stream, &unused);
  // Random tokens rather than the learnable stream: nothing about them is predictable.
  std::mt19937_64 rng(99);
  for (int32_t& t : stream) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(cfg.vocab));

  TensorStore store(*be_);
  const Tensor all = store.make(DType::i32, {batch, total});
  be_->copy_to_device(all.data, stream.data(), all.bytes());

  // Full forward over every position.
  InferencePass full_graph(model, batch, total, total);
  const std::vector<float> full = download_floats(*be_, full_graph.forward(all, 0));

  // Prefill the prompt, then one token per step.
  InferencePass graph(model, batch, prompt, total);
  std::vector<int32_t> prompt_host, step_host(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b)
    prompt_host.insert(prompt_host.end(), stream.begin() + b * total,
                       stream.begin() + b * total + prompt);
  const Tensor prompt_dev = store.make(DType::i32, {batch, prompt});
  const Tensor step_dev = store.make(DType::i32, {batch, 1});
  be_->copy_to_device(prompt_dev.data, prompt_host.data(), prompt_dev.bytes());
  const std::vector<float> pre = download_floats(*be_, graph.forward(prompt_dev, 0));

  const int64_t v = cfg.vocab;
  auto full_row = [&](int64_t b, int64_t pos) {
    return std::vector<float>(full.begin() + (b * total + pos) * v,
                              full.begin() + (b * total + pos + 1) * v);
  };
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t p = 0; p < prompt; ++p) {
      const std::vector<float> row(pre.begin() + (b * prompt + p) * v,
                                   pre.begin() + (b * prompt + p + 1) * v);
      EXPECT_LE(normalized_error(row, full_row(b, p)), kTolF32) << "prefill b" << b << " p" << p;
    }
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t b = 0; b < batch; ++b)
      step_host[static_cast<size_t>(b)] = stream[static_cast<size_t>(b * total + prompt + s)];
    be_->copy_to_device(step_dev.data, step_host.data(), step_dev.bytes());
    const std::vector<float> inc = download_floats(*be_, graph.forward(step_dev, prompt + s));
    for (int64_t b = 0; b < batch; ++b) {
      const std::vector<float> row(inc.begin() + b * v, inc.begin() + (b + 1) * v);
      EXPECT_LE(normalized_error(row, full_row(b, prompt + s)), kTolF32)
          << "decode step " << s << " sequence " << b;
    }
  }
}

TEST_P(Workloads, InferenceCanaryPasses) {
  Inference work(*be_, tiny(), 2, 11, 4, 5);
  EXPECT_LE(work.kv_consistency_error(), 1e-4);
}

TEST_P(Workloads, InferenceForwardEqualsTrainingForward) {
  const ModelConfig cfg = tiny();
  const int64_t batch = 2, seq = 12;
  Model model(*be_, cfg, 8, /*training=*/true);
  TrainingPass train(model, batch, seq);
  std::vector<int32_t> tokens, targets;
  synthetic_batch(cfg, batch, seq, 4, &tokens, &targets);
  train.set_batch(tokens, targets);
  train.forward();
  const std::vector<float> train_logits = download_floats(*be_, train.logits());

  InferencePass infer(model, batch, seq, seq);
  TensorStore store(*be_);
  const Tensor tok = store.make(DType::i32, {batch, seq});
  be_->copy_to_device(tok.data, tokens.data(), tok.bytes());
  const std::vector<float> infer_logits = download_floats(*be_, infer.forward(tok, 0));
  EXPECT_LE(normalized_error(infer_logits, train_logits), kTolF32);
}

std::vector<double> train_losses(Backend& be, int steps, DType dtype = DType::f32) {
  AdamWArgs opt;
  opt.lr = 3e-3f;
  TrainStep work(be, tiny(), /*batch=*/4, /*seq=*/16, /*seed=*/7, opt, dtype);
  return run_steps(work, steps);
}

TEST_P(Workloads, TrainingLossFallsOverTwentySteps) {
  const std::vector<double> losses = train_losses(*be_, 20);
  for (double l : losses) ASSERT_TRUE(std::isfinite(l));
  // At init the loss is about ln(vocab); 20 AdamW steps on a learnable stream cut it well down.
  EXPECT_NEAR(losses.front(), std::log(256.0), 0.5);
  EXPECT_LT(losses.back(), 0.8 * losses.front())
      << "loss " << losses.front() << " -> " << losses.back();
}

class AgreesWithReference : public Workloads {};

TEST_P(AgreesWithReference, TrainingLossesStepByStep) {
  auto ref = make_backend("reference");
  const std::vector<double> expected = train_losses(*ref, 20);
  const std::vector<double> got = train_losses(*be_, 20);
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(got[i], expected[i], 1e-3 * std::fabs(expected[i])) << "step " << i + 1;
}

class Bf16Workloads : public Workloads {
 protected:
  void SetUp() override {
    Workloads::SetUp();
    if (IsSkipped()) return;
    for (int op = 0; op < kOpCount; ++op)
      if (const Support s = be_->supports(static_cast<OpId>(op), DType::bf16); !s.ok)
        GTEST_SKIP() << GetParam() << " does not run bf16: " << s.reason;
  }
};

TEST_P(Bf16Workloads, InferenceCanaryPasses) {
  Inference work(*be_, tiny(), 2, 11, 4, 5, DType::bf16);
  const double err = work.kv_consistency_error();
  // The runner's bf16 tolerance; a cache bug (wrong position, stale row) is off by O(1).
  EXPECT_LE(err, 2e-2);
  EXPECT_GT(err, 0.0) << "bf16 rounding should make incremental and full differ a little";
}

TEST_P(Bf16Workloads, TrainingLossFallsAndFollowsFp32) {
  const std::vector<double> fp32 = train_losses(*be_, 20);
  const std::vector<double> bf16 = train_losses(*be_, 20, DType::bf16);
  for (double l : bf16) ASSERT_TRUE(std::isfinite(l));
  EXPECT_LT(bf16.back(), 0.8 * bf16.front()) << "loss " << bf16.front() << " -> " << bf16.back();
  // Same data, same initial weights, rounding apart: within a few percent at every step.
  for (size_t i = 0; i < fp32.size(); ++i)
    EXPECT_NEAR(bf16[i], fp32[i], 0.03 * fp32[i]) << "step " << i + 1;
}

TEST_P(Bf16Workloads, ComputeWeightsAreTheMasterRoundedAfterEachStep) {
  AdamWArgs opt;
  opt.lr = 1e-2f;
  TrainStep work(*be_, tiny(), 2, 8, 3, opt, DType::bf16);
  for (int i = 0; i < 2; ++i) work.run();
  const Model& model = work.model();
  ASSERT_EQ(model.params_flat().dtype, DType::f32);
  const Tensor& head = model.weights().head;  // the last tensor of the flat layout
  ASSERT_EQ(head.dtype, DType::bf16);
  const std::vector<float> master = model.download(model.params_flat());
  const std::vector<float> compute = download_floats(*be_, head);
  const size_t offset = master.size() - compute.size();
  size_t mismatches = 0;
  for (size_t i = 0; i < compute.size(); ++i)
    mismatches += compute[i] != bf16_to_float(float_to_bf16(master[offset + i]));
  EXPECT_EQ(mismatches, 0u) << "of " << compute.size() << " head weights";
}

TEST_P(Bf16Workloads, InferenceModelHoldsHalfTheBytes) {
  const Model fp32(*be_, tiny(), 1, /*training=*/false);
  const Model bf16(*be_, tiny(), 1, /*training=*/false, DType::bf16);
  EXPECT_EQ(bf16.bytes() * 2, fp32.bytes());
}

INSTANTIATE_TEST_SUITE_P(Backends, Bf16Workloads, ::testing::ValuesIn(backends_under_test()),
                         backend_test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Bf16Workloads);

INSTANTIATE_TEST_SUITE_P(Backends, Workloads, ::testing::ValuesIn(all_backends()),
                         backend_test_name);
INSTANTIATE_TEST_SUITE_P(Backends, AgreesWithReference, ::testing::ValuesIn(backends_under_test()),
                         backend_test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(AgreesWithReference);

}  // namespace
}  // namespace capbench::testing
