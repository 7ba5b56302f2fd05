#include "workloads/inference.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

#include "workloads/cost_model.h"
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
                     int64_t decode_steps, uint64_t seed, DType dtype, const TensorShard* shard)
    : be_(backend),
      model_(backend, cfg, seed, /*training=*/false, dtype, shard),
      batch_(batch),
      prompt_(prompt),
      decode_steps_(decode_steps),
      pass_(model_, batch, scratch_tokens(prompt), cache_capacity(prompt, decode_steps)),
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
  return captured_.run(-1, [this] { return pass_.forward(prompt_tokens_, 0); });
}

Tensor Inference::decode(int64_t step) {
  return captured_.run(step, [this, step] {
    const Tensor tokens(decode_tokens_.as<int32_t>() + step * batch_, DType::i32, {batch_, 1});
    return pass_.forward(tokens, prompt_ + step);
  });
}

double Inference::kv_consistency_error() {
  const int64_t vocab = model_.config().vocab;
  prefill();
  const std::vector<float> incremental = download_floats(be_, pass_.forward(next_tokens_, prompt_));
  const std::vector<float> full_host = download_floats(be_, pass_.forward(check_tokens_, 0));
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
  return model_.bytes() + pass_.activation_bytes() + store_.bytes();
}

// ---- the inference workload -------------------------------------------------------------------

namespace {

class InferenceRun final : public WorkloadRun {
 public:
  InferenceRun(Backend& backend, const WorkloadParams& p)
      : p_(p),
        shard_(p.shard()),
        work_(backend, p.model, p.shape.batch, p.shape.prompt, p.shape.decode_steps, p.seed,
              p.dtype, shard_ ? &*shard_ : nullptr) {}

  std::map<std::string, double> memory() const override {
    return {{"parameters_bytes", static_cast<double>(work_.model().bytes())},
            {"total_bytes", static_cast<double>(work_.memory_bytes())}};
  }
  bool use_graphs(bool wanted) override { return work_.use_graphs(wanted); }
  void capture() override {
    for (int i = 0; i < 2; ++i) {  // eager, then captured: neither is timed
      work_.prefill();
      for (int64_t s = 0; s < work_.decode_steps(); ++s) work_.decode(s);
    }
  }
  double repetition(bool warmup, Samples& samples, const Timer& timed) override {
    const double tp = timed([&] { work_.prefill(); });
    if (!warmup) samples["prefill_s"].push_back(tp);
    for (int64_t s = 0; s < work_.decode_steps(); ++s) {
      const double td = timed([&] { work_.decode(s); });
      if (!warmup) samples["decode_step_s"].push_back(td);
    }
    return 0.0;
  }
  std::vector<Canary> canaries() override {
    const double err = work_.kv_consistency_error();
    const double tolerance = p_.dtype == DType::f32 ? 1e-4 : 2e-2;
    return {{"kv_cache_matches_full_forward",
             err <= tolerance,
             fmt::format("max |incremental - full| / max |logit| = {:.3g} (tolerance {:.0e})", err,
                         tolerance),
             {err}}};
  }
  void profiled_pass(const std::function<void(size_t)>& phase_done) override {
    work_.use_graphs(false);  // op by op
    work_.prefill();
    phase_done(0);
    for (int64_t s = 0; s < work_.decode_steps(); ++s) work_.decode(s);
    phase_done(1);
  }

