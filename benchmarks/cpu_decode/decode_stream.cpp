// How close a CPU backend's decode step comes to the machine's read stream. On a shared machine
// the memory bandwidth a process gets moves (one 2-core VM read 33 GB/s, then 55 GB/s, flipping
// between the two within a second, for a buffer kept as for a fresh one), so a decode rate
// divided by a read stream measured at another time says little. This measures both alternately
// in one process: one read pass (HostReadStream, the backend's thread count, 256 MiB, a few
// milliseconds, started 20 ms after the step's threads went idle) before every timed decode step
// and after it, and each step's weight stream (decode_step_min_bytes / its time) is divided by
// the mean of the two passes. Each prefill
// serves four rounds of 8 steps (32 decode steps). It prints each round's medians and the
// medians over all steps, and, as a calibration would state the read stream, the ratio of each
// round's median weight stream to the best of its passes.
// With `ops`, it first prints each op kind's share of a decode step, timed op by op.
//   build/benchmarks/decode_stream [backend] [model] [dtype] [batch] [rounds] [ops]
//   (default: onednn llama-350m bf16 1 24)
#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "backends/op_profiler.h"
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
  const bool time_ops = argc > 6 && std::string(argv[6]) == "ops";
  DType dtype;
  const BackendEntry* entry = builtin_registry().find(backend_name);
  if (!entry || !parse_dtype(dtype_name_arg, &dtype) || batch < 1 || rounds < 1 ||
      (argc > 6 && !time_ops)) {
    fmt::print(stderr,
               "usage: decode_stream [backend] [model] [fp32|bf16] [batch] [rounds] [ops]\n");
    return 2;
  }
  const ModelConfig cfg = load_model_config(model_name, default_config_dir());
  auto inner = entry->make(BackendOptions{});
  OpProfiler profiler(*inner);  // forwards untouched while not started
  Backend* backend = &profiler;
  const int threads = std::max(backend->device_info().threads, 1);
  const int64_t prompt = 128, steps = 32, per_round = 8;
  Inference work(*backend, cfg, batch, prompt, steps, 1, dtype);

  // One read pass before the first step and after each: step i is paired with the mean of the
  // passes either side of it, each about 20 ms away.
  HostReadStream read_stream(size_t{256} << 20);
  std::vector<double> read, stream, ratio, step_s, ratio_to_best;
  work.prefill();  // warm-up: first touches, primitive creation
  for (int64_t s = 0; s < steps; ++s) work.decode(s);
  if (time_ops) {  // one more pass of the decode steps, op by op
    work.prefill();
    profiler.start(Rates{}, Rates{});  // times only: no rooflines
    const double t0 = host_seconds_now();
    for (int64_t s = 0; s < steps; ++s) work.decode(s);
    const double step = (host_seconds_now() - t0) / steps;
    profiler.stop();
    double in_ops = 0;
    for (int op = 0; op < kOpCount; ++op) {
      const double seconds = profiler.entries()[static_cast<size_t>(op)].seconds;
      if (seconds == 0) continue;
      fmt::print("  {:<18} {:8.3f} ms a step ({:5.1f}%)\n", op_name(static_cast<OpId>(op)),
                 seconds / steps * 1e3, 100 * seconds / steps / step);
      in_ops += seconds / steps;
    }
    fmt::print("  {:<18} {:8.3f} ms a step ({:5.1f}%)\n  decode step {:.3f} ms, timed op by op\n",
               "between ops", (step - in_ops) * 1e3, 100 * (step - in_ops) / step, step * 1e3);
  }
  // libgomp's threads spin for some milliseconds after each parallel region, and a read pass
  // started beside them shares their cores: right after a step the passes read 23-24 GB/s while
  // the step had streamed 29 (a ratio above 1), 33-46 GB/s 20 ms later.
  auto settle = [] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); };
  settle();
  double read_before = read_stream.measure(threads, 1);
  for (int round = 0; round < rounds; ++round) {
    const int64_t first = round % (steps / per_round) * per_round;
    if (first == 0) {
      work.prefill();
      settle();
      read_before = read_stream.measure(threads, 1);
    }
    std::vector<double> round_read, round_step, round_ratio, round_stream;
    double round_best = read_before;
    for (int64_t s = first; s < first + per_round; ++s) {
      backend->synchronize();
      const double t0 = host_seconds_now();
      work.decode(s);
      backend->synchronize();
      const double step = host_seconds_now() - t0;
      settle();
      const double read_after = read_stream.measure(threads, 1);
      round_best = std::max(round_best, read_after);
      const double r = (read_before + read_after) / 2;
      read_before = read_after;
      // Step s reads the cache's prompt + s + 1 positions.
      const double bytes = decode_step_min_bytes(cfg, batch, prompt + s + 1, dtype, dtype);
      for (auto* all : {&read, &round_read}) all->push_back(r);
      for (auto* all : {&step_s, &round_step}) all->push_back(step);
      for (auto* all : {&ratio, &round_ratio}) all->push_back(bytes / step / r);
      for (auto* all : {&stream, &round_stream}) all->push_back(bytes / step);
    }
    // As a calibration reports the read stream: the best of the round's passes.
    ratio_to_best.push_back(median(round_stream) / round_best);
    fmt::print(
        "round {}: read stream {:.1f} GB/s (best pass {:.1f}), decode step {:.2f} ms; "
        "weight stream / read stream {:.3f} (medians of {} steps), / best pass {:.3f}\n",
        round + 1, median(round_read) / 1e9, round_best / 1e9, median(round_step) * 1e3,
        median(round_ratio), per_round, ratio_to_best.back());
  }
  fmt::print(
      "{} {} {} batch {} ({} threads): read stream {:.1f} GB/s, decode step {:.2f} ms, weight "
      "stream {:.1f} GB/s; weight stream / read stream {:.3f} (medians of {} steps, each against "
      "the read passes either side of it); against each round's best pass {:.3f} (median of {} "
      "rounds)\n",
      backend_name, model_name, dtype_name_arg, batch, threads, median(read) / 1e9,
      median(step_s) * 1e3, median(stream) / 1e9, median(ratio), ratio.size(),
      median(ratio_to_best), ratio_to_best.size());
  return 0;
}
