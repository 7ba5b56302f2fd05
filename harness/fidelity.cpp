#include "harness/fidelity.h"

#include <fmt/format.h>
#include <algorithm>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "backends/throttle/throttle_backend.h"
#include "harness/calibrate.h"
#include "harness/config_files.h"
#include "harness/errors.h"
#include "harness/interrupt.h"
#include "harness/json_access.h"
#include "harness/statistics.h"
#include "workloads/inference.h"
#include "workloads/train_step.h"
#include "workloads/transformer.h"

namespace capbench {
namespace {

// The model and sizes the step checks run, per device kind: a CPU the small model at fp32, a GPU
// the llama-134m model at bf16, each big enough that a step is mostly its matmuls.
struct Shapes {
  ModelConfig model;
  DType dtype;
  int64_t train_batch, seq, decode_batch, prompt;
  static constexpr int64_t kDecodeSteps = 32;
  static Shapes for_device(const std::string& kind, const std::string& config_dir) {
    if (kind == "cuda")
      return {load_model_config("llama-134m", config_dir), DType::bf16, 8, 1024, 8, 1024};
    return {load_model_config("small", config_dir), DType::f32, 4, 128, 1, 128};
  }
};

// A train step and a decode step, replayed as graphs where the backend captures them; both have
// run twice (eager, then captured) when construction returns.
struct Steps {
  TrainStep train;
  Inference infer;
  Steps(Backend& be, const Shapes& s)
      : train(be, s.model, s.train_batch, s.seq, 1, AdamWArgs{}, s.dtype),
        infer(be, s.model, s.decode_batch, s.prompt, Shapes::kDecodeSteps, 1, s.dtype) {
    train.use_graphs(true);
    infer.use_graphs(true);
    for (int i = 0; i < 2; ++i) step(be), decode(be);
  }
  double step(Backend& be) {
    return time_synchronized(be, [&] { train.run(); });
  }
  double decode(Backend& be) {  // one decode step, averaged over the cache's length
    infer.prefill();
    const double all = time_synchronized(be, [&] {
      for (int64_t s = 0; s < Shapes::kDecodeSteps; ++s) infer.decode(s);
    });
    return all / Shapes::kDecodeSteps;
  }
  // Medians of `reps` alternating train and decode steps.
  std::pair<double, double> medians(Backend& be, int reps) {
    std::vector<double> s, d;
    for (int r = 0; r < reps; ++r) {
      check_interrupted();
      s.push_back(step(be));
      d.push_back(decode(be));
    }
    return {median(s), median(d)};
  }
};

FidelityCheck check(std::string kind, std::string name, double ratio, double low, double high,
                    std::string detail) {
  return {std::move(kind),  std::move(name), ratio, low, high, ratio >= low && ratio <= high,
          std::move(detail)};
}

std::string ms(double seconds) {
  return fmt::format("{:.3f} ms", seconds * 1e3);
}

void pacing_checks(Backend& be, const Calibration& cal, int reps, FidelityResult& out) {
  const bool gpu = be.device_info().device_kind == "cuda";
  PacingPlan plan;
  plan.profile = "half the host";
  plan.mode = EmulationMode::floor;
  plan.host = cal.host_rates(DType::f32);
  plan.target.peak = {0.5 * cal.gemm_flops, 0.25 * cal.stream_bytes_per_s};
  ThrottleBackend paced(be, plan);
  const int64_t n = gpu ? 8192 : 1024;
  DeviceBuffer a(be, n * n * 4), b(be, n * n * 4), c(be, n * n * 4);
  const Tensor ta = a.view(DType::f32, {n, n}), tb = b.view(DType::f32, {n, n}),
               tc = c.view(DType::f32, {n, n});
  be.fill(ta, 0.5f);
  be.fill(tb, 0.25f);
  std::vector<double> gemm;
  for (int r = 0; r < reps; ++r)
    gemm.push_back(time_synchronized(paced, [&] { paced.matmul(tc, ta, tb, MatmulArgs{}); }));
  const double gemm_rate = 2.0 * static_cast<double>(n * n * n) / median(gemm);
  const double flops_goal = plan.target.peak.flops;
  out.checks.push_back(
      check("pacing",
            fmt::format("GEMM {}^3 paced to half the host's GEMM rate: achieved / "
                        "target",
                        n),
            gemm_rate / flops_goal, 0.97, 1.03,
            fmt::format("{:.2f} of {:.2f} GFLOP/s", gemm_rate / 1e9, flops_goal / 1e9)));
  const int64_t len = int64_t{gpu ? 256 : 32} << 20;  // floats; an add moves 3 x 4 bytes each
  DeviceBuffer x(be, len * 4), y(be, len * 4), z(be, len * 4);
  const Tensor tx = x.view(DType::f32, {len}), ty = y.view(DType::f32, {len}),
               tz = z.view(DType::f32, {len});
  be.fill(tx, 1.0f);
  be.fill(ty, 2.0f);
  std::vector<double> adds;
  for (int r = 0; r < reps; ++r)
    adds.push_back(time_synchronized(paced, [&] { paced.add(tz, tx, ty); }));
  const double add_rate = 3.0 * static_cast<double>(len) * 4 / median(adds);
  const double bytes_goal = plan.target.peak.bytes_per_s;
  out.checks.push_back(check(
      "pacing",
      fmt::format("add of 3 x {} MiB paced to a quarter of the host's stream: achieved / target",
                  len * 4 >> 20),
      add_rate / bytes_goal, 0.97, 1.03,
      fmt::format("{:.2f} of {:.2f} GB/s", add_rate / 1e9, bytes_goal / 1e9)));
}

void overhead_checks(Backend& be, const Calibration& cal, const Shapes& shapes, int reps,
                     FidelityResult& out) {
  const double goal = be.device_info().device_kind == "cuda" ? 1.02 : 1.03;
  PacingPlan own;
  own.profile = "the host itself";
  own.mode = EmulationMode::dilate;
  own.host = cal.host_rates(shapes.dtype);
  own.target = own.host;  // every op's factor is exactly 1
  ThrottleBackend through(be, own);
  Steps direct(be, shapes), paced(through, shapes);
  std::vector<double> s_direct, s_paced, d_direct, d_paced;
  for (int r = 0; r < reps; ++r) {
    check_interrupted();
    s_direct.push_back(direct.step(be));
    s_paced.push_back(paced.step(through));
    d_direct.push_back(direct.decode(be));
    d_paced.push_back(paced.decode(through));
  }
  const std::string graphs = be.can_capture().ok ? ", replayed as graphs" : "";
  out.checks.push_back(
      check("overhead",
            fmt::format("{} train step (batch {} x {}){}: throttled to the host's own rates / "
                        "unthrottled",
                        shapes.model.name, shapes.train_batch, shapes.seq, graphs),
            median(s_paced) / median(s_direct), 0.0, goal,
            fmt::format("{} vs {}", ms(median(s_paced)), ms(median(s_direct)))));
  out.checks.push_back(
      check("overhead",
            fmt::format("{} decode step (batch {}, context {}..{}){}: throttled to the host's own "
                        "rates / unthrottled",
                        shapes.model.name, shapes.decode_batch, shapes.prompt,
                        shapes.prompt + Shapes::kDecodeSteps, graphs),
            median(d_paced) / median(d_direct), 0.0, goal,
            fmt::format("{} vs {}", ms(median(d_paced)), ms(median(d_direct)))));
}

// Fewer compute units emulated on all of them against really running on fewer. Both machines
// live side by side, and the repetitions alternate between the real run and each emulated one
// (each backend made current before its turn), so that a shared machine's drift falls on all.
void physical_check(const BackendEntry& entry, const BackendOptions& fewer_options,
                    const BackendOptions& all_options, const std::string& label,
                    const Shapes& shapes, const FidelityOptions& options, double goal,
                    const std::function<void(const std::string&)>& progress, FidelityResult& out) {
  auto fewer = entry.make(fewer_options);
  progress(fmt::format("physical check: calibrating {}", label));
  Calibration small = measure_calibration(*fewer, progress);
  auto all = entry.make(all_options);
  progress("physical check: calibrating the whole device");
  Calibration whole = measure_calibration(*all, progress);
  // The model's own one-row products, on both machines: each decode matmul at its exact class.
  const auto model_shapes = one_row_product_shapes(shapes.model);
  fewer->activate();  // its thread count: the process's teams are shared
  add_gemv_classes(*fewer, shapes.dtype, model_shapes, small.gemv_classes(shapes.dtype));
  all->activate();
  add_gemv_classes(*all, shapes.dtype, model_shapes, whole.gemv_classes(shapes.dtype));

  struct Contender {
    std::string mode;  // "" for the real run
    Backend* backend;
    std::unique_ptr<ThrottleBackend> throttle;
    std::unique_ptr<Steps> steps;
    std::vector<double> step_s, decode_s;
  };
  std::vector<Contender> contenders;
  contenders.push_back({"", fewer.get(), nullptr, nullptr, {}, {}});
  std::vector<std::string> modes = options.modes;
  if (modes.empty()) modes = {"floor", "dilate", "shift"};
  for (const std::string& mode_name : modes) {
    PacingPlan plan;
    plan.profile = label;
    if (!parse_emulation_mode(mode_name, &plan.mode))
      throw std::invalid_argument("no emulation mode " + mode_name);
    plan.host = whole.host_rates(shapes.dtype);
    plan.target = small.host_rates(shapes.dtype);
    // What one op costs the smaller machine beyond its work (floor), and over what it costs
    // the whole one (dilate, shift).
    plan.launch_s = small.dispatch_s;
    plan.launch_extra_s = std::max(0.0, small.dispatch_s - whole.dispatch_s);
    Contender c{mode_name, nullptr, std::make_unique<ThrottleBackend>(*all, plan), nullptr, {}, {}};
    c.backend = c.throttle.get();
    contenders.push_back(std::move(c));
  }
  for (Contender& c : contenders) {
    c.backend->activate();
    c.steps = std::make_unique<Steps>(*c.backend, shapes);
  }
  for (int r = 0; r < options.reps; ++r) {
    progress(fmt::format("physical check: {} vs emulated, repetition {}/{}", label, r + 1,
                         options.reps));
    for (Contender& c : contenders) {
      check_interrupted();
      c.backend->activate();
      c.step_s.push_back(c.steps->step(*c.backend));
      c.decode_s.push_back(c.steps->decode(*c.backend));
    }
  }
  const double real_step = median(contenders[0].step_s);
  const double real_decode = median(contenders[0].decode_s);
  for (size_t i = 1; i < contenders.size(); ++i) {
    const Contender& c = contenders[i];
    const double step = median(c.step_s), decode = median(c.decode_s);
    // The goal holds the floor rule; the relative rules are shown beside it.
    const bool informational = c.mode != "floor";
    for (const auto& [what, emulated, real] : {std::tuple{"train step", step, real_step},
                                               std::tuple{"decode step", decode, real_decode}}) {
      FidelityCheck f = check(
          "physical", fmt::format("{}, {}: {} emulated / real", label, c.mode, what),
          emulated / real, 1 - goal, 1 + goal, fmt::format("{} vs {}", ms(emulated), ms(real)));
      f.informational = informational;
      out.checks.push_back(f);
    }
  }
  // The steps go before the backends they run on.
  for (Contender& c : contenders) c.steps.reset();
  all->activate();
}

}  // namespace

bool FidelityResult::passed() const {
  return std::all_of(checks.begin(), checks.end(),
                     [](const FidelityCheck& c) { return c.passed || c.informational; });
}

FidelityResult measure_fidelity(const BackendEntry& entry, const FidelityOptions& options,
                                const std::function<void(const std::string&)>& progress_fn) {
  const auto progress = [&](const std::string& s) {
    if (progress_fn) progress_fn(s);
  };
  if (options.reps < 3) throw std::invalid_argument("fidelity needs at least 3 repetitions");
  FidelityResult out;
  out.backend = entry.name;
  out.reps = options.reps;
  const Shapes shapes = Shapes::for_device(entry.device_kind, options.config_dir);
  const bool gpu = entry.device_kind == "cuda";
  {
    auto be = entry.make(BackendOptions{});
    if (be->pace_slots() <= 0)
      throw std::runtime_error(entry.name + " cannot pace ops, so it cannot emulate");
    out.device = be->device_info().name;
    progress("calibrating");
    const Calibration cal = measure_calibration(*be, progress);
    progress("pacing accuracy");
    pacing_checks(*be, cal, options.reps, out);
    progress("overhead");
    overhead_checks(*be, cal, shapes, options.reps, out);
  }
  if (gpu) {
    for (int k : {16, 32, 64}) {
      BackendOptions fewer;
      fewer.sm_count = k;
      physical_check(entry, fewer, BackendOptions{}, fmt::format("{} SMs", k), shapes, options,
                     0.10, progress, out);
    }
    return out;
  }
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  if (cores < 2) {
    out.notes.push_back("physical check not run: this machine has one core, so there is no half");
    return out;
  }
  physical_check(entry, BackendOptions{cores / 2}, BackendOptions{cores},
                 fmt::format("{} of {} threads", cores / 2, cores), shapes, options, 0.10, progress,
                 out);
  return out;
}

nlohmann::json to_json(const FidelityResult& r) {
  nlohmann::json checks = nlohmann::json::array();
  for (const FidelityCheck& c : r.checks)
    checks.push_back({{"kind", c.kind},
                      {"name", c.name},
                      {"ratio", c.ratio},
                      {"goal", {c.goal_low, c.goal_high}},
                      {"passed", c.passed},
                      {"informational", c.informational},
                      {"detail", c.detail}});
  return {{"backend", r.backend}, {"device", r.device}, {"reps", r.reps},
          {"passed", r.passed()}, {"checks", checks},   {"notes", r.notes}};
}

FidelityResult fidelity_from_json(const JsonView& v) {
  FidelityResult r;
  r.backend = v.at("backend").as_string();
  r.device = v.get_string("device", "");
  r.reps = static_cast<int>(v.get_nonnegative_int("reps", 0));
  for (const JsonView& c : v.at("checks").items()) {
    FidelityCheck f;
    f.kind = c.at("kind").as_string();
    f.name = c.at("name").as_string();
    f.ratio = c.at("ratio").as_number();
    const std::vector<JsonView> goal = c.at("goal").items();
    if (goal.size() != 2)
      throw ConfigError(c.file(), c.path() + ".goal", "two numbers, [low, high]");
    f.goal_low = goal[0].as_number();
    f.goal_high = goal[1].as_number();
    f.passed = c.at("passed").as_bool();
    f.detail = c.get_string("detail", "");
    f.informational = c.has("informational") && c.at("informational").as_bool();
    r.checks.push_back(f);
  }
  if (v.has("notes"))
    for (const JsonView& n : v.at("notes").items()) r.notes.push_back(n.as_string());
  return r;
}

}  // namespace capbench
