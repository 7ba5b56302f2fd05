#include "workloads/train_step.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

#include "workloads/cost_model.h"

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
                     uint64_t seed, AdamWArgs optimizer, DType dtype, Communicator* comm,
                     const ParallelSpec& parallel, const TensorShard* shard)
    : model_(backend, cfg, seed, /*training=*/true, dtype, shard),
      pass_(model_, batch, seq),
      optimizer_(optimizer),
      counters_(backend),
      captured_(backend),
      comm_(comm && comm->world() > 1 ? comm : nullptr) {
  // Rank r's sequences are rows r·batch .. (r+1)·batch of the global batch, so that the job
  // trains on exactly what one process with world·batch sequences would.
  const int64_t world = comm_ ? comm_->world() : 1, rank = comm_ ? comm_->rank() : 0;
  std::vector<int32_t> tokens, targets;
  synthetic_batch(cfg, batch * world, seq, seed, &tokens, &targets);
  const auto mine = [&](const std::vector<int32_t>& all) {
    const auto first = all.begin() + rank * batch * seq;
    return std::vector<int32_t>(first, first + batch * seq);
  };
  pass_.set_batch(mine(tokens), mine(targets));
  if (comm_) {
    pass_.set_gradient_ranks(world);
    sync_ = std::make_unique<GradientSync>(*comm_, model_.grads_flat(), parallel.first_bucket_bytes,
                                           parallel.bucket_bytes, pass_.layers_offset());
  }
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
    pass_.forward();
    Backend& be = model_.backend();
    if (!sync_) {
      pass_.backward();
      be.add(step_count_, step_count_, one_);
      pass_.optimizer_step(optimizer_);
      return Tensor{};
    }
    // Data parallel: AdamW bucket by bucket, each as soon as its all-reduce is done.
    pass_.backward([this](int64_t from) { sync_->ready(from); });
    be.add(step_count_, step_count_, one_);
    sync_->finish(
        [this](int64_t begin, int64_t end) { pass_.optimizer_step(optimizer_, begin, end); });
    pass_.refresh_weights();
    return Tensor{};
  });
}

double TrainStep::loss() {
  std::vector<double> loss{pass_.mean_loss()};
  if (comm_) comm_->agree(loss, ReduceOp::average);
  return loss[0];
}

int64_t TrainStep::steps_taken() {
  return static_cast<int64_t>(download_floats(model_.backend(), step_count_).at(0));
}

// ---- the train_step workload ------------------------------------------------------------------

namespace {

AdamWArgs optimizer_of(const WorkloadParams& p) {
  AdamWArgs opt;
  opt.lr = static_cast<float>(p.learning_rate);
  return opt;
}

class TrainStepRun final : public WorkloadRun {
 public:
  TrainStepRun(Backend& backend, const WorkloadParams& p)
      : p_(p),
        shard_(p.shard()),
        work_(backend, p.model, p.shape.batch, p.shape.seq, p.seed, optimizer_of(p), p.dtype,
              p.comm, p.parallel, shard_ ? &*shard_ : nullptr) {}

  std::map<std::string, double> memory() const override {
    return {{"parameters_and_optimizer_bytes", static_cast<double>(work_.model().bytes())},
            {"total_bytes", static_cast<double>(work_.memory_bytes())}};
  }
  // Collectives run on the communicator's own thread, outside any device graph.
  bool use_graphs(bool wanted) override {
    return work_.use_graphs(wanted && !work_.gradient_sync());
  }
  void capture() override {
    for (int i = 0; i < 2; ++i) work_.run();  // eager, then captured: neither is timed
  }
  double repetition(bool warmup, Samples& samples, const Timer& timed) override {
    const double t = timed([&] { work_.run(); });
    if (!warmup) {
      samples["step_s"].push_back(t);
      if (const GradientSync* sync = work_.gradient_sync()) {
        samples["comm_s"].push_back(sync->last_comm_s());
        samples["exposed_comm_s"].push_back(sync->last_exposed_s());
      }
    }
    const double t0 = host_seconds_now();
    losses_.push_back(work_.loss());  // the canary's read, outside the timed step
    return host_seconds_now() - t0;
  }
  std::vector<Canary> canaries() override {
    // The canary compares the first and last loss. When a time cap stopped the loop after one
    // step (a slow backend on a large model), take one more, untimed, for it.
    const size_t timed_losses = losses_.size();
    while (losses_.size() < 2) {
      work_.run();
      losses_.push_back(work_.loss());
    }
    bool finite = true;
    for (double l : losses_) finite = finite && std::isfinite(l);
    Canary c{"loss_falls", finite && losses_.back() < losses_.front(), "", losses_};
    c.detail = fmt::format("loss {:.4f} -> {:.4f} over {} steps{}{}", losses_.front(),
                           losses_.back(), losses_.size(), finite ? "" : " (non-finite loss)",
                           timed_losses < losses_.size() ? " (one extra untimed step)" : "");
    return {c};
  }
  void profiled_pass(const std::function<void(size_t)>& phase_done) override {
    work_.use_graphs(false);  // op by op
    work_.run();
    phase_done(0);
  }
  std::map<std::string, double> observed() const override {
    if (losses_.empty()) return {};
    return {{"final_loss", losses_.back()}};
  }

