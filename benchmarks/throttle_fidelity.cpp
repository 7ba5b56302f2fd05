// Is the emulation faithful? Three measurements on one backend (default: torch on the CPU), each a
// ratio of two things measured in this one run, medians of repetitions:
//  1. pacing accuracy: a GEMM and a streaming op (add) paced in floor mode to a target rate
//     below the host's: achieved rate / target (goal: within 3%);
//  2. overhead: a train step and a decode step throttled to the host's own calibrated rates
//     (dilate factor 1) / unthrottled (goal: under 3% on a CPU, under 2% on a GPU, where steps
//     replay as CUDA graphs with the pace kernels inside);
//  3. physical check: fewer compute units emulated on all of them (dilate and shift modes, host
//     and target rates calibrated on both: GEMM peak and weight streaming), against really
//     running on fewer: train step and decode step, emulated / real. On a CPU "half the cores"
//     (threads; goal: within 15%); on a GPU "k SMs" for k in 16, 32, 64, really run through a
//     green context (BackendOptions::sm_count; goal: within 10%).
// The CPU runs the small model at fp32 (train batch 4 x 128; decode batch 1, context 128..160);
// a GPU the llama-134m model at bf16 (train batch 8 x 1024; decode batch 8, context 1024..1056).
//   build/benchmarks/throttle_fidelity [backend] [reps]      e.g. onednn 21, torch:cuda 15
#include <fmt/format.h>
#include <algorithm>
#include <thread>
#include <vector>

#include "backends/registry.h"
#include "backends/throttle/throttle_backend.h"
#include "harness/calibrate.h"
#include "harness/config_files.h"
#include "harness/host_info.h"
#include "harness/statistics.h"
#include "harness/suite.h"
#include "workloads/inference.h"
#include "workloads/train_step.h"

using namespace capbench;

namespace {

PacingPlan plan(EmulationMode mode, Rates host, Rates target) {
  return {"fidelity", mode, host, target};
}

// The model and sizes the checks run, per device kind.
struct Shapes {
  ModelConfig model;
  DType dtype;
  int64_t train_batch, seq, decode_batch, prompt;
  static constexpr int64_t kDecodeSteps = 32;
  static Shapes for_device(const std::string& kind) {
    if (kind == "cuda")
      return {load_model_config("llama-134m", default_config_dir()), DType::bf16, 8, 1024, 8, 1024};
    return {load_model_config("small", default_config_dir()), DType::f32, 4, 128, 1, 128};
  }
  double gemm_rate(const Calibration& cal) const {
    return dtype == DType::bf16 ? cal.gemm_bf16_flops : cal.gemm_flops;
  }
};

// A train step and a decode step, replayed as graphs where the backend captures them; both
// already run twice (eager, captured) when construction returns.
struct Workloads {
  TrainStep train;
  Inference infer;
  Workloads(Backend& be, const Shapes& s)
      : train(be, s.model, s.train_batch, s.seq, 1, AdamWArgs{}, s.dtype),
        infer(be, s.model, s.decode_batch, s.prompt, Shapes::kDecodeSteps, 1, s.dtype) {
    train.use_graphs(true);
    infer.use_graphs(true);
    for (int i = 0; i < 2; ++i) step(be), decode(be);
  }
  double step(Backend& be) {
    return time_synchronized(be, [&] { train.run(); });
  }
  double decode(Backend& be) {
    infer.prefill();
    return time_synchronized(be,
                             [&] {
                               for (int64_t s = 0; s < Shapes::kDecodeSteps; ++s) infer.decode(s);
                             }) /
           Shapes::kDecodeSteps;
  }
};

void report(const char* what, double ratio, double goal_low, double goal_high) {
  const bool ok = ratio >= goal_low && ratio <= goal_high;
  fmt::print("  {:<58} {:.4f}  [{}: goal {:.2f}..{:.2f}]\n", what, ratio, ok ? "meets" : "MISSES",
             goal_low, goal_high);
}

// Fewer compute units emulated on all of them against really running on fewer: `restricted`
// and `full` make the two backends, `label` says what was taken away.
void physical_check(const BackendEntry& entry, const BackendOptions& restricted,
                    const BackendOptions& full_options, const std::string& label,
                    const Shapes& shapes, int reps, double goal) {
  fmt::print("3. {} emulated on all vs really run so (medians of {}):\n", label, reps);
  // One backend at a time: the CPU libraries' thread counts are process-wide.
  double real_step = 0, real_decode = 0;
  Rates less;
  std::string less_device;
  {
    auto be = entry.make(restricted);
    less_device = be->device_info().name;
    const Calibration cal = measure_calibration(*be);
    less = {shapes.gemm_rate(cal), cal.stream_bytes_per_s};
    Workloads w(*be, shapes);
    std::vector<double> s, d;
    for (int r = 0; r < reps; ++r) s.push_back(w.step(*be)), d.push_back(w.decode(*be));
    real_step = median(s);
    real_decode = median(d);
  }
  fmt::print("  really on {}: step {:.2f} ms, decode {:.3f} ms\n", less_device, real_step * 1e3,
             real_decode * 1e3);
  auto be = entry.make(full_options);
  const Calibration cal = measure_calibration(*be);
  const Rates full{shapes.gemm_rate(cal), cal.stream_bytes_per_s};
  fmt::print(
      "  calibrated: GEMM {:.1f} GFLOP/s stream {:.1f} GB/s there; GEMM {:.1f} GFLOP/s stream "
      "{:.1f} GB/s on {}\n",
      less.flops / 1e9, less.bytes_per_s / 1e9, full.flops / 1e9, full.bytes_per_s / 1e9,
      be->device_info().name);
  const Rates target{std::min(less.flops, full.flops),
                     std::min(less.bytes_per_s, full.bytes_per_s)};
  for (EmulationMode mode : {EmulationMode::dilate, EmulationMode::shift}) {
    ThrottleBackend emu(*be, plan(mode, full, target));
    Workloads w(emu, shapes);
    std::vector<double> s, d;
    for (int r = 0; r < reps; ++r) s.push_back(w.step(emu)), d.push_back(w.decode(emu));
    const double emu_step = median(s), emu_decode = median(d);
    fmt::print("  {} mode: step {:.2f} ms, decode {:.3f} ms\n", emulation_mode_name(mode),
               emu_step * 1e3, emu_decode * 1e3);
    report(fmt::format("{}: train step emulated / real", emulation_mode_name(mode)).c_str(),
           emu_step / real_step, 1 - goal, 1 + goal);
    report(fmt::format("{}: decode step emulated / real", emulation_mode_name(mode)).c_str(),
           emu_decode / real_decode, 1 - goal, 1 + goal);
  }
}

}  // namespace

