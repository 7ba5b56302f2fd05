// What the harness adds to every op: the timed repetitions run through the per-op profiler's
// forwarding decorator (disabled), which computes each op's cost and calls through a
// std::function. This measures decode steps (the shortest unit capbench times) directly on a
// backend and through the decorator, alternating, in one process, and prints the ratio of
// medians.
//   build/benchmarks/harness_overhead [backend] [model] [batch]   (default: reference tiny 1)
#include <fmt/format.h>
#include <vector>

#include "backends/op_profiler.h"
#include "backends/registry.h"
#include "harness/config_files.h"
#include "harness/host_info.h"
#include "harness/runner.h"
#include "harness/statistics.h"
#include "harness/suite.h"
#include "workloads/inference.h"

using namespace capbench;

int main(int argc, char** argv) {
  prefer_openmp_openblas(argv);
  const std::string backend_name = argc > 1 ? argv[1] : "reference";
  const std::string model_name = argc > 2 ? argv[2] : "tiny";
  const int64_t batch = argc > 3 ? std::atoll(argv[3]) : 1;
  const BackendEntry* entry = builtin_registry().find(backend_name);
  if (!entry) {
    fmt::print(stderr, "no backend {}\n", backend_name);
    return 2;
  }
  const ModelConfig cfg = load_model_config(model_name, default_config_dir());
  auto raw = entry->make(BackendOptions{});
  OpProfiler wrapped(*raw);
  const int64_t prompt = 16, steps = 32;
  Inference direct(*raw, cfg, batch, prompt, steps, 1);
  Inference through(wrapped, cfg, batch, prompt, steps, 1);

  auto time_decode = [&](Inference& work, Backend& be) {
    work.prefill();
    be.synchronize();
    const double t0 = host_seconds_now();
    for (int64_t s = 0; s < steps; ++s) work.decode(s);
    be.synchronize();
    return (host_seconds_now() - t0) / static_cast<double>(steps);
  };
  std::vector<double> a, b;
  for (int rep = 0; rep < 41; ++rep) {
    a.push_back(time_decode(direct, *raw));
    b.push_back(time_decode(through, wrapped));
  }
  const double ma = median(a), mb = median(b);
  fmt::print(
      "{} {} batch {}: decode step direct {:.2f} us, through the profiler decorator "
      "{:.2f} us: ratio {:.4f} (medians of 41)\n",
      backend_name, model_name, batch, ma * 1e6, mb * 1e6, mb / ma);
  return 0;
}
