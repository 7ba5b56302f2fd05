#include "harness/runner.h"

#include <fmt/format.h>
#include <unistd.h>
#include <cmath>
#include <new>
#include <optional>

#include "backends/throttle/throttle_backend.h"
#include "build_info.h"
#include "harness/host_info.h"
#include "harness/interrupt.h"
#include "backends/op_costs.h"
#include "workloads/cost_model.h"
#include "workloads/inference.h"
#include "workloads/train_step.h"

namespace capbench {

// ---- per-op profiler ------------------------------------------------------------------------

void OpProfiler::start(const Rates& host, const Rates& target) {
  entries_ = {};
  host_ = host;
  target_ = target;
  intercept_ = true;
}

void OpProfiler::around_op(OpId op, const OpCost& cost, const std::function<void()>& call) {
  inner_.synchronize();
  const double t0 = host_seconds_now();
  call();
  inner_.synchronize();
  Entry& e = entries_[static_cast<size_t>(op)];
  e.calls += 1;
  e.seconds += host_seconds_now() - t0;
  e.flops += cost.flops;
  e.bytes += cost.bytes;
  e.roofline_seconds += roofline(cost, host_.flops, host_.bytes_per_s).seconds;
  e.target_roofline_seconds += roofline(cost, target_.flops, target_.bytes_per_s).seconds;
}

void* OpProfiler::alloc(size_t bytes) {
  void* p = inner_.alloc(bytes);
  allocations_[p] = bytes;
  allocated_ += bytes;
  allocated_peak_ = std::max(allocated_peak_, allocated_);
  return p;
}

void OpProfiler::free(void* ptr) {
  if (auto it = allocations_.find(ptr); it != allocations_.end()) {
    allocated_ -= it->second;
    allocations_.erase(it);
  }
  inner_.free(ptr);
}

// ---- progress -------------------------------------------------------------------------------

Progress Progress::for_stderr() {
  return Progress(isatty(STDERR_FILENO) == 1);
}

void Progress::begin(size_t index, size_t total, const std::string& label) {
  prefix_ = fmt::format("[{}/{}] {}", index + 1, total, label);
  if (enabled_) fmt::print(stderr, "\r\033[K{} ...", prefix_);
}

void Progress::update(const std::string& status) {
  if (enabled_) fmt::print(stderr, "\r\033[K{}: {}", prefix_, status);
}

void Progress::end(const std::string& outcome) {
  if (enabled_) fmt::print(stderr, "\r\033[K{}: {}\n", prefix_, outcome);
}

// ---- one run --------------------------------------------------------------------------------

namespace {

// The device's peaks at the run's dtype: what MFU, MBU and the roofline divide by.
struct Peaks {
  double flops = 0, bytes_per_s = 0;
  std::string source;
};

// What a run needs besides its spec: the (profiling) backend, the host's peaks, the emulation.
struct RunEnv {
  OpProfiler& be;
  Peaks peaks;
  const EmulationPlan* plan;   // null: a native run
  double device_memory_bytes;  // 0: unknown
  Progress& progress;
};

// The timed loop: warm-up, then repetitions until min_reps and min_time_s are both met and the
// median of the primary series is known to within ci_bound (or a cap is hit). A noisy machine
// thus gets more samples rather than a verdict of "not valid", while a series whose typical
// value splits or drifts never settles and runs into the cap. `rep` runs one repetition,
// appending its samples to `primary` (and others), and returns the seconds it spent outside the
// samples on purpose (canary reads), which are not the runner's overhead.
struct LoopResult {
  int64_t reps = 0;
  double wall = 0, sampled = 0, excluded = 0;
};

LoopResult timed_loop(const RunnerSettings& rs, Progress& progress,
                      const std::vector<double>& primary,
                      const std::function<double(bool warmup, double* sampled)>& rep) {
  for (int64_t i = 0; i < rs.warmup; ++i) {
    check_interrupted();
    progress.update(fmt::format("warm-up {}/{}", i + 1, rs.warmup));
    double ignored = 0;
    rep(true, &ignored);
  }
  LoopResult r;
  const double start = host_seconds_now();
  for (;;) {
    check_interrupted();
    double sampled = 0;
    r.excluded += rep(false, &sampled);
    r.sampled += sampled;
    r.reps += 1;
    r.wall = host_seconds_now() - start;
    if (r.reps >= rs.max_reps || r.wall >= rs.max_time_s) break;
    if (r.reps >= rs.min_reps && r.wall >= rs.min_time_s) {
      const double ci = summarize(primary).median_ci_relative();
      if (ci <= rs.ci_bound) break;
      progress.update(fmt::format("rep {} ({:.1f} s): median ±{:.1f}%, repeating to ±{:.1f}%",
                                  r.reps, r.wall, 100 * ci, 100 * rs.ci_bound));
    } else {
      progress.update(fmt::format("rep {} ({:.1f} s)", r.reps, r.wall));
    }
  }
  return r;
}

void put_metric(RunRecord& r, const std::string& name, double value) {
  if (std::isfinite(value)) r.metrics[name] = value;
}

// A utilisation: achieved / peak. Above 1 it is not physically possible: the calibration is
// stale or was disturbed, so the figure is left out and the run says so instead.
void put_utilisation(RunRecord& r, const std::string& name, const char* label, double achieved,
                     double peak, const char* peak_name) {
  if (!(peak > 0) || !std::isfinite(achieved)) return;
  const double u = achieved / peak;
  if (u <= 1.0) {
    r.metrics[name] = u;
    return;
  }
  r.notes.push_back(fmt::format(
      "{} left out: the run reached {:.3f}x the calibrated {} ({}), which cannot be; the "
      "calibration is stale or was disturbed (capbench calibrate --force measures it again)",
      label, u, peak_name, r.roofline.peaks_source));
}

std::vector<OpRecord> op_records(const OpProfiler& prof, const RunEnv& env) {
  std::vector<OpRecord> out;
  for (int i = 0; i < kOpCount; ++i) {
    const OpProfiler::Entry& e = prof.entries()[static_cast<size_t>(i)];
    if (e.calls == 0) continue;
    OpRecord o;
    o.op = op_name(static_cast<OpId>(i));
    o.calls = e.calls;
    o.seconds = e.seconds;
    o.flops = e.flops;
    o.bytes = e.bytes;
    if (env.peaks.flops > 0) {
      o.roofline_seconds = e.roofline_seconds;
      o.bound = roofline({e.flops, e.bytes}, env.peaks.flops, env.peaks.bytes_per_s).compute_bound
                    ? "compute"
                    : "memory";
    }
    if (env.plan) o.target_roofline_seconds = e.target_roofline_seconds;
    out.push_back(o);
  }
  return out;
}

// Totals of the profiled ops between two snapshots (`before` null: from the start).
struct PassTotals {
  OpCost cost;
  double host_s = 0, target_s = 0;
};
using Entries = std::array<OpProfiler::Entry, kOpCount>;
PassTotals totals(const Entries& after, const Entries* before, double units) {
  PassTotals t;
  for (size_t i = 0; i < after.size(); ++i) {
    const OpProfiler::Entry& a = after[i];
    const OpProfiler::Entry b = before ? (*before)[i] : OpProfiler::Entry{};
    t.cost += OpCost{(a.flops - b.flops) / units, (a.bytes - b.bytes) / units};
    t.host_s += (a.roofline_seconds - b.roofline_seconds) / units;
    t.target_s += (a.target_roofline_seconds - b.target_roofline_seconds) / units;
  }
  return t;
}

const char* bound_name(const OpCost& cost, double flops, double bytes_per_s) {
  return roofline(cost, flops, bytes_per_s).compute_bound ? "compute" : "memory";
}

// The roofline prediction of one primary unit, on the host's peaks and on the target's rates.
void predict(RunRecord& r, const RunEnv& env, const PassTotals& unit) {
  if (env.peaks.flops > 0 && env.peaks.bytes_per_s > 0) {
    r.roofline.available = true;
    r.roofline.seconds = unit.host_s;
    r.roofline.bound = bound_name(unit.cost, env.peaks.flops, env.peaks.bytes_per_s);
    r.roofline.peak_flops = env.peaks.flops;
    r.roofline.peak_bytes_per_s = env.peaks.bytes_per_s;
    r.roofline.peaks_source = env.peaks.source;
  }
  if (env.plan) {
    r.emulation["predicted_seconds"] = unit.target_s;
    r.emulation["predicted_bound"] =
        bound_name(unit.cost, env.plan->target.flops, env.plan->target.bytes_per_s);
  }
}

// A run whose footprint exceeds the emulated chip's memory, or this device's, is skipped: it
// could not run there. Checked from the shape before anything is allocated.
bool fits(RunRecord& r, const RunEnv& env, double bytes) {
  r.memory["footprint_bytes"] = bytes;
  if (env.plan) {
    const bool on_target = bytes <= env.plan->memory_capacity_bytes;
    r.emulation["footprint_bytes"] = bytes;
    r.emulation["fits"] = on_target;
    if (!on_target) {
      r.status = "skipped";
      r.reason = fmt::format("does not fit {}: needs {:.2f} GB, the chip has {:.0f} GB",
                             env.plan->profile, bytes / 1e9, env.plan->memory_capacity_bytes / 1e9);
      return false;
    }
  }
  if (env.device_memory_bytes > 0 && bytes > env.device_memory_bytes) {
    r.status = "skipped";
    r.reason = fmt::format("does not fit this device: needs {:.2f} GB, it has {:.2f} GB",
                           bytes / 1e9, env.device_memory_bytes / 1e9);
    return false;
  }
  return true;
}

void start_profile(const RunEnv& env) {
  env.be.start(Rates{env.peaks.flops, env.peaks.bytes_per_s},
               env.plan ? env.plan->target : Rates{});
}

void finish_stats(RunRecord& r, const RunnerSettings& rs, int64_t repetitions) {
  for (const auto& [name, values] : r.samples) r.stats[name] = summarize(values);
  r.validity = judge(r.stats.at(r.primary), repetitions, ValidityRules{rs.min_reps, rs.ci_bound});
}

// Turns device graphs on for the run where the spec wants them and the backend can capture,
// and records which it was in the report (device.graphs).
bool use_graphs(const RunSpec& spec, const RunEnv& env, RunRecord& r,
                const std::function<bool(bool)>& enable) {
  const Support can = env.be.can_capture();
  const bool on = enable(spec.graphs);
  r.device["graphs"] = {
      {"requested", spec.graphs},
      {"used", on},
      {"reason", on             ? "replayed as captured graphs"
                 : !spec.graphs ? "off by request (--no-graphs or \"graphs\": false)"
                                : can.reason}};
  return on;
}

void run_train(const RunSpec& spec, const RunEnv& env, RunRecord& r) {
  OpProfiler& be = env.be;
  AdamWArgs opt;
  opt.lr = static_cast<float>(spec.learning_rate);
  if (!fits(r, env, TrainStep::footprint_bytes(spec.model, spec.batch, spec.seq, spec.dtype)))
    return;
  env.progress.update("initialising the model");
  TrainStep work(be, spec.model, spec.batch, spec.seq, spec.seed, opt, spec.dtype);
  r.memory["parameters_and_optimizer_bytes"] = static_cast<double>(work.model().bytes());
  r.memory["total_bytes"] = static_cast<double>(work.memory_bytes());
  if (use_graphs(spec, env, r, [&](bool on) { return work.use_graphs(on); })) {
    env.progress.update("capturing the step's graph");
    for (int i = 0; i < 2; ++i) work.run();  // eager, then captured: neither is timed
  }

  std::vector<double> losses, steps;
  const LoopResult loop =
      timed_loop(spec.runner, env.progress, steps, [&](bool warmup, double* sampled) {
        const double t = time_synchronized(be, [&] { work.run(); });
        if (!warmup) steps.push_back(t);
        *sampled = warmup ? 0 : t;
        const double t0 = host_seconds_now();
        losses.push_back(work.loss());  // the canary's read, outside the timed step
        return host_seconds_now() - t0;
      });
  r.primary = "step_s";
  r.samples["step_s"] = steps;
  r.harness_overhead = (loop.wall - loop.sampled - loop.excluded) / loop.sampled;

  // The canary compares the first and last loss. When a time cap stopped the loop after one
  // step (a slow backend on a large model), take one more, untimed, for it.
  const size_t timed_losses = losses.size();
  while (losses.size() < 2) {
    work.run();
    losses.push_back(work.loss());
  }
  Canary canary{"loss_falls", false, "", losses};
  bool finite = true;
  for (double l : losses) finite = finite && std::isfinite(l);
  canary.passed = finite && losses.back() < losses.front();
  canary.detail = fmt::format("loss {:.4f} -> {:.4f} over {} steps{}{}", losses.front(),
                              losses.back(), losses.size(), finite ? "" : " (non-finite loss)",
                              timed_losses < losses.size() ? " (one extra untimed step)" : "");
  r.canaries.push_back(canary);

  env.progress.update("per-op breakdown");
  work.use_graphs(false);  // op by op
  start_profile(env);
  work.run();
  be.synchronize();
  be.stop();
  r.ops = op_records(be, env);
  r.ops_unit = "one train step";
  predict(r, env, totals(be.entries(), nullptr, 1.0));

  finish_stats(r, spec.runner, loop.reps);
  const double step = r.stats.at("step_s").median;
  const double flops = train_step_model_flops(spec.model, spec.batch, spec.seq);
  put_metric(r, "step_ms", step * 1e3);
  put_metric(r, "tokens_per_s", static_cast<double>(work.tokens_per_step()) / step);
  put_metric(r, "model_flops_per_step", flops);
  put_metric(r, "achieved_flops_per_s", flops / step);
  put_utilisation(r, "mfu", "MFU", flops / step, env.peaks.flops, "GEMM peak");
  put_metric(r, "final_loss", losses.back());
  if (!canary.passed) {
    r.status = "failed";
    r.reason = "canary loss_falls failed: " + canary.detail;
  }
}

void run_inference(const RunSpec& spec, const RunEnv& env, RunRecord& r) {
  OpProfiler& be = env.be;
  if (!fits(r, env,
            Inference::footprint_bytes(spec.model, spec.batch, spec.prompt, spec.decode_steps,
                                       spec.dtype)))
    return;
  env.progress.update("initialising the model");
  Inference work(be, spec.model, spec.batch, spec.prompt, spec.decode_steps, spec.seed, spec.dtype);
  r.memory["parameters_bytes"] = static_cast<double>(work.model().bytes());
  r.memory["total_bytes"] = static_cast<double>(work.memory_bytes());
  if (use_graphs(spec, env, r, [&](bool on) { return work.use_graphs(on); })) {
    env.progress.update("capturing prefill and decode graphs");
    for (int i = 0; i < 2; ++i) {  // eager, then captured: neither is timed
      work.prefill();
      for (int64_t s = 0; s < spec.decode_steps; ++s) work.decode(s);
    }
  }

  std::vector<double> prefill, decode;
  const LoopResult loop =
      timed_loop(spec.runner, env.progress, spec.decode_steps > 0 ? decode : prefill,
                 [&](bool warmup, double* sampled) {
                   const double tp = time_synchronized(be, [&] { work.prefill(); });
                   double sum = tp;
                   if (!warmup) prefill.push_back(tp);
                   for (int64_t s = 0; s < spec.decode_steps; ++s) {
                     const double td = time_synchronized(be, [&] { work.decode(s); });
                     if (!warmup) decode.push_back(td);
                     sum += td;
                   }
                   *sampled = warmup ? 0 : sum;
                   return 0.0;
                 });
  r.primary = spec.decode_steps > 0 ? "decode_step_s" : "prefill_s";
  r.samples["prefill_s"] = prefill;
  if (spec.decode_steps > 0) r.samples["decode_step_s"] = decode;
  r.harness_overhead = (loop.wall - loop.sampled - loop.excluded) / loop.sampled;

  env.progress.update("canary: decode vs full forward");
  const double err = work.kv_consistency_error();
  const double tolerance = spec.dtype == DType::f32 ? 1e-4 : 2e-2;
  Canary canary{"kv_cache_matches_full_forward",
                err <= tolerance,
                fmt::format("max |incremental - full| / max |logit| = {:.3g} (tolerance {:.0e})",
                            err, tolerance),
                {err}};
  r.canaries.push_back(canary);

  env.progress.update("per-op breakdown");
  work.use_graphs(false);  // op by op
  start_profile(env);
  work.prefill();
  be.synchronize();
  const Entries after_prefill = be.entries();
  for (int64_t s = 0; s < spec.decode_steps; ++s) work.decode(s);
  be.synchronize();
  be.stop();
  r.ops = op_records(be, env);
  r.ops_unit = fmt::format("one prefill + {} decode steps", spec.decode_steps);
  const PassTotals prefill_unit = totals(after_prefill, nullptr, 1.0);
  const PassTotals decode_unit = totals(
      be.entries(), &after_prefill, static_cast<double>(std::max<int64_t>(spec.decode_steps, 1)));
  predict(r, env, spec.decode_steps > 0 ? decode_unit : prefill_unit);
  if (env.peaks.flops > 0) {
    put_metric(r, "roofline_prefill_s", prefill_unit.host_s);
    if (spec.decode_steps > 0) put_metric(r, "roofline_decode_step_s", decode_unit.host_s);
  }
  if (env.plan) {
    r.emulation["predicted_prefill_seconds"] = prefill_unit.target_s;
    if (spec.decode_steps > 0) r.emulation["predicted_decode_step_seconds"] = decode_unit.target_s;
  }

  finish_stats(r, spec.runner, loop.reps);
  const double ttft = r.stats.at("prefill_s").median;
  const double prompt_tokens = static_cast<double>(spec.batch * spec.prompt);
  put_metric(r, "ttft_ms", ttft * 1e3);
  put_metric(r, "prefill_tokens_per_s", prompt_tokens / ttft);
  const double prefill_flops = forward_model_flops(spec.model, spec.batch, spec.prompt, 0);
  put_metric(r, "prefill_flops_per_s", prefill_flops / ttft);
  put_utilisation(r, "prefill_mfu", "prefill MFU", prefill_flops / ttft, env.peaks.flops,
                  "GEMM peak");
  if (spec.decode_steps > 0) {
    const double tpot = r.stats.at("decode_step_s").median;
    // Mean cache length over the decode steps: positions P+1 .. P+D are read.
    const int64_t mean_ctx = spec.prompt + (spec.decode_steps + 1) / 2;
    const double bytes =
        decode_step_min_bytes(spec.model, spec.batch, mean_ctx, spec.dtype, spec.dtype);
    put_metric(r, "tpot_ms", tpot * 1e3);
    put_metric(r, "decode_tokens_per_s", static_cast<double>(spec.batch) / tpot);
    put_metric(r, "decode_bytes_per_step", bytes);
    put_metric(r, "decode_bytes_per_s", bytes / tpot);
    put_utilisation(r, "mbu", "MBU", bytes / tpot, env.peaks.bytes_per_s, "memory peak");
  }
  if (!canary.passed) {
    r.status = "failed";
    r.reason = "canary kv_cache_matches_full_forward failed: " + canary.detail;
  }
}

nlohmann::json plan_json(const EmulationPlan& p, const EmulationSpec& spec) {
  auto figure = [](const Figure& f) {
    return nlohmann::json{{"value", f.value}, {"source", f.source}, {"kind", f.kind}};
  };
  nlohmann::json j = {
      {"profile", p.profile},
      {"profile_file", spec.target.file},
      {"mode", emulation_mode_name(p.mode)},
      {"relative_to",
       p.relative_to.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.relative_to)},
      {"host_rates", {{"flops", p.host.flops}, {"bytes_per_s", p.host.bytes_per_s}}},
      {"target_rates", {{"flops", p.target.flops}, {"bytes_per_s", p.target.bytes_per_s}}},
      {"limited_by", p.limited_by},
      {"memory_capacity_bytes", p.memory_capacity_bytes},
      {"profile_figures",
       {{"bf16_flops", figure(spec.target.bf16_flops)},
        {"fp32_flops", figure(spec.target.fp32_flops)},
        {"memory_bytes_per_s", figure(spec.target.memory_bytes_per_s)},
        {"memory_capacity_bytes", figure(spec.target.memory_capacity_bytes)}}}};
  if (!p.relative_to.empty()) {
    j["compute_ratio"] = p.compute_ratio;
    j["bandwidth_ratio"] = p.bandwidth_ratio;
  }
  return j;
}

}  // namespace

