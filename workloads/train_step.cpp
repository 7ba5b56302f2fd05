#include "workloads/train_step.h"

namespace capbench {

void synthetic_batch(const ModelConfig& cfg, int64_t batch, int64_t seq, uint64_t seed,
                     std::vector<int32_t>* tokens, std::vector<int32_t>* targets) {
  tokens->assign(static_cast<size_t>(batch * seq), 0);
  targets->assign(static_cast<size_t>(batch * seq), 0);
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t b = 0; b < batch; ++b) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    int64_t tok = static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(cfg.vocab));
    for (int64_t t = 0; t < seq; ++t) {
      const int64_t next = (5 * tok + 17) % cfg.vocab;
      (*tokens)[static_cast<size_t>(b * seq + t)] = static_cast<int32_t>(tok);
      (*targets)[static_cast<size_t>(b * seq + t)] = static_cast<int32_t>(next);
      tok = next;
    }
  }
}

TrainStep::TrainStep(Backend& backend, const ModelConfig& cfg, int64_t batch, int64_t seq,
                     uint64_t seed, AdamWArgs optimizer, DType dtype)
    : model_(backend, cfg, seed, /*training=*/true, dtype),
      graph_(model_, batch, seq),
      optimizer_(optimizer),
      counters_(backend),
      captured_(backend) {
  std::vector<int32_t> tokens, targets;
  synthetic_batch(cfg, batch, seq, seed, &tokens, &targets);
  graph_.set_batch(tokens, targets);
  step_count_ = counters_.make(DType::f32, {1});
  one_ = counters_.make(DType::f32, {1});
  backend.fill(step_count_, 0.0f);
  backend.fill(one_, 1.0f);
  optimizer_.step_tensor = step_count_;
}

double TrainStep::footprint_bytes(const ModelConfig& cfg, int64_t batch, int64_t seq, DType dtype) {
  const double counters = 2 * sizeof(float);
  return model_bytes(cfg, true, dtype) + training_pass_bytes(cfg, batch, seq, dtype) + counters;
}

void TrainStep::run() {
  captured_.run(0, [this] {
    graph_.forward();
    graph_.backward();
    Backend& be = model_.backend();
    be.add(step_count_, step_count_, one_);
    graph_.optimizer_step(optimizer_);
    return Tensor{};
  });
}

int64_t TrainStep::steps_taken() {
  return static_cast<int64_t>(download_floats(model_.backend(), step_count_).at(0));
}

}  // namespace capbench