 private:
  WorkloadParams p_;
  std::optional<TensorShard> shard_;
  Inference work_;
};

class InferenceWorkload final : public Workload {
 public:
  std::string name() const override { return "inference"; }
  std::string description() const override {
    return "prefill of batch x prompt tokens, then decode_steps decode steps over a KV cache";
  }
  std::vector<SizeField> size_fields() const override {
    return {{"batch", &RunShape::batch, 1, kMaxBatch, false, 1, "", "Sequences per step"},
            {"prompt", &RunShape::prompt, 1, kMaxSeq, true, 0, "seq", "Inference prompt length"},
            {"decode_steps", &RunShape::decode_steps, 0, kMaxSeq, true, 0, "",
             "Inference decode steps"}};
  }
  std::string check(const ModelConfig& model, const RunShape& shape,
                    std::string* field) const override {
    // The cache holds prompt + decode_steps tokens, and the canary runs one forward over
    // prompt + 1.
    const int64_t length = shape.prompt + std::max<int64_t>(shape.decode_steps, 1);
    if (length <= model.max_seq) return "";
    *field = "prompt";
    return fmt::format("prompt + max(decode_steps, 1) at most the max_seq of model {} ({}), got {}",
                       model.name, model.max_seq, length);
  }
  double footprint_bytes(const WorkloadParams& p) const override {
    return Inference::footprint_bytes(p.rank_model(), p.shape.batch, p.shape.prompt,
                                      p.shape.decode_steps, p.dtype);
  }
  std::unique_ptr<WorkloadRun> build(Backend& backend, const WorkloadParams& p) const override {
    return std::make_unique<InferenceRun>(backend, p);
  }
  std::vector<std::pair<int64_t, int64_t>> one_row_products(
      const ModelConfig& model) const override {
    return one_row_product_shapes(model);
  }
  std::string primary_series(const RunShape& shape) const override {
    return shape.decode_steps > 0 ? "decode_step_s" : "prefill_s";
  }
  std::vector<Phase> phases(const RunShape& shape) const override {
    return {{"prefill", 1}, {"decode_step", static_cast<double>(shape.decode_steps)}};
  }
  std::string ops_unit(const RunShape& shape) const override {
    return fmt::format("one prefill + {} decode steps", shape.decode_steps);
  }
  DerivedMetrics metrics(const WorkloadParams& p,
                         const std::map<std::string, double>& medians) const override {
    const RunShape& shape = p.shape;
    const double ttft = medians.at("prefill_s");
    // Per rank, on its own shard; tokens are the job's (tensor-parallel ranks share them).
    const ModelConfig model = p.rank_model();
    const double prefill_flops = forward_model_flops(model, shape.batch, shape.prompt, 0);
    DerivedMetrics m;
    m.values = {{"ttft_ms", ttft * 1e3},
                {"prefill_tokens_per_s", static_cast<double>(shape.batch * shape.prompt) / ttft},
                {"prefill_flops_per_s", prefill_flops / ttft}};
    m.utilisations.push_back({"prefill_mfu", "prefill MFU", prefill_flops / ttft, true});
    if (shape.decode_steps > 0) {
      const double tpot = medians.at("decode_step_s");
      // Mean cache length over the decode steps: positions P+1 .. P+D are read.
      const int64_t mean_ctx = shape.prompt + (shape.decode_steps + 1) / 2;
      const double bytes = decode_step_min_bytes(model, shape.batch, mean_ctx, p.dtype, p.dtype);
      m.values["tpot_ms"] = tpot * 1e3;
      m.values["decode_tokens_per_s"] = static_cast<double>(shape.batch) / tpot;
      m.values["decode_bytes_per_step"] = bytes;
      m.values["decode_bytes_per_s"] = bytes / tpot;
      m.utilisations.push_back({"mbu", "MBU", bytes / tpot, false});
    }
    return m;
  }
  Headline headline(const std::map<std::string, double>& m) const override {
    auto get = [&](const char* k) { return m.count(k) ? m.at(k) : 0.0; };
    if (m.count("decode_tokens_per_s"))
      // The decode step's weight stream (bytes a step must read / TPOT): on a CPU at batch 1,
      // the rate the backend streams its weights.
      return {get("decode_tokens_per_s"), "decode tokens/s",
              fmt::format("TPOT {:.2f} / TTFT {:.1f} ms, {:.1f} GB/s", get("tpot_ms"),
                          get("ttft_ms"), get("decode_bytes_per_s") / 1e9),
              "mbu", "MBU"};
    return {get("prefill_tokens_per_s"), "prefill tokens/s",
            fmt::format("TTFT {:.1f} ms", get("ttft_ms")), "prefill_mfu", "prefill MFU"};
  }
};

}  // namespace

const Workload& inference_workload() {
  static const InferenceWorkload workload;
  return workload;
}

}  // namespace capbench
