// How close a CPU backend's decode step comes to the machine's read stream. On a shared machine
// the memory bandwidth a process gets moves (one 2-core VM read 33 GB/s, then 50 GB/s minutes
// later), so a decode rate divided by a read stream calibrated at another time says little.
// This measures both alternately in one process, in rounds short enough that the machine's state
// seldom changes within one: 8 timed decode steps between two read-stream measurements
// (measure_host_read_stream, the backend's thread count, 512 MiB), the ratio taken against the
// mean of the two. A round's step time is the median of its 8 (as a run's TPOT is a median of
// steps; the read stream, like the calibration's, is the best of its repetitions). Each prefill
// serves four rounds (32 decode steps). It prints each round and the medians, with the median
// of the per-round ratios (weight stream / read stream).
//   build/benchmarks/decode_stream [backend] [model] [dtype] [batch] [rounds]
//   (default: onednn llama-350m bf16 1 24)
#include <fmt/format.h>
#include <algorithm>
#include <cstdlib>
#include <thread>
#include <vector>

#include "backends/registry.h"
#include "harness/calibrate.h"
#include "harness/config_files.h"
#include "harness/host_info.h"
#include "harness/runner.h"
#include "harness/statistics.h"
#include "workloads/cost_model.h"
#include "workloads/inference.h"

using namespace capbench;

int main(int argc, char** argv) {
  prefer_openmp_openblas(argv);
  const std::string backend_name = argc > 1 ? argv[1] : "onednn";
  const std::string model_name = argc > 2 ? argv[2] : "llama-350m";
  const std::string dtype_name_arg = argc > 3 ? argv[3] : "bf16";
  const int64_t batch = argc > 4 ? std::atoll(argv[4]) : 1;
  const int rounds = argc > 5 ? std::atoi(argv[5]) : 24;
  DType dtype;
  const BackendEntry* entry = builtin_registry().find(backend_name);
  if (!entry || !parse_dtype(dtype_name_arg, &dtype) || batch < 1 || rounds < 1) {
    fmt::print(stderr, "usage: decode_stream [backend] [model] [fp32|bf16] [batch] [rounds]\n");
    return 2;
  }
  const ModelConfig cfg = load_model_config(model_name, default_config_dir());
  auto backend = entry->make(BackendOptions{});
  const int threads = std::max(backend->device_info().threads, 1);
  const int64_t prompt = 128, steps = 32, per_round = 8;
  Inference work(*backend, cfg, batch, prompt, steps, 1, dtype);

  std::vector<double> read, stream, ratio, step_s;
  work.prefill();  // warm-up: first touches, primitive creation
  for (int64_t s = 0; s < steps; ++s) work.decode(s);
  double read_before = measure_host_read_stream(threads, size_t{512} << 20);
  for (int round = 0; round < rounds; ++round) {
    const int64_t first = round % (steps / per_round) * per_round;
    if (first == 0) work.prefill();
    std::vector<double> steps_here;
    for (int64_t s = first; s < first + per_round; ++s) {
      backend->synchronize();
      const double t0 = host_seconds_now();
      work.decode(s);
      backend->synchronize();
      steps_here.push_back(host_seconds_now() - t0);
    }
    const double step = median(steps_here);
    const double read_after = measure_host_read_stream(threads, size_t{512} << 20);
    const double r = (read_before + read_after) / 2;
    read_before = read_after;
    // Step s reads the cache's prompt + s + 1 positions.
    const double bytes =
        decode_step_min_bytes(cfg, batch, prompt + first + (per_round + 1) / 2, dtype, dtype);
    read.push_back(r);
    step_s.push_back(step);
    stream.push_back(bytes / step);
    ratio.push_back(bytes / step / r);
    fmt::print("round {}: read stream {:.1f} GB/s, decode step {:.2f} ms = {:.1f} GB/s ({:.3f})\n",
               round + 1, r / 1e9, step * 1e3, bytes / step / 1e9, ratio.back());
  }
  fmt::print(
      "{} {} {} batch {} ({} threads): read stream {:.1f} GB/s, decode step {:.2f} ms, weight "
      "stream {:.1f} GB/s; weight stream / read stream {:.3f} (medians of {} rounds)\n",
      backend_name, model_name, dtype_name_arg, batch, threads, median(read) / 1e9,
      median(step_s) * 1e3, median(stream) / 1e9, median(ratio), rounds);
  return 0;
}
