// Is the emulation faithful? Three measurements on one backend (default: torch on the CPU), each a
// ratio of two things measured in this one run, medians of repetitions:
//  1. pacing accuracy: a GEMM and a streaming op (add) paced in floor mode to a target rate
//     below the host's: achieved rate / target (goal: within 3%);
//  2. overhead: the small model's train step and decode step throttled to the host's own
//     calibrated rates (dilate factor 1) / unthrottled (goal: under 3%);
//  3. physical check: "this CPU with half its cores" emulated on all cores (dilate and shift
//     modes, host and target rates calibrated at both thread counts: GEMM peak and weight
//     streaming), against really running on half the cores: train step and decode step,
//     emulated / real (goal: within 15%).
//   build/benchmarks/throttle_fidelity [backend] [reps]
#include <fmt/format.h>
#include <algorithm>
#include <thread>
#include <vector>

#include "backends/registry.h"
#include "backends/throttle/throttle_backend.h"
#include "harness/calibrate.h"
#include "harness/host_info.h"
#include "harness/suite.h"
#include "workloads/inference.h"
#include "workloads/train_step.h"

using namespace capbench;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

EmulationPlan plan(EmulationMode mode, Rates host, Rates target) {
  EmulationPlan p;
  p.profile = "fidelity";
  p.mode = mode;
  p.host = host;
  p.target = target;
  p.memory_capacity_bytes = 1e15;
  return p;
}

struct Workloads {
  TrainStep train;
  Inference infer;
  Workloads(Backend& be, const ModelConfig& cfg)
      : train(be, cfg, 4, 128, 1), infer(be, cfg, 1, 128, 32, 1) {}
  double step(Backend& be) {
    return time_synchronized(be, [&] { train.run(); });
  }
  double decode(Backend& be) {
    infer.prefill();
    return time_synchronized(be,
                             [&] {
                               for (int64_t s = 0; s < 32; ++s) infer.decode(s);
                             }) /
           32;
  }
};

void report(const char* what, double ratio, double goal_low, double goal_high) {
  const bool ok = ratio >= goal_low && ratio <= goal_high;
  fmt::print("  {:<58} {:.4f}  [{}: goal {:.2f}..{:.2f}]\n", what, ratio, ok ? "meets" : "MISSES",
             goal_low, goal_high);
}

}  // namespace

