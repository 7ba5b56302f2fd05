#include "workloads/inference.h"

#include <algorithm>
#include <cmath>

#include "workloads/train_step.h"

namespace capbench {
namespace {

// prompt + 1 rows lets the consistency canary run one full forward over P+1 tokens.
int64_t scratch_tokens(int64_t prompt) {
  return prompt + 1;
}
int64_t cache_capacity(int64_t prompt, int64_t decode_steps) {
  return std::max(prompt + decode_steps, prompt + 1);
}

}  // namespace

Inference::Inference(Backend& backend, const ModelConfig& cfg, int64_t batch, int64_t prompt,
                     int64_t decode_steps, uint64_t seed, DType dtype)
    : be_(backend),
      model_(backend, cfg, seed, /*training=*/false, dtype),
      batch_(batch),
      prompt_(prompt),
      decode_steps_(decode_steps),
      graph_(model_, batch, scratch_tokens(prompt), cache_capacity(prompt, decode_steps)),
      store_(backend),
      captured_(backend) {
  std::vector<int32_t> stream, unused;
  synthetic_batch(cfg, batch, prompt + std::max<int64_t>(decode_steps, 1), seed + 1, &stream,
                  &unused);
  const int64_t total = prompt + std::max<int64_t>(decode_steps, 1);
  std::vector<int32_t> prompt_host, decode_host(static_cast<size_t>(decode_steps * batch)),
      check_host, next_host;
  for (int64_t b = 0; b < batch; ++b) {
    const auto row = stream.begin() + b * total;
    prompt_host.insert(prompt_host.end(), row, row + prompt);
    check_host.insert(check_host.end(), row, row + prompt + 1);
    next_host.push_back(row[prompt]);
    for (int64_t s = 0; s < decode_steps; ++s)
      decode_host[static_cast<size_t>(s * batch + b)] = row[prompt + s];
  }
  prompt_tokens_ = store_.make(DType::i32, {batch, prompt});
  check_tokens_ = store_.make(DType::i32, {batch, prompt + 1});
  be_.copy_to_device(prompt_tokens_.data, prompt_host.data(), prompt_tokens_.bytes());
  be_.copy_to_device(check_tokens_.data, check_host.data(), check_tokens_.bytes());
  next_tokens_ = store_.make(DType::i32, {batch, 1});
  be_.copy_to_device(next_tokens_.data, next_host.data(), next_tokens_.bytes());
  if (decode_steps > 0) {
    decode_tokens_ = store_.make(DType::i32, {decode_steps, batch});
    be_.copy_to_device(decode_tokens_.data, decode_host.data(), decode_tokens_.bytes());
  }
}

Tensor Inference::prefill() {
  return captured_.run(-1, [this] { return graph_.forward(prompt_tokens_, 0); });
}

Tensor Inference::decode(int64_t step) {
  return captured_.run(step, [this, step] {
    const Tensor tokens(decode_tokens_.as<int32_t>() + step * batch_, DType::i32, {batch_, 1});
    return graph_.forward(tokens, prompt_ + step);
  });
}

double Inference::kv_consistency_error() {
  const int64_t vocab = model_.config().vocab;
  prefill();
  const std::vector<float> incremental =
      download_floats(be_, graph_.forward(next_tokens_, prompt_));
  const std::vector<float> full_host = download_floats(be_, graph_.forward(check_tokens_, 0));
  double max_diff = 0, max_abs = 0;
  for (int64_t b = 0; b < batch_; ++b)
    for (int64_t j = 0; j < vocab; ++j) {
      const double f = full_host[static_cast<size_t>((b * (prompt_ + 1) + prompt_) * vocab + j)];
      const double i = incremental[static_cast<size_t>(b * vocab + j)];
      max_diff = std::max(max_diff, std::fabs(f - i));
      max_abs = std::max(max_abs, std::fabs(f));
    }
  return max_abs > 0 ? max_diff / max_abs : max_diff;
}

double Inference::footprint_bytes(const ModelConfig& cfg, int64_t batch, int64_t prompt,
                                  int64_t decode_steps, DType dtype) {
  // Token ids: the prompt, the canary's prompt + 1 and its next token, every decode step's.
  const double tokens =
      4.0 * static_cast<double>(batch) * static_cast<double>(2 * prompt + 2 + decode_steps);
  return model_bytes(cfg, false, dtype) +
         inference_pass_bytes(cfg, batch, scratch_tokens(prompt),
                              cache_capacity(prompt, decode_steps), dtype) +
         tokens;
}

size_t Inference::memory_bytes() const {
  return model_.bytes() + graph_.activation_bytes() + store_.bytes();
}

}  // namespace capbench