std::string backend_rates_key(const std::string& backend, int64_t threads) {
  return backend + "|threads=" + std::to_string(threads);
}

RunRecord execute_run(const RunSpec& spec, const SuiteContext& context, Progress& progress) {
  RunRecord r;
  r.key.workload = spec.workload;
  r.key.model = spec.model.name;
  r.key.backend = spec.backend.empty() ? "(none)" : spec.backend;
  r.key.dtype = dtype_name(spec.dtype);
  r.key.batch = spec.batch;
  r.key.seq = spec.seq;
  r.key.prompt = spec.prompt;
  r.key.decode_steps = spec.decode_steps;
  r.key.threads = spec.threads;
  r.settings = {{"warmup", spec.runner.warmup},
                {"min_reps", spec.runner.min_reps},
                {"max_reps", spec.runner.max_reps},
                {"min_time_s", spec.runner.min_time_s},
                {"max_time_s", spec.runner.max_time_s},
                {"ci_bound", spec.runner.ci_bound},
                {"seed", spec.seed},
                {"learning_rate", spec.learning_rate},
                {"origin", spec.origin}};
  if (spec.backend.empty() || !spec.no_backend_reason.empty()) {
    r.status = "skipped";
    r.reason = spec.no_backend_reason;
    return r;
  }
  try {
    const BackendEntry* entry = context.registry->find(spec.backend);
    if (!entry) throw std::runtime_error("backend " + spec.backend + " is not in this build");
    auto backend = entry->make(BackendOptions{static_cast<int>(spec.threads)});
    const DeviceInfo info = backend->device_info();
    r.key.device = info.name;
    r.key.threads = info.threads;
    r.device = {{"backend", info.backend}, {"kind", info.device_kind},
                {"name", info.name},       {"memory_bytes", info.memory_bytes},
                {"threads", info.threads}, {"library", info.library_version}};
    for (int op = 0; op < kOpCount; ++op) {
      const Support s = backend->supports(static_cast<OpId>(op), spec.dtype);
      if (!s.ok) {
        r.status = "skipped";
        r.reason = fmt::format("{} does not support {} in {}: {}", spec.backend,
                               op_name(static_cast<OpId>(op)), dtype_name(spec.dtype), s.reason);
        return r;
      }
    }
    Peaks peaks;
    const auto own_rates =
        context.backend_rates.find(backend_rates_key(spec.backend, spec.threads));
    if (auto it = context.peaks.find(info.device_kind); it != context.peaks.end()) {
      const DevicePeaks& device = it->second;
      peaks.flops = device.flops(spec.dtype);
      peaks.bytes_per_s = device.bytes_per_s;
      peaks.source = fmt::format(
          "best of {}'s backends: {} GEMM {}; memory {}", device.device, dtype_name(spec.dtype),
          spec.dtype == DType::bf16 ? device.bf16_source : device.fp32_source, device.bytes_source);
    } else if (info.peak_flops > 0) {
      peaks = {info.peak_flops, info.peak_bytes_per_s, "backend device_info"};
    }
    const double device_memory =
        info.device_kind == "cpu" ? host_memory_bytes() : static_cast<double>(info.memory_bytes);
    // The stack: profiler (times ops in its one pass) -> throttle (paces ops) -> backend.
    std::optional<EmulationPlan> plan;
    std::unique_ptr<ThrottleBackend> throttle;
    if (spec.emulation) {
      const EmulationSpec& em = *spec.emulation;
      r.key.emulation_profile = em.target.name;
      r.key.emulation_mode = emulation_mode_name(em.mode);
      r.key.emulation_relative_to = em.reference ? em.reference->name : "";
      if (backend->pace_slots() <= 0) {
        r.status = "skipped";
        r.reason = spec.backend + " cannot pace ops, so it cannot emulate another chip yet";
        return r;
      }
      // The host rates: this backend's own calibration.
      Rates host;
      std::string host_source;
      if (own_rates != context.backend_rates.end()) {
        const Calibration& own = own_rates->second;
        host = {spec.dtype == DType::bf16 ? own.gemm_bf16_flops : own.gemm_flops,
                own.stream_bytes_per_s};
        host_source = fmt::format("calibrated with {} ({} threads, {})", own.backend, own.threads,
                                  own.measured_utc);
      }
      if (host.flops <= 0 || host.bytes_per_s <= 0)
        throw std::runtime_error(
            "emulation needs the host's calibrated rates (run without "
            "--no-calibrate)");
      plan = plan_emulation(em.target, em.reference ? &*em.reference : nullptr, host, em.mode,
                            spec.dtype);
      r.emulation = plan_json(*plan, em);
      r.emulation["host_rates"]["source"] = host_source;
      throttle = std::make_unique<ThrottleBackend>(*backend, *plan);
    }
    OpProfiler profiled(throttle ? static_cast<Backend&>(*throttle) : *backend);
    const RunEnv env{profiled, peaks, plan ? &*plan : nullptr, device_memory, progress};
    backend->reset_device_peak_bytes();  // the device allocator outlives a backend object
    // Whatever happens in the run, the memory it reached goes into the record.
    struct MemoryPeaks {
      OpProfiler& be;
      RunRecord& r;
      ~MemoryPeaks() {
        r.memory["allocated_peak_bytes"] = static_cast<double>(be.allocated_peak_bytes());
        try {
          if (const uint64_t device = be.device_peak_bytes())
            r.memory["device_peak_bytes"] = static_cast<double>(device);
        } catch (...) {  // may run while an exception unwinds: never throw from here
        }
      }
    } record_peaks{profiled, r};
    if (spec.workload == "train_step")
      run_train(spec, env, r);
    else
      run_inference(spec, env, r);
  } catch (const Interrupted&) {
    throw;  // not this run's failure: the suite stops and keeps what finished
  } catch (const OutOfDeviceMemory& e) {
    r.status = "failed";
    r.reason = std::string("out of device memory: ") + e.what();
  } catch (const std::bad_alloc&) {
    r.status = "failed";
    r.reason = "out of memory";
  } catch (const std::exception& e) {
    r.status = "failed";
    // Library messages (ATen's) append a backtrace after their first line.
    const std::string what = e.what();
    r.reason = what.substr(0, what.find('\n'));
  }
  return r;
}