int main(int argc, char** argv) {
  prefer_openmp_openblas(argv);
  const std::string name = argc > 1 ? argv[1] : "torch";
  const int reps = argc > 2 ? std::atoi(argv[2]) : 9;
  const BackendEntry* entry = builtin_registry().find(name);
  if (!entry) {
    fmt::print(stderr, "no backend {} in this build\n", name);
    return 2;
  }
  const ModelConfig small = load_model_config("small", default_config_dir());
  const int cores = static_cast<int>(std::thread::hardware_concurrency());

  // ---- 1. pacing accuracy ----------------------------------------------------------------------
  {
    auto be = entry->make(BackendOptions{});
    const Calibration cal = measure_calibration(*be);
    fmt::print("{} on {} ({} threads): GEMM {:.1f} GFLOP/s, copy {:.1f} GB/s\n", name, cal.device,
               cal.threads, cal.gemm_flops / 1e9, cal.copy_bytes_per_s / 1e9);
    const Rates host{cal.gemm_flops, cal.stream_bytes_per_s};
    const Rates target{0.5 * host.flops, 0.25 * host.bytes_per_s};
    ThrottleBackend paced(*be, plan(EmulationMode::floor, host, target));
    fmt::print("1. pacing accuracy (floor mode; medians of {}):\n", reps);
    const int64_t n = 1024;
    DeviceBuffer a(*be, n * n * 4), b(*be, n * n * 4), c(*be, n * n * 4);
    const Tensor ta = a.view(DType::f32, {n, n}), tb = b.view(DType::f32, {n, n}),
                 tc = c.view(DType::f32, {n, n});
    be->fill(ta, 0.5f);
    be->fill(tb, 0.5f);
    std::vector<double> gemm;
    for (int r = 0; r < reps; ++r)
      gemm.push_back(time_synchronized(paced, [&] { paced.matmul(tc, ta, tb, MatmulArgs{}); }));
    const double gemm_rate = 2.0 * n * n * n / median(gemm);
    report(
        fmt::format("GEMM {}^3 paced to {:.1f} GFLOP/s: achieved / target", n, target.flops / 1e9)
            .c_str(),
        gemm_rate / target.flops, 0.97, 1.03);
    const int64_t len = int64_t{32} << 20;  // 32 Mi floats: 384 MiB moved per add
    DeviceBuffer x(*be, len * 4), y(*be, len * 4), z(*be, len * 4);
    const Tensor tx = x.view(DType::f32, {len}), ty = y.view(DType::f32, {len}),
                 tz = z.view(DType::f32, {len});
    be->fill(tx, 1.0f);
    be->fill(ty, 2.0f);
    std::vector<double> adds;
    for (int r = 0; r < reps; ++r)
      adds.push_back(time_synchronized(paced, [&] { paced.add(tz, tx, ty); }));
    const double add_rate = 3.0 * static_cast<double>(len) * 4 / median(adds);
    report(fmt::format("add of 3 x {} MiB paced to {:.1f} GB/s: achieved / target", len * 4 >> 20,
                       target.bytes_per_s / 1e9)
               .c_str(),
           add_rate / target.bytes_per_s, 0.97, 1.03);

    // ---- 2. overhead ---------------------------------------------------------------------------
    fmt::print("2. overhead: throttled to the host's own rates / unthrottled (medians of {}):\n",
               reps);
    ThrottleBackend own(*be, plan(EmulationMode::dilate, host, host));
    Workloads direct(*be, small), through(own, small);
    std::vector<double> s_direct, s_through, d_direct, d_through;
    direct.step(*be), through.step(own);  // warm-up
    for (int r = 0; r < reps; ++r) {
      s_direct.push_back(direct.step(*be));
      s_through.push_back(through.step(own));
      d_direct.push_back(direct.decode(*be));
      d_through.push_back(through.decode(own));
    }
    report("small train step (batch 4 x 128)", median(s_through) / median(s_direct), 0.0, 1.03);
    report("small decode step (batch 1, context 128..160)", median(d_through) / median(d_direct),
           0.0, 1.03);
  }

  // ---- 3. half the cores
  // -------------------------------------------------------------------------
  if (cores < 2) {
    fmt::print("3. half the cores: skipped, this machine has one core\n");
    return 0;
  }
  const int half = cores / 2;
  fmt::print("3. {} threads emulated on {} vs really run on {} (medians of {}):\n", half, cores,
             half, reps);
  // One backend at a time: the CPU libraries' thread counts are process-wide.
  double real_step = 0, real_decode = 0;
  Rates half_rates;
  {
    auto be = entry->make(BackendOptions{half});
    const Calibration cal = measure_calibration(*be);
    half_rates = {cal.gemm_flops, cal.stream_bytes_per_s};
    Workloads w(*be, small);
    std::vector<double> s, d;
    w.step(*be);
    for (int r = 0; r < reps; ++r) s.push_back(w.step(*be)), d.push_back(w.decode(*be));
    real_step = median(s);
    real_decode = median(d);
  }
  fmt::print("  really on {} threads: step {:.1f} ms, decode {:.2f} ms\n", half, real_step * 1e3,
             real_decode * 1e3);
  auto be = entry->make(BackendOptions{cores});
  const Calibration cal = measure_calibration(*be);
  const Rates full{cal.gemm_flops, cal.stream_bytes_per_s};
  fmt::print(
      "  calibrated: {} threads GEMM {:.1f} GFLOP/s stream {:.1f} GB/s; {} threads GEMM "
      "{:.1f} GFLOP/s stream {:.1f} GB/s\n",
      half, half_rates.flops / 1e9, half_rates.bytes_per_s / 1e9, cores, full.flops / 1e9,
      full.bytes_per_s / 1e9);
  const Rates target{std::min(half_rates.flops, full.flops),
                     std::min(half_rates.bytes_per_s, full.bytes_per_s)};
  for (EmulationMode mode : {EmulationMode::dilate, EmulationMode::shift}) {
    ThrottleBackend emu(*be, plan(mode, full, target));
    Workloads w(emu, small);
    std::vector<double> s, d;
    w.step(emu);
    for (int r = 0; r < reps; ++r) s.push_back(w.step(emu)), d.push_back(w.decode(emu));
    const double emu_step = median(s), emu_decode = median(d);
    fmt::print("  {} mode: step {:.1f} ms, decode {:.2f} ms\n", emulation_mode_name(mode),
               emu_step * 1e3, emu_decode * 1e3);
    report(fmt::format("{}: train step emulated / real", emulation_mode_name(mode)).c_str(),
           emu_step / real_step, 0.85, 1.15);
    report(fmt::format("{}: decode step emulated / real", emulation_mode_name(mode)).c_str(),
           emu_decode / real_decode, 0.85, 1.15);
  }
  return 0;
}