int main(int argc, char** argv) {
  prefer_openmp_openblas(argv);
  const std::string name = argc > 1 ? argv[1] : "torch";
  const int reps = argc > 2 ? std::atoi(argv[2]) : 9;
  const BackendEntry* entry = builtin_registry().find(name);
  if (!entry) {
    const UnavailableBackend* u = builtin_registry().unavailable(name);
    fmt::print(stderr, "{}: {}\n", name,
               u ? "not available here: " + u->reason : "no such backend");
    return 2;
  }
  const bool gpu = entry->device_kind == "cuda";
  const Shapes shapes = Shapes::for_device(entry->device_kind);
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
    const int64_t n = gpu ? 8192 : 1024;
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
    const int64_t len = int64_t{gpu ? 256 : 32} << 20;  // floats: 3 x 4 bytes moved per element
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
    const double overhead_goal = gpu ? 1.02 : 1.03;
    fmt::print("2. overhead: throttled to the host's own rates / unthrottled (medians of {}{}):\n",
               reps, be->can_capture().ok ? "; steps replayed as graphs" : "");
    const Rates own_rates{shapes.gemm_rate(cal), cal.stream_bytes_per_s};
    ThrottleBackend own(*be, plan(EmulationMode::dilate, own_rates, own_rates));
    Workloads direct(*be, shapes), through(own, shapes);
    std::vector<double> s_direct, s_through, d_direct, d_through;
    for (int r = 0; r < reps; ++r) {
      s_direct.push_back(direct.step(*be));
      s_through.push_back(through.step(own));
      d_direct.push_back(direct.decode(*be));
      d_through.push_back(through.decode(own));
    }
    report(fmt::format("{} train step (batch {} x {})", shapes.model.name, shapes.train_batch,
                       shapes.seq)
               .c_str(),
           median(s_through) / median(s_direct), 0.0, overhead_goal);
    report(fmt::format("{} decode step (batch {}, context {}..{})", shapes.model.name,
                       shapes.decode_batch, shapes.prompt, shapes.prompt + Shapes::kDecodeSteps)
               .c_str(),
           median(d_through) / median(d_direct), 0.0, overhead_goal);
  }

  // ---- 3. fewer compute units ----------------------------------------------------------------
  if (gpu) {
    for (int k : {16, 32, 64}) {
      BackendOptions restricted;
      restricted.sm_count = k;
      physical_check(*entry, restricted, BackendOptions{}, std::to_string(k) + " SMs", shapes, reps,
                     0.10);
    }
    return 0;
  }
  if (cores < 2) {
    fmt::print("3. half the cores: skipped, this machine has one core\n");
    return 0;
  }
  physical_check(*entry, BackendOptions{cores / 2}, BackendOptions{cores},
                 std::to_string(cores / 2) + " of " + std::to_string(cores) + " threads", shapes,
                 reps, 0.15);
  return 0;
}