Report run_suite(const Suite& suite, const SuiteContext& context, Progress& progress) {
  Report report;
  report.capbench_version = CAPBENCH_VERSION;
  report.git_revision = CAPBENCH_GIT_REVISION;
  report.created_utc = utc_now_iso8601();
  report.suite = suite.name;
  report.host = host_info(*context.registry);
  for (const auto& [kind, p] : context.peaks) report.calibration[kind] = to_json(p);
  for (size_t i = 0; i < suite.runs.size(); ++i) {
    const RunSpec& spec = suite.runs[i];
    const std::string label = fmt::format("{} {} {}", spec.backend.empty() ? "-" : spec.backend,
                                          spec.model.name, spec.workload);
    progress.begin(i, suite.runs.size(), label);
    try {
      check_interrupted();
      RunRecord r = execute_run(spec, context, progress);
      progress.end(r.status == "ok" ? "ok" : r.status + ": " + r.reason);
      report.runs.push_back(std::move(r));
    } catch (const Interrupted& stop) {
      progress.end("interrupted");
      report.interrupted = {{"signal", signal_name(stop.signal())},
                            {"during", label + " (" + spec.origin + ")"},
                            {"runs_finished", report.runs.size()},
                            {"runs_not_run", suite.runs.size() - i}};
      break;
    }
  }
  return report;
}

}  // namespace capbench
