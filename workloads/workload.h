// The one interface of a workload: what a suite, the runner, the tables and `capbench list` ask
// of it. A Workload describes (its sizes and how to check them, its footprint, its series, its
// metrics, its headline); build() makes a WorkloadRun on a backend, which the runner drives
// through warm-up, timed repetitions, canaries and one profiled pass. Adding a workload is one
// file with a Workload and a WorkloadRun, and one line in workloads/registry.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "backends/comm/communicator.h"
#include "workloads/model_config.h"
#include "workloads/transformer.h"

namespace capbench {

// The sizes a run can have; each workload uses the ones its size_fields() name.
struct RunShape {
  int64_t batch = 1;
  int64_t seq = 0;           // training sequence length
  int64_t prompt = 0;        // inference prompt length
  int64_t decode_steps = 0;  // inference decode steps
};

// One size of a workload as suites and the command line give it.
struct SizeField {
  std::string name;  // the suite field and the report key's name: "seq"
  int64_t RunShape::*member;
  int64_t min = 1, max = 1;
  bool required = true;   // else `fallback` when a suite entry leaves it out
  int64_t fallback = 0;   // (batch falls back to the suite's defaults, then to this)
  std::string also_from;  // another size's command-line override that sets this one when its
                          // own is absent (--seq sets the prompt)
  std::string help;       // for --help
};

// How a run is spread over ranks. "single": one rank does all of it. "dp": each rank runs
// `batch` sequences of its own data and the gradients are all-reduced in buckets.
struct ParallelSpec {
  std::string layout = "single";  // "single" | "dp" | "tp" (tp ranks, times dp of them)
  int64_t world = 1;              // the ranks the layout spans
  int64_t tp = 1, dp = 1;         // "tp": world = tp · dp
  // One process plays one rank of `world`: its shard runs for real, its collectives are paced
  // by a link model and move no data.
  bool virtual_ranks = false;
  int64_t bucket_bytes = int64_t{25} << 20;
  int64_t first_bucket_bytes = int64_t{1} << 20;

  int64_t tensor_ranks() const { return layout == "tp" ? tp : 1; }
  // The ranks that split the batch between them.
  int64_t data_ranks() const { return layout == "dp" ? world : layout == "tp" ? dp : 1; }
};

struct WorkloadParams {
  ModelConfig model;
  RunShape shape;
  DType dtype = DType::f32;
  uint64_t seed = 1;
  double learning_rate = 1e-3;
  ParallelSpec parallel;
  Communicator* comm = nullptr;     // the data-parallel ranks; null for one
  Communicator* tp_comm = nullptr;  // the tensor-parallel ranks; null for one
  int64_t tp_rank = 0;

  // The model one rank runs: its tensor-parallel shard (the whole model without one).
  ModelConfig rank_model() const { return tensor_parallel_shard(model, parallel.tensor_ranks()); }
  // The shard's description for the model (null without tensor parallelism).
  std::optional<TensorShard> shard() const {
    if (parallel.tensor_ranks() <= 1) return std::nullopt;
    return TensorShard{parallel.tensor_ranks(), tp_rank, tp_comm};
  }
};

// A correctness check of a run: its verdict, what it saw, and the values behind it.
struct Canary {
  std::string name;
  bool passed = false;
  std::string detail;
  std::vector<double> values;
};

// Sample series by name ("step_s"), in seconds.
using Samples = std::map<std::string, std::vector<double>>;

// Runs `fn` timed on the device's timeline (synchronised before and after); returns seconds.
using Timer = std::function<double(const std::function<void()>& fn)>;

// Achieved figures of a run, from its series' medians. A utilisation is one of them over the
// device's peak FLOP/s (of_flops) or memory rate, which the harness knows and checks.
struct Utilisation {
  std::string metric;  // "mfu"
  std::string label;   // "MFU"
  double achieved = 0;
  bool of_flops = true;
};
struct DerivedMetrics {
  std::map<std::string, double> values;
  std::vector<Utilisation> utilisations;
};

// What a table shows of a run: its throughput metric, a latency line and its utilisation.
struct Headline {
  double throughput = 0;
  std::string unit;     // "train tokens/s"
  std::string latency;  // "step 412.01 ms"
  std::string utilisation_metric, utilisation_label;
};

// A part of the profiled pass, and how many of the workload's units it covers: the roofline
// prediction is given per unit of each phase (a prefill; one decode step).
struct Phase {
  std::string name;  // the primary series is name + "_s"
  double units = 1;
};

// A workload built on a backend, with its model, activations and data allocated.
class WorkloadRun {
 public:
  virtual ~WorkloadRun() = default;
  // Bytes by kind: total_bytes and the parameters' share, as allocated.
  virtual std::map<std::string, double> memory() const = 0;
  // Device graphs on where wanted and the backend can capture; returns whether they are on.
  virtual bool use_graphs(bool wanted) = 0;
  // With graphs on: two untimed repetitions' passes, the first eager and the second captured, so
  // that every graph the repetitions replay exists (the runner takes half of the collectives
  // they issue as what one replayed repetition issues).
  virtual void capture() = 0;
  // One repetition, every timed piece through `timed`, its samples appended to `samples`.
  // Returns the seconds spent on purpose outside the samples (a canary's reads).
  virtual double repetition(bool warmup, Samples& samples, const Timer& timed) = 0;
  // After the timed repetitions.
  virtual std::vector<Canary> canaries() = 0;
  // One pass op by op for the per-op breakdown; phase_done(i) as phase i of phases() ends.
  virtual void profiled_pass(const std::function<void(size_t phase)>& phase_done) = 0;
  // What the run saw besides its times (the last loss), for its metrics.
  virtual std::map<std::string, double> observed() const { return {}; }
};

class Workload {
 public:
  virtual ~Workload() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;
  virtual std::vector<SizeField> size_fields() const = 0;
  // Why `shape` cannot run on `model` ("" when it can), and the size to blame in *field.
  virtual std::string check(const ModelConfig& model, const RunShape& shape,
                            std::string* field) const = 0;
  // What build() will allocate, from the shape alone.
  virtual double footprint_bytes(const WorkloadParams& params) const = 0;
  virtual std::unique_ptr<WorkloadRun> build(Backend& backend,
                                             const WorkloadParams& params) const = 0;
  // The series the verdict, the tables and compare use.
  virtual std::string primary_series(const RunShape& shape) const = 0;
  virtual std::vector<Phase> phases(const RunShape& shape) const = 0;
  virtual std::string ops_unit(const RunShape& shape) const = 0;
  // Figures from the medians of the series, for a model of this shape (a slice's run, or the
  // whole model its time is extrapolated to).
  virtual DerivedMetrics metrics(const WorkloadParams& params,
                                 const std::map<std::string, double>& medians) const = 0;
  // From a run's metrics (a report's, too).
  virtual Headline headline(const std::map<std::string, double>& metrics) const = 0;
  // The (K, N) of the weights W[N,K] a run multiplies one row by (a decode step's products),
  // whose host rates emulation measures on their own shapes; none by default.
  virtual std::vector<std::pair<int64_t, int64_t>> one_row_products(
      const ModelConfig& /*model*/) const {
    return {};
  }
};

// Every workload capbench has, in the order `capbench list` shows them.
const std::vector<const Workload*>& all_workloads();
// nullptr for a name no workload has.
const Workload* find_workload(const std::string& name);
std::string workload_names();  // "train_step, inference"

}  // namespace capbench
