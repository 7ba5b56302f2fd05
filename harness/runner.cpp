#include "harness/runner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <algorithm>
#include <cmath>
#include <new>
#include <optional>

#include "backends/comm/link_model.h"
#include "backends/op_costs.h"
#include "backends/op_profiler.h"
#include "backends/throttle/throttle_backend.h"
#include "build_info.h"
#include "harness/calibrate.h"
#include "harness/emulation.h"
#include "harness/host_info.h"
#include "harness/interrupt.h"
#include "workloads/model_config.h"
#include "workloads/transformer.h"

namespace capbench {
namespace {

// What a run needs besides its spec and workload: the (profiling) backend stack, the device's
// peaks, the emulation, the memory it must fit.
struct RunEnv {
  OpProfiler& be;
  SourcedRates peaks;          // the device's, at the run's dtype: utilisation, roofline
  const EmulationPlan* plan;   // null: a native run
  double device_memory_bytes;  // 0: unknown
  Progress& progress;
  MeteredCommunicator* comm;   // the data-parallel ranks, metered (null: none)
  const LinkModel* host_link;  // the host's own link, for the communication term (null: none)
  MeteredCommunicator* tp_comm = nullptr;  // the tensor-parallel ranks, metered (null: none)
  // The processes that run the suite in step and agree on each timed piece (null: one).
  Communicator* job = nullptr;
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

// `agree_stop` (several ranks): whether any rank would stop, so that every rank runs the same
// repetitions and meets the others in every collective.
LoopResult timed_loop(const RunnerSettings& rs, Progress& progress,
                      const std::vector<double>& primary,
                      const std::function<double(bool warmup, double* sampled)>& rep,
                      const std::function<bool(bool stop)>& agree_stop) {
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
    bool stop = r.reps >= rs.max_reps || r.wall >= rs.max_time_s;
    std::string status = fmt::format("rep {} ({:.1f} s)", r.reps, r.wall);
    if (!stop && r.reps >= rs.min_reps && r.wall >= rs.min_time_s) {
      const double ci = summarize(primary).median_ci_relative();
      stop = ci <= rs.ci_bound;
      status = fmt::format("rep {} ({:.1f} s): median ±{:.1f}%, repeating to ±{:.1f}%", r.reps,
                           r.wall, 100 * ci, 100 * rs.ci_bound);
    }
    if (agree_stop) stop = agree_stop(stop);
    if (stop) break;
    progress.update(status);
  }
  return r;
}

// A utilisation: achieved / peak. Above 1 it is not physically possible: the calibration is
// stale or was disturbed, so the figure is left out and the run says so instead.
void put_utilisation(std::map<std::string, double>& metrics, RunRecord& r, const Utilisation& u,
                     double peak) {
  if (!(peak > 0) || !std::isfinite(u.achieved)) return;
  const double fraction = u.achieved / peak;
  if (fraction <= 1.0) {
    metrics[u.metric] = fraction;
    return;
  }
  if (r.emulation.is_object()) {
    // Against the paced rates: a rule never slows an op below its own time, so an op that beats
    // its shape class (served from cache, say) runs faster than the target would.
    r.notes.push_back(fmt::format(
        "{} left out: the run reached {:.3f}x the {} it was paced to ({}): some ops ran faster "
        "than their paced rate, so the figure would mislead",
        u.label, fraction, u.of_flops ? "compute rate" : "memory rate", r.roofline.peaks_source));
    return;
  }
  r.notes.push_back(fmt::format(
      "{} left out: the run reached {:.3f}x the calibrated {} ({}), which cannot be; the "
      "calibration is stale or was disturbed (capbench calibrate --force measures it again)",
      u.label, fraction, u.of_flops ? "GEMM peak" : "memory peak", r.roofline.peaks_source));
}

std::vector<OpRecord> op_records(const OpProfiler& prof, const RunEnv& env) {
  const Rates& peak = env.peaks.rates;
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
    if (peak.flops > 0) {
      o.roofline_seconds = e.roofline_seconds;
      o.bound = roofline({e.flops, e.bytes}, peak.flops, peak.bytes_per_s).compute_bound ? "compute"
                                                                                         : "memory";
    }
    if (env.plan) o.target_roofline_seconds = e.target_roofline_seconds;
    out.push_back(o);
  }
  return out;
}

// Ops the host ran slower than the scaled target (the floor lets the host's own time through):
// the estimated times then exceed the target's, and a smaller time scale would pace them too.
void note_ops_slower_than_target(RunRecord& r, double time_scale) {
  std::vector<std::string> slow;
  double fitting = time_scale;
  for (const OpRecord& o : r.ops) {
    const double estimated = o.seconds * time_scale;
    if (!(o.target_roofline_seconds > 0) || estimated <= 1.05 * o.target_roofline_seconds) continue;
    slow.push_back(fmt::format("{} {:.2f}x", o.op, estimated / o.target_roofline_seconds));
    fitting = std::min(fitting, time_scale * o.target_roofline_seconds / estimated);
  }
  if (slow.empty()) return;
  r.emulation["ops_slower_than_target"] = slow;
  r.notes.push_back(fmt::format(
      "at time scale {:.3g} the host is slower than the target on {} (estimated / target time): "
      "the estimated times are upper bounds; --time-scale {:.2g} would pace these ops too",
      time_scale, fmt::join(slow, ", "), fitting * 0.9));
}

// Totals of the profiled ops between two snapshots, per unit of the phase.
struct PassTotals {
  OpCost cost;
  double host_s = 0, target_s = 0;
};
PassTotals totals(const OpProfiler::Entries& after, const OpProfiler::Entries& before,
                  double units) {
  PassTotals t;
  for (size_t i = 0; i < after.size(); ++i) {
    const OpProfiler::Entry &a = after[i], &b = before[i];
    t.cost += OpCost{(a.flops - b.flops) / units, (a.bytes - b.bytes) / units};
    t.host_s += (a.roofline_seconds - b.roofline_seconds) / units;
    t.target_s += (a.target_roofline_seconds - b.target_roofline_seconds) / units;
  }
  return t;
}

const char* bound_name(const OpCost& cost, const Rates& rates) {
  return roofline(cost, rates.flops, rates.bytes_per_s).compute_bound ? "compute" : "memory";
}

// The roofline prediction of one primary unit, on the device's peaks and on the target's rates.
void predict(RunRecord& r, const RunEnv& env, const PassTotals& unit) {
  const Rates& peak = env.peaks.rates;
  if (peak.flops > 0 && peak.bytes_per_s > 0) {
    r.roofline.available = true;
    r.roofline.seconds = unit.host_s;
    r.roofline.bound = bound_name(unit.cost, peak);
    r.roofline.peak_flops = peak.flops;
    r.roofline.peak_bytes_per_s = peak.bytes_per_s;
    r.roofline.peaks_source = env.peaks.source;
  }
  if (env.plan) {
    r.emulation["predicted_seconds"] = unit.target_s;
    r.emulation["predicted_bound"] = bound_name(unit.cost, env.plan->emulated);
  }
}

// A run's metrics from its medians, and its utilisations against the rates it ran at (the
// device's peaks; an emulated run's, the rates it was paced to).
void put_metrics(std::map<std::string, double>& out, RunRecord& r, const RunEnv& env,
                 const DerivedMetrics& derived, const std::map<std::string, double>& observed) {
  for (const auto& [name, value] : derived.values)
    if (std::isfinite(value)) out[name] = value;
  for (const auto& [name, value] : observed)
    if (std::isfinite(value)) out[name] = value;
  for (const Utilisation& u : derived.utilisations)
    put_utilisation(out, r, u, u.of_flops ? env.peaks.rates.flops : env.peaks.rates.bytes_per_s);
}

// A layer slice's times extrapolated to the whole model, phase by phase. The profiled pass
// splits each phase's time into the layers, the ops over every parameter (the optimizer step)
// and the rest (embedding, final norm, head, loss): the layers scale with the model's layer
// count over the slice's, the parameter-wide ops with its parameter count over the slice's, and
// the rest stays as it is.
void extrapolate(const Workload& w, const RunSpec& spec, const RunEnv& env,
                 const std::vector<Phase>& phases,
                 const std::vector<OpProfiler::RegionSeconds>& regions,
                 const std::map<std::string, double>& medians, RunRecord& r) {
  const ModelConfig& full = *spec.full_model;
  const double layer_ratio =
      static_cast<double>(full.n_layers) / static_cast<double>(spec.model.n_layers);
  const double param_ratio =
      static_cast<double>(param_count(full)) / static_cast<double>(param_count(spec.model));
  nlohmann::json x = {
      {"model", full.name},
      {"layers_run", spec.model.n_layers},
      {"layers", full.n_layers},
      {"parameters_run", param_count(spec.model)},
      {"parameters", param_count(full)},
      {"formula", fmt::format("t_model = t_run x (share_other + share_layers x {}/{} + "
                              "share_parameters x {}/{}), the shares from the run's profiled "
                              "pass, phase by phase",
                              full.n_layers, spec.model.n_layers, param_count(full),
                              param_count(spec.model))}};
  std::map<std::string, double> seconds;
  OpProfiler::RegionSeconds before{};
  for (size_t i = 0; i < phases.size(); ++i) {
    OpProfiler::RegionSeconds phase{};
    double total = 0;
    for (size_t k = 0; k < phase.size(); ++k) {
      phase[k] = regions[i][k] - before[k];
      total += phase[k];
    }
    before = regions[i];
    const std::string series = phases[i].name + "_s";
    if (!(total > 0) || !medians.count(series)) continue;
    const auto share = [&](Backend::Region region) {
      return phase[static_cast<size_t>(region)] / total;
    };
    const double factor = share(Backend::Region::other) +
                          share(Backend::Region::layers) * layer_ratio +
                          share(Backend::Region::parameters) * param_ratio;
    x["phases"][phases[i].name] = {{"share_other", share(Backend::Region::other)},
                                   {"share_layers", share(Backend::Region::layers)},
                                   {"share_parameters", share(Backend::Region::parameters)},
                                   {"factor", factor}};
    seconds[series] = medians.at(series) * factor;
    if (env.plan) {
      x["estimated_" + phases[i].name + "_seconds"] = seconds[series] * env.plan->time_scale;
      if (series == r.primary) x["estimated_seconds"] = seconds[series] * env.plan->time_scale;
    }
  }
  x["seconds"] = seconds;
  if (!seconds.count(r.primary)) {
    r.notes.push_back("no extrapolation to the whole model: the profiled pass timed nothing");
    return;
  }
  WorkloadParams whole{full,          spec.shape, spec.dtype, spec.seed, spec.learning_rate,
                       spec.parallel, nullptr};
  whole.parallel.world = r.key.world;
  std::map<std::string, double> metrics;
  put_metrics(metrics, r, env, w.metrics(whole, seconds), {});
  x["metrics"] = metrics;
  x["footprint_bytes"] = w.footprint_bytes(whole);
  r.extrapolation = std::move(x);
}

// A run whose footprint exceeds the emulated chip's memory, or this device's, is skipped: it
// could not run there. Checked from the shape before anything is allocated.
// A layer slice stands for its whole model, so on an emulated chip the whole model must fit.
bool fits(RunRecord& r, const RunEnv& env, double bytes, double model_bytes) {
  r.memory["footprint_bytes"] = bytes;
  if (env.plan) {
    const bool on_target = model_bytes <= env.plan->memory_capacity_bytes;
    r.emulation["footprint_bytes"] = model_bytes;
    r.emulation["fits"] = on_target;
    if (!on_target) {
      r.status = "skipped";
      r.reason = fmt::format("does not fit {}: needs {:.2f} GB, the chip has {:.0f} GB",
                             env.plan->pacing.profile, model_bytes / 1e9,
                             env.plan->memory_capacity_bytes / 1e9);
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

// Turns device graphs on for the run where the spec wants them and the backend can capture,
// and records which it was in the report (device.graphs).
bool use_graphs(const RunSpec& spec, const RunEnv& env, RunRecord& r, WorkloadRun& run) {
  const Support can = env.be.can_capture();
  const bool on = run.use_graphs(spec.graphs);
  r.device["graphs"] = {
      {"requested", spec.graphs},
      {"used", on},
      {"reason", on             ? "replayed as captured graphs"
                 : !spec.graphs ? "off by request (--no-graphs or \"graphs\": false)"
                 : !can.ok      ? can.reason
                                : "off: the run's collectives run on the host, outside device "
                                  "graphs"}};
  return on;
}

// The run's collectives (the timed repetitions'), per kind: calls, bytes, busy time, algbw and
// busbw; the link model's communication term per repetition, on the host's link and on the
// emulated chip's; and each rank's median of the primary series.
void record_collectives(RunRecord& r, const RunEnv& env, int64_t reps,
                        const std::vector<std::vector<double>>& rank_samples) {
  double host_term = 0, target_term = 0;
  const LinkModel* target = env.plan && env.plan->link ? &*env.plan->link : nullptr;
  // One communicator's collectives, per kind, into r.parallel[field]; its link-model terms.
  const auto record = [&](MeteredCommunicator& comm, const char* field) {
    const int world = comm.world();
    nlohmann::json kinds = nlohmann::json::object();
    const MeteredCommunicator::Totals totals = comm.totals();
    for (int k = 0; k < kCollectiveCount; ++k) {
      const CollectiveTotals& t = totals[static_cast<size_t>(k)];
      if (t.calls == 0) continue;
      const Collective kind = static_cast<Collective>(k);
      nlohmann::json j = {{"calls", t.calls}, {"bytes", t.bytes}, {"seconds", t.seconds}};
      if (t.seconds > 0) {
        j["algbw_bytes_per_s"] = t.bytes / t.seconds;
        j["busbw_bytes_per_s"] = t.bus_bytes / t.seconds;
      }
      kinds[collective_name(kind)] = j;
      const auto term = [&](const LinkModel& link) {
        return link.seconds(kind, t.bytes, world, t.calls) /
               static_cast<double>(std::max<int64_t>(1, reps));
      };
      if (env.host_link) host_term += term(*env.host_link);
      if (target) target_term += term(*target);
    }
    r.parallel[field] = kinds;
  };
  if (env.comm) record(*env.comm, "collectives");
  if (env.tp_comm) record(*env.tp_comm, "tp_collectives");
  if (env.host_link) r.roofline.communication_seconds = host_term;
  if (target) r.emulation["predicted_communication_seconds"] = target_term;
  if (!env.job || env.job->world() <= 1) return;
  // Each rank's own threads: local ranks share a host's cores, hosts may differ.
  const std::vector<double> threads = gather_values(*env.job, static_cast<double>(r.key.threads));
  // Each rank's time inside collectives: a rank that arrives early waits for the others inside
  // them, so the least of these is the closest to the link's own cost.
  const auto busy_seconds = [](const MeteredCommunicator* comm) {
    double s = 0;
    if (comm)
      for (const CollectiveTotals& t : comm->totals()) s += t.seconds;
    return s;
  };
  const std::vector<double> collective_s = gather_values(*env.job, busy_seconds(env.comm));
  const std::vector<double> tp_collective_s = gather_values(*env.job, busy_seconds(env.tp_comm));
  nlohmann::json per_rank = nlohmann::json::array();
  for (size_t k = 0; k < rank_samples.size(); ++k) {
    if (rank_samples[k].empty()) continue;
    nlohmann::json rank = {{"rank", k},
                           {"threads", static_cast<int64_t>(threads[k])},
                           {"median_s", median(rank_samples[k])}};
    if (env.comm) rank["collective_seconds"] = collective_s[k];
    if (env.tp_comm) rank["tp_collective_seconds"] = tp_collective_s[k];
    per_rank.push_back(rank);
  }
  if (!per_rank.empty()) r.parallel["ranks"] = per_rank;
}

// The workload on the stack: build, capture, timed loop, canaries, profiled pass, statistics
// and metrics, into the record.
void run_workload(const Workload& w, const RunSpec& spec, const RunEnv& env, RunRecord& r) {
  WorkloadParams params{spec.model,         spec.shape, spec.dtype, spec.seed,
                        spec.learning_rate, {},         nullptr};
  params.parallel = spec.parallel;
  params.parallel.world = r.key.world;
  params.comm = env.comm;
  params.tp_comm = env.tp_comm;
  // A real tensor-parallel rank holds its own shard; a virtual one plays rank 0.
  params.tp_rank = env.tp_comm && !spec.parallel.virtual_ranks ? env.tp_comm->rank() : 0;
  const double footprint = w.footprint_bytes(params);
  // Per rank: the whole model's shard, where a slice of its layers runs.
  WorkloadParams whole = params;
  if (spec.full_model) whole.model = *spec.full_model;
  const double model_footprint = spec.full_model ? w.footprint_bytes(whole) : footprint;
  if (!fits(r, env, footprint, model_footprint)) return;
  env.progress.update("initialising the model");
  const std::unique_ptr<WorkloadRun> run = w.build(env.be, params);
  for (const auto& [name, bytes] : run->memory()) r.memory[name] = bytes;
  // A replayed graph issues the collectives it captured (virtual ranks paced on the backend's
  // timeline) without calling the communicator: the capture's two passes issue two
  // repetitions' worth.
  std::optional<MeteredCommunicator::Totals> captured_tp;
  if (use_graphs(spec, env, r, *run)) {
    env.progress.update("capturing the graphs");
    if (env.tp_comm) env.tp_comm->reset();
    run->capture();
    if (env.tp_comm && env.tp_comm->on_backend_timeline()) captured_tp = env.tp_comm->totals();
  }

  r.primary = w.primary_series(spec.shape);
  Samples samples, warmup_samples;
  samples[r.primary];  // the series the loop watches exists from the start
  double sampled = 0;
  // Several ranks: a piece's time is the slowest rank's; each rank's own is kept too.
  Communicator* ranks = env.job && env.job->world() > 1 ? env.job : nullptr;
  std::vector<std::vector<double>> rank_samples(ranks ? static_cast<size_t>(ranks->world()) : 0);
  bool metering = false;
  const Timer timed = [&](const std::function<void()>& fn) {
    double t = time_synchronized(env.be, fn);
    if (ranks) {
      const std::vector<double> each = gather_values(*ranks, t);
      if (metering)
        for (size_t k = 0; k < each.size(); ++k) rank_samples[k].push_back(each[k]);
      t = *std::max_element(each.begin(), each.end());
    }
    sampled += t;
    return t;
  };
  std::function<bool(bool)> agree_stop;
  if (ranks)
    agree_stop = [ranks](bool stop) {
      std::vector<double> flag{stop ? 1.0 : 0.0};
      ranks->agree(flag, ReduceOp::max);
      return flag[0] > 0;
    };
  const LoopResult loop = timed_loop(
      spec.runner, env.progress, samples[r.primary],
      [&](bool warmup, double* out) {
        sampled = 0;
        if (!warmup && !metering) {  // the timed repetitions' collectives only
          if (env.comm) env.comm->reset();
          if (env.tp_comm) env.tp_comm->reset();
        }
        metering = !warmup;
        const double excluded = run->repetition(warmup, warmup ? warmup_samples : samples, timed);
        *out = warmup ? 0 : sampled;
        return excluded;
      },
      agree_stop);
  if (captured_tp) env.tp_comm->add(*captured_tp, static_cast<double>(loop.reps) / 2);
  if (env.comm || env.tp_comm) record_collectives(r, env, loop.reps, rank_samples);
  for (auto& [name, values] : samples)
    if (!values.empty()) r.samples[name] = values;
  r.harness_overhead = (loop.wall - loop.sampled - loop.excluded) / loop.sampled;

  env.progress.update("canaries");
  env.be.set_pacing(false);  // they check values: at the host's speed, not in slow motion
  r.canaries = run->canaries();
  env.be.set_pacing(true);

  env.progress.update("per-op breakdown");
  const std::vector<Phase> phases = w.phases(spec.shape);
  std::vector<OpProfiler::Entries> after(phases.size());
  std::vector<OpProfiler::RegionSeconds> regions(phases.size());
  // Predictions on the device's peaks, and on the emulated chip's own rates and launch overhead.
  env.be.start(env.peaks.rates, env.plan ? env.plan->emulated : Rates{},
               env.plan ? env.plan->launch_s : 0.0);
  run->profiled_pass([&](size_t phase) {
    env.be.synchronize();
    after.at(phase) = env.be.entries();
    regions.at(phase) = env.be.region_seconds();
  });
  env.be.synchronize();
  env.be.stop();
  r.ops = op_records(env.be, env);
  r.ops_unit = w.ops_unit(spec.shape);
  OpProfiler::Entries before{};
  for (size_t i = 0; i < phases.size(); ++i) {
    const Phase& phase = phases[i];
    const PassTotals unit = totals(after[i], before, std::max(phase.units, 1.0));
    before = after[i];
    if (phase.name + "_s" == r.primary) predict(r, env, unit);
    if (phases.size() < 2 || phase.units <= 0) continue;  // per phase only where there are two
    if (env.peaks.rates.flops > 0) r.metrics["roofline_" + phase.name + "_s"] = unit.host_s;
    if (env.plan) r.emulation["predicted_" + phase.name + "_seconds"] = unit.target_s;
  }
  // The times on the target: what the host measured, in slow motion, times the time scale.
  if (env.plan) {
    const double s = env.plan->time_scale;
    for (const auto& [name, values] : r.samples)
      if (!values.empty() && phases.size() > 1 && name.size() > 2)
        r.emulation["estimated_" + name.substr(0, name.size() - 2) + "_seconds"] =
            median(values) * s;
    r.emulation["estimated_seconds"] = median(r.samples.at(r.primary)) * s;
    // Under floor an op lasts at least its target time; dilate and shift carry the host's own
    // inefficiency over on purpose, so their ops are meant to exceed the roofline.
    // A run limited_by a dimension already says the host falls short of the target there.
    if (env.plan->pacing.mode == EmulationMode::floor && env.plan->limited_by.empty())
      note_ops_slower_than_target(r, s);
  }

  std::map<std::string, double> medians;
  for (const auto& [name, values] : r.samples) {
    r.stats[name] = summarize(values);
    medians[name] = r.stats[name].median;
  }
  r.validity = judge(r.stats.at(r.primary), loop.reps,
                     ValidityRules{spec.runner.min_reps, spec.runner.ci_bound});
  put_metrics(r.metrics, r, env, w.metrics(params, medians), run->observed());
  if (spec.full_model) extrapolate(w, spec, env, phases, regions, medians, r);
  for (const Canary& c : r.canaries)
    if (!c.passed) {
      r.status = "failed";
      r.reason = "canary " + c.name + " failed: " + c.detail;
      break;
    }
}

}  // namespace

RunRecord execute_run(const RunSpec& spec, const SuiteContext& context, Progress& progress) {
  RunRecord r;
  r.key.workload = spec.workload;
  r.key.model = spec.model.name;
  r.key.backend = spec.backend.empty() ? "(none)" : spec.backend;
  r.key.dtype = dtype_name(spec.dtype);
  r.key.batch = spec.shape.batch;
  r.key.seq = spec.shape.seq;
  r.key.prompt = spec.shape.prompt;
  r.key.decode_steps = spec.shape.decode_steps;
  r.key.threads = spec.threads;
  r.key.parallel_layout = spec.parallel.layout;
  r.key.world = spec.parallel.layout == "single" ? 1
                : spec.parallel.virtual_ranks    ? spec.parallel.world
                : !context.comm                  ? 1
                                                 : context.comm->world();
  r.key.tp = spec.parallel.tensor_ranks();
  r.key.virtual_ranks = spec.parallel.virtual_ranks;
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
  if (context.comm && context.comm->world() > 1 && spec.parallel.layout == "single") {
    r.status = "skipped";
    r.reason = fmt::format(
        "a single-rank entry under a launcher of {} ranks (give it \"parallel\", or run it "
        "without the launcher)",
        context.comm->world());
    return r;
  }
  try {
    const Workload* workload = find_workload(spec.workload);
    if (!workload) throw std::runtime_error("no workload " + spec.workload);
    const BackendEntry* entry = context.registry->find(spec.backend);
    if (!entry) throw std::runtime_error("backend " + spec.backend + " is not in this build");
    auto backend = entry->make(context.backend_options(spec.threads));
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
    // The host communicator moves host memory; device memory needs its device's (NCCL), whose
    // link the host's measurement does not describe, so such runs are not paced to a chip's link.
    Communicator* ranks = context.comm;
    bool host_memory = true;
    if (context.comm && context.comm->world() > 1 && spec.parallel.layout != "single" &&
        info.device_kind != "cpu") {
      const auto it = context.device_comms.find(info.device_kind);
      if (it == context.device_comms.end() || !it->second) {
        const auto why = context.device_comm_missing.find(info.device_kind);
        r.status = "skipped";
        r.reason = fmt::format("{} over {} ranks needs a communicator for {} memory: {}",
                               spec.parallel.layout, context.comm->world(), info.device_kind,
                               why == context.device_comm_missing.end() ? "none" : why->second);
        return r;
      }
      ranks = it->second;
      host_memory = false;
    }
    SourcedRates peaks = device_peaks_for(context, spec, info);
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
      SourcedHostRates host = host_rates_for(context, spec);
      if (host.rates.peak.flops <= 0 || host.rates.peak.bytes_per_s <= 0)
        throw std::runtime_error(
            "emulation needs the host's calibrated rates (run without --no-calibrate)");
      // A decode step's matmuls paced by the host's rate on their own shapes, not the nearest
      // calibrated class: a BLAS's rate jumps between neighbouring row counts.
      add_gemv_classes(*backend, spec.dtype, workload->one_row_products(spec.model),
                       host.rates.gemv);
      plan = plan_emulation(em, host.rates, spec.dtype, time_scale_for(context, spec, host.rates),
                            spec.graphs);
      if (host_memory && context.comm && context.comm->world() > 1 &&
          spec.parallel.layout != "single" && context.host_link_bytes_per_s > 0)
        plan_link(*plan, em, context.host_link_bytes_per_s, context.comm->world());
      r.emulation = plan_json(*plan, em);
      if (plan->link)
        r.emulation["link"] = {
            {"topology", plan->link->topology},
            {"link_bytes_per_s", plan->link->link_bytes_per_s},
            {"latency_s", plan->link->latency_s},
            {"bandwidth_bytes_per_s", plan->link->bandwidth(context.comm->world())},
            {"host_link_bytes_per_s", context.host_link_bytes_per_s}};
      r.emulation["host_rates"]["source"] = host.source;
      throttle = std::make_unique<ThrottleBackend>(*backend, plan->pacing);
      // An emulated run's utilisation is of the machine it played: the rates it was paced to.
      peaks = {plan->pacing.target.peak, fmt::format("the rates paced to: {} x time scale {:.4g}",
                                                     em.target.name, plan->time_scale)};
    }
    // The ranks: metered, and paced to the emulated chip's link (slowed by the time scale).
    TensorDataGroups groups;  // real tensor x data parallelism's
    std::unique_ptr<ThrottledCommunicator> paced_link, paced_tp_link;
    std::unique_ptr<Communicator> virtual_dp, virtual_tp;
    std::unique_ptr<MeteredCommunicator> metered, metered_tp;
    std::optional<LinkModel> host_link;
    const ParallelSpec& par = spec.parallel;
    const bool virtual_run = par.layout != "single" && par.virtual_ranks;
    if (virtual_run || (ranks && par.layout != "single")) {
      r.parallel = {{"layout", par.layout},
                    {"world", r.key.world},
                    {"tp", r.key.tp},
                    {"dp", r.key.world / r.key.tp},
                    {"virtual", par.virtual_ranks},
                    {"engine", virtual_run ? std::string("virtual") : ranks->engine()},
                    {"bucket_bytes", par.bucket_bytes},
                    {"first_bucket_bytes", par.first_bucket_bytes}};
      if (par.layout == "tp")
        r.parallel["kv_heads"] = kv_heads_replicated(spec.model, par.tensor_ranks())
                                     ? "replicated (tp above the kv heads)"
                                     : "split";
    }
    if (virtual_run) {
      // One process plays rank 0 of the world: collectives on the emulated chip's link (or the
      // one given), as slow as the time scale, moving nothing.
      LinkModel link;
      if (spec.emulation) {
        link = emulated_link(*spec.emulation, context.host_link_bytes_per_s,
                             static_cast<int>(par.world));
        plan->link = link;
        link = link.scaled(plan->time_scale);
      } else {
        link = *spec.virtual_link;
      }
      if (par.tensor_ranks() > 1) {
        // On the backend's timeline: in order with the ops, and inside device graphs.
        virtual_tp = std::make_unique<VirtualCommunicator>(static_cast<int>(par.tensor_ranks()),
                                                           link, backend.get());
        metered_tp = std::make_unique<MeteredCommunicator>(*virtual_tp);
      }
      if (par.data_ranks() > 1) {
        virtual_dp =
            std::make_unique<VirtualCommunicator>(static_cast<int>(par.data_ranks()), link);
        metered = std::make_unique<MeteredCommunicator>(*virtual_dp);
      }
      r.parallel["link"] = {
          {"topology", link.topology},
          {"link_bytes_per_s", link.link_bytes_per_s},
          {"latency_s", link.latency_s},
          {"source", spec.emulation ? spec.emulation->target.name + "'s link x time scale"
                                    : std::string("the suite's parallel.link")}};
    } else if (ranks && par.layout != "single") {
      Communicator* tensor_ranks = par.layout == "tp" ? ranks : nullptr;
      Communicator* data_ranks = par.layout == "dp" ? ranks : nullptr;
      if (par.layout == "tp" && par.data_ranks() > 1) {  // tensor x data: a group for each
        groups = split_tensor_data(*ranks, static_cast<int>(par.tensor_ranks()));
        tensor_ranks = groups.tensor.get();
        data_ranks = groups.data.get();
      }
      // Each group's collectives paced to the emulated chip's link, as slow as the time scale.
      const auto paced = [&](Communicator& group,
                             std::unique_ptr<ThrottledCommunicator>& holder) -> Communicator& {
        if (!plan || !plan->link || group.world() <= 1) return group;
        holder =
            std::make_unique<ThrottledCommunicator>(group, plan->link->scaled(plan->time_scale));
        return *holder;
      };
      if (tensor_ranks)
        metered_tp = std::make_unique<MeteredCommunicator>(paced(*tensor_ranks, paced_tp_link));
      if (data_ranks)
        metered = std::make_unique<MeteredCommunicator>(paced(*data_ranks, paced_link));
      if (host_memory && context.host_link_bytes_per_s > 0) {
        host_link.emplace();
        host_link->link_bytes_per_s = context.host_link_bytes_per_s;
        host_link->latency_s = context.host_link_latency_s;
        r.parallel["host_link"] = {{"bytes_per_s", context.host_link_bytes_per_s},
                                   {"latency_s", context.host_link_latency_s},
                                   {"source", context.host_link_source}};
      }
    }
    OpProfiler profiled(throttle ? static_cast<Backend&>(*throttle) : *backend);
    RunEnv env{profiled, peaks,         plan ? &*plan : nullptr,          device_memory,
               progress, metered.get(), host_link ? &*host_link : nullptr};
    env.tp_comm = metered_tp.get();
    env.job = context.comm;
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
    run_workload(*workload, spec, env, r);
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
  report.host = host_info(*context.registry, context.device_ordinal);
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
