// Suite files (configs/suites/*.json) and the run specifications they expand to. Everything is
// validated before the first run starts, so bad input never leaves a partial report behind.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "backends/throttle/device_profile.h"
#include "harness/emulation.h"
#include "harness/statistics.h"
#include "workloads/model_config.h"
#include "workloads/workload.h"

namespace capbench {

// Bounds on a suite's counts and times.
constexpr int64_t kMaxRepetitions = 10'000'000;
constexpr double kMaxSeconds = 1e6;
constexpr int64_t kMaxThreads = 4096;

struct RunnerSettings {
  int64_t warmup = 1;
  int64_t min_reps = 5;
  int64_t max_reps = 200;
  double min_time_s = 1.0;
  double max_time_s = 120.0;
  double ci_bound = 0.05;  // see ValidityRules
};

struct RunSpec {
  std::string workload;  // a registered workload's name (workloads/registry.cpp)
  ModelConfig model;
  std::string backend;  // a registry name; empty when nothing matched (see no_backend_reason)
  std::string no_backend_reason;  // set: the run is skipped with it (no backend, or unavailable)
  RunShape shape;
  // A run of a few of the model's layers at their real dimensions (with its embedding and head):
  // `model` is that slice, `full_model` the model its times are extrapolated to.
  std::optional<ModelConfig> full_model;
  DType dtype = DType::f32;
  int64_t threads = 0;
  uint64_t seed = 1;
  double learning_rate = 1e-3;
  bool graphs = true;  // replay steps as device graphs where the backend can capture them
  RunnerSettings runner;
  std::optional<EmulationSpec> emulation;
  // Virtual ranks without emulation: the link their collectives are paced by.
  std::optional<LinkModel> virtual_link;
  // "single", or "dp" over the launcher's ranks (world filled in when the run starts).
  ParallelSpec parallel;
  std::string origin;  // "suite.json $.runs[2]": where the spec came from
};

// Command-line overrides applied to every run of a suite.
struct SuiteOverrides {
  std::optional<std::string> backend, model, workload, dtype;
  std::optional<std::string> emulate, emulate_mode, relative_to;  // emulate: a comma list
  std::optional<std::string> time_scale;
  std::optional<std::string> parallel;   // --parallel single|dp|tp
  std::optional<int64_t> tp, dp;         // --tp, --dp
  bool virtual_ranks = false;            // --virtual
  int64_t launcher_world = 1;            // the ranks this process was started among
  std::optional<double> bucket_mib;      // --bucket-mb
  std::map<std::string, int64_t> sizes;  // by size field name: "batch", "seq", ...
  std::optional<int64_t> reps, warmup, threads, seed, layers;
  std::optional<double> min_time_s, max_time_s, ci_bound;
  bool no_graphs = false;
};

struct Suite {
  std::string name, file, description;
  std::vector<RunSpec> runs;
};

// Loads and expands a suite. Throws ConfigError (bad file content) or UsageError (bad override).
// config_dir holds models/ and devices/.
Suite load_suite(const std::string& path, const SuiteOverrides& overrides,
                 const std::string& config_dir, const Registry& registry);

// The configs/ folder: $CAPBENCH_CONFIG_DIR, else the source tree's.
std::string default_config_dir();

}  // namespace capbench