 private:
  WorkloadParams p_;
  std::optional<TensorShard> shard_;
  TrainStep work_;
  std::vector<double> losses_;
};

class TrainStepWorkload final : public Workload {
 public:
  std::string name() const override { return "train_step"; }
  std::string description() const override {
    return "forward, loss, backward and AdamW over batch x seq tokens";
  }
  std::vector<SizeField> size_fields() const override {
    return {{"batch", &RunShape::batch, 1, kMaxBatch, false, 1, "", "Sequences per step"},
            {"seq", &RunShape::seq, 1, kMaxSeq, true, 0, "",
             "Training sequence length (and prompt, if no --prompt)"}};
  }
  std::string check(const ModelConfig& model, const RunShape& shape,
                    std::string* field) const override {
    if (shape.seq <= model.max_seq) return "";
    *field = "seq";
    return fmt::format("seq at most the max_seq of model {} ({}), got {}", model.name,
                       model.max_seq, shape.seq);
  }
  double footprint_bytes(const WorkloadParams& p) const override {
    return TrainStep::footprint_bytes(p.rank_model(), p.shape.batch, p.shape.seq, p.dtype);
  }
  std::unique_ptr<WorkloadRun> build(Backend& backend, const WorkloadParams& p) const override {
    return std::make_unique<TrainStepRun>(backend, p);
  }
  std::string primary_series(const RunShape&) const override { return "step_s"; }
  std::vector<Phase> phases(const RunShape&) const override { return {{"step", 1}}; }
  DerivedMetrics metrics(const WorkloadParams& p,
                         const std::map<std::string, double>& medians) const override {
    // Per rank: its own batch's FLOPs on its own shard (MFU is of one device); tokens/s is the
    // job's: every data-parallel rank's batch.
    const double step = medians.at("step_s");
    const double flops = train_step_model_flops(p.rank_model(), p.shape.batch, p.shape.seq);
    const double world = static_cast<double>(std::max<int64_t>(1, p.parallel.data_ranks()));
    DerivedMetrics m;
    m.values = {{"step_ms", step * 1e3},
                {"tokens_per_s", world * static_cast<double>(p.shape.batch * p.shape.seq) / step},
                {"model_flops_per_step", flops},
                {"achieved_flops_per_s", flops / step}};
    if (medians.count("comm_s") && medians.count("exposed_comm_s")) {
      const double comm = medians.at("comm_s"), exposed = medians.at("exposed_comm_s");
      m.values["comm_ms"] = comm * 1e3;
      m.values["exposed_comm_ms"] = exposed * 1e3;
      if (comm > 0) m.values["overlap_fraction"] = std::clamp(1 - exposed / comm, 0.0, 1.0);
    }
    m.utilisations.push_back({"mfu", "MFU", flops / step, true});
    return m;
  }
  std::string ops_unit(const RunShape&) const override { return "one train step"; }
  Headline headline(const std::map<std::string, double>& m) const override {
    auto get = [&](const char* k) { return m.count(k) ? m.at(k) : 0.0; };
    return {get("tokens_per_s"), "train tokens/s", fmt::format("step {:.2f} ms", get("step_ms")),
            "mfu", "MFU"};
  }
};

}  // namespace

const Workload& train_step_workload() {
  static const TrainStepWorkload workload;
  return workload;
}

}  // namespace capbench
