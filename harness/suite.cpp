#include "harness/suite.h"

#include <fmt/format.h>
#include <cstdlib>

#include "harness/config_files.h"
#include "harness/json_access.h"

#include <algorithm>
#include <set>

namespace capbench {

namespace {

// The dtypes a model computes at (Model: fp32, or bf16 mixed precision).
bool is_model_dtype(DType d) {
  return d == DType::f32 || d == DType::bf16;
}

RunnerSettings runner_settings(const JsonView& v, RunnerSettings base) {
  if (v.has("cv_bound"))
    v.at("cv_bound")
        .fail(
            "no cv_bound: the validity verdict bounds the median's 95% confidence interval, set "
            "as ci_bound (a fraction of the median, default 0.05)");
  base.warmup = v.get_int_in("warmup", base.warmup, 0, kMaxRepetitions);
  base.min_reps = v.get_int_in("min_reps", base.min_reps, 1, kMaxRepetitions);
  base.max_reps = v.get_int_in("max_reps", base.max_reps, 1, kMaxRepetitions);
  base.min_time_s = v.get_number_in("min_time_s", base.min_time_s, 0, kMaxSeconds);
  base.max_time_s = v.get_number_in("max_time_s", base.max_time_s, 1e-3, kMaxSeconds);
  base.ci_bound = v.get_number_in("ci_bound", base.ci_bound, 1e-4, 1.0);
  if (base.max_reps < base.min_reps)
    v.at("max_reps").fail(fmt::format("at least min_reps ({})", base.min_reps));
  return base;
}

// Backend names a run entry lists: registry names, or "cpu" / "cuda" for every non-oracle
// backend of that device kind this build has.
using Unavailable = std::vector<std::pair<std::string, std::string>>;  // name, reason

// Backend names and kinds to the backends of this build. Names capbench knows but cannot run
// here go to `unavailable` with the reason; so do the unavailable backends of a "cpu"/"cuda"
// kind when the whole list matches nothing (["cpu", "cuda"] on a CPU machine is no news).
std::vector<std::string> expand_backends(const std::vector<std::string>& names,
                                         const JsonView& where, const Registry& registry,
                                         Unavailable* unavailable) {
  std::vector<std::string> out;
  Unavailable of_kinds;
  for (const std::string& name : names) {
    if (name == "cpu" || name == "cuda") {
      for (const BackendEntry& e : registry.entries())
        if (e.device_kind == name && !e.oracle) out.push_back(e.name);
      for (const UnavailableBackend& u : registry.unavailable())
        if (u.device_kind == name) of_kinds.push_back({u.name, u.reason});
    } else if (registry.find(name)) {
      out.push_back(name);
    } else if (const UnavailableBackend* u = registry.unavailable(name)) {
      unavailable->push_back({u->name, u->reason});
    } else {
      std::string known;
      for (const std::string& n : registry.names()) known += (known.empty() ? "" : ", ") + n;
      where.fail(
          fmt::format("a backend of this build ({}) or \"cpu\"/\"cuda\", got \"{}\"", known, name));
    }
  }
  if (out.empty() && unavailable->empty()) *unavailable = of_kinds;
  return out;
}

// `n` of the model's layers, at its real dimensions: what a CPU can run of a 7B-class model
// in minutes, extrapolated by layer count afterwards.
ModelConfig layer_slice(const ModelConfig& full, int64_t n) {
  ModelConfig slice = full;
  slice.n_layers = n;
  slice.name = fmt::format("{} ({} of {} layers)", full.name, n, full.n_layers);
  return slice;
}

// A suite entry's "parallel" object ({"layout": "dp", "bucket_mb": 25}; {"layout": "tp", "tp": 8,
// "dp": 1, "virtual": true, "link": {...}}), or the defaults', or --parallel / --tp / --dp /
// --virtual / --bucket-mb. Data parallelism is of training: an inference entry stays single.
// `some_run_native`: whether the entry has a run without emulation (whose virtual ranks then
// need a link given here).
ParallelSpec parallel_spec(const JsonView& e, const JsonView& defaults, const SuiteOverrides& ov,
                           const Workload& workload, const ModelConfig& model, bool some_run_native,
                           std::optional<LinkModel>* link) {
  ParallelSpec p;
  const JsonView* from = e.has("parallel") ? &e : defaults.has("parallel") ? &defaults : nullptr;
  std::optional<JsonView> o;
  if (from) {
    o = from->at("parallel").object();
    p.layout = o->get_string("layout", "single");
    if (p.layout != "single" && p.layout != "dp" && p.layout != "tp")
      o->at("layout").fail("\"single\", \"dp\" or \"tp\", got \"" + p.layout + "\"");
    if (o->has("bucket_mb")) {
      const double mib = o->at("bucket_mb").as_number_in(1.0 / (1 << 20), 1 << 20);
      p.bucket_bytes = static_cast<int64_t>(mib * (1 << 20));
    }
    p.tp = o->get_int_in("tp", 0, 1, kMaxHeads);
    p.dp = o->get_int_in("dp", 1, 1, 1 << 20);
    if (o->has("virtual")) p.virtual_ranks = o->at("virtual").as_bool();
    if (o->has("link")) {
      const JsonView l = o->at("link").object();
      LinkModel m;
      m.topology = l.get_string("topology", "switch");
      if (m.topology != "switch" && m.topology != "full_mesh")
        l.at("topology").fail("\"switch\" or \"full_mesh\", got \"" + m.topology + "\"");
      m.link_bytes_per_s = l.at("bytes_per_s").as_number_in(1e3, 1e15);
      m.latency_s = l.get_number_in("latency_s", 0, 0, 1);
      *link = m;
    }
  }
  const auto fail = [&](const char* field, const std::string& what) {
    if (o && o->has(field)) o->at(field).fail(what);
    if (o) o->fail(what);
    throw UsageError(what);
  };
  if (ov.parallel) {
    if (*ov.parallel != "single" && *ov.parallel != "dp" && *ov.parallel != "tp")
      throw UsageError("--parallel must be single, dp or tp, got \"" + *ov.parallel + "\"");
    p.layout = *ov.parallel;
  }
  if (ov.tp) p.tp = *ov.tp;
  if (ov.dp) p.dp = *ov.dp;
  if (ov.virtual_ranks) p.virtual_ranks = true;
  if (ov.bucket_mib) {
    if (!(*ov.bucket_mib * (1 << 20) >= 1) || *ov.bucket_mib > (1 << 20))
      throw UsageError(
          fmt::format("--bucket-mb must be in [1 byte, 1 TiB], got {}", *ov.bucket_mib));
    p.bucket_bytes = static_cast<int64_t>(*ov.bucket_mib * (1 << 20));
  }
  p.first_bucket_bytes = std::min(p.first_bucket_bytes, p.bucket_bytes);
  if (p.layout == "dp" && workload.name() != "train_step") {
    if (from && !ov.parallel)
      from->at("parallel")
          .at("layout")
          .fail("\"single\" for " + workload.name() + " (data parallelism is of the train step)");
    p.layout = "single";  // --parallel dp applies to the training entries
  }
  if (p.layout == "single") return ParallelSpec{};
  if (p.virtual_ranks && ov.launcher_world > 1)
    fail("virtual", fmt::format("virtual ranks run in one process, not under a launcher of {} "
                                "ranks (drop \"virtual\", or run without the launcher)",
                                ov.launcher_world));
  // A virtual rank's collectives last a link model's time: the emulated chip's, or one given.
  if (p.virtual_ranks && some_run_native && !*link)
    fail("link",
         "a link for the virtual ranks' collectives: emulate a profile (its link), or give "
         "\"link\": {\"bytes_per_s\": ..., \"latency_s\": ...}");
  if (p.layout == "dp") {
    p.tp = 1;
    if (p.virtual_ranks) {
      if (p.dp < 2) fail("dp", "virtual data parallelism needs \"dp\" of at least 2");
      p.world = p.dp;
    } else {
      p.dp = 1;  // the launcher's world, known when the run starts
    }
    return p;
  }
  // Tensor parallelism: tp defaults to the launcher's world (over dp).
  if (p.tp == 0) {
    if (p.virtual_ranks) fail("tp", "virtual tensor parallelism needs \"tp\" (the ranks played)");
    p.tp = std::max<int64_t>(1, ov.launcher_world / p.dp);
  }
  if (const std::string why = tensor_parallel_problem(model, p.tp); !why.empty()) fail("tp", why);
  p.world = p.tp * p.dp;
  if (!p.virtual_ranks && p.world != ov.launcher_world)
    fail("tp", fmt::format("tp {} x dp {} is a world of {}, but {} rank(s) were launched (run "
                           "under capbench launch -n {}, or with \"virtual\": true)",
                           p.tp, p.dp, p.world, ov.launcher_world, p.world));
  return p;
}

// What makes two specs the same experiment (what a report's run key holds, before the run).
std::string experiment_of(const RunSpec& r) {
  std::string s = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", r.workload, r.model.name,
                              r.backend, dtype_name(r.dtype), r.shape.batch, r.shape.seq,
                              r.shape.prompt, r.shape.decode_steps, r.threads, r.seed,
                              r.learning_rate, r.graphs, r.no_backend_reason);
  s += fmt::format("|{}|{}|{}|{}|{}", r.parallel.layout, r.parallel.bucket_bytes, r.parallel.tp,
                   r.parallel.dp, r.parallel.virtual_ranks);
  if (r.emulation)
    s += fmt::format("|{}|{}|{}|{}", r.emulation->target.name,
                     emulation_mode_name(r.emulation->mode),
                     r.emulation->reference ? r.emulation->reference->name : "",
                     time_scale_name(r.emulation->time_scale));
  return s;
}

// A shape the model cannot hold (the workload says why): a ConfigError at the field when the
// suite file set it, a UsageError when a command-line override did.
void check_shape(const Workload& w, const RunSpec& s, const JsonView& entry, bool from_overrides) {
  std::string field;
  const std::string why = w.check(s.model, s.shape, &field);
  if (why.empty()) return;
  if (from_overrides) throw UsageError(s.origin + ": " + why);
  (entry.has(field) ? entry.at(field) : entry).fail(why);
}

// The size fields of every workload, by name, for checking command-line overrides.
std::map<std::string, SizeField> all_size_fields() {
  std::map<std::string, SizeField> out;
  for (const Workload* w : all_workloads())
    for (const SizeField& f : w->size_fields()) out.emplace(f.name, f);
  return out;
}

// The emulations an entry asks for: "emulate" is a profile name or a list of them ("none" for a
// native run), with "emulate_mode" and "relative_to"; entry fields over defaults, the command
// line over both. No "emulate" anywhere: one native run.
std::vector<std::optional<EmulationSpec>> emulation_list(const JsonView& e,
                                                         const JsonView& defaults,
                                                         const SuiteOverrides& ov,
                                                         const std::string& config_dir) {
  auto field = [&](const char* name) -> std::optional<JsonView> {
    if (e.has(name)) return e.at(name);
    if (defaults.has(name)) return defaults.at(name);
    return std::nullopt;
  };
  std::vector<std::string> names;
  std::optional<JsonView> where = field("emulate");
  if (ov.emulate) {
    std::string list = *ov.emulate;
    for (size_t at = 0; at <= list.size();) {
      const size_t comma = std::min(list.find(',', at), list.size());
      names.push_back(list.substr(at, comma - at));
      at = comma + 1;
    }
  } else if (where) {
    names = where->as_string_list();
  } else {
    return {std::nullopt};
  }
  // The time scale: "suite" (one for every emulated run of the suite: the default), "auto" (the
  // largest this run fits) or a number in (0, 1] (1: real time).
  TimeScale time_scale;
  const std::optional<JsonView> scale_field = field("time_scale");
  if (ov.time_scale) {
    if (!parse_time_scale(*ov.time_scale, &time_scale))
      throw UsageError("--time-scale must be suite, auto or a number in (0, 1], got \"" +
                       *ov.time_scale + "\"");
  } else if (scale_field) {
    const json& raw = scale_field->raw();
    const std::string text = raw.is_number()   ? dump_json(raw)
                             : raw.is_string() ? raw.get<std::string>()
                                               : "";
    if (!parse_time_scale(text, &time_scale))
      scale_field->fail("\"suite\", \"auto\" or a number in (0, 1], got " + dump_json(raw));
  }
  // A bad profile file names itself; a missing one is reported where it was asked for.
  auto load = [&](const std::string& name, const std::optional<JsonView>& at,
                  const char* flag) -> DeviceProfile {
    try {
      return load_device_profile(name, config_dir);
    } catch (const ConfigError& err) {
      if (err.json_path() != "$") throw;
      if (at) at->fail("a device profile in " + config_dir + "/devices (" + err.what() + ")");
      throw UsageError(std::string(flag) + ": no device profile \"" + name + "\" in " + config_dir +
                       "/devices (" + err.what() + ")");
    }
  };
  // "relative_to": "none" (or --relative-to none) is absolute emulation, over a suite's default.
  std::optional<DeviceProfile> reference;
  const std::optional<JsonView> rel_field = field("relative_to");
  if (ov.relative_to) {
    if (*ov.relative_to != "none") reference = load(*ov.relative_to, std::nullopt, "--relative-to");
  } else if (rel_field && rel_field->as_string() != "none") {
    reference = load(rel_field->as_string(), rel_field, "relative_to");
  }
  // The rule: floor for absolute emulation (the time scale makes every op reachable, and an op
  // then lasts its target time exactly), dilate for relative (the host's own efficiency per op
  // carries over to the chip it plays).
  const char* default_mode = reference ? "dilate" : "floor";
  EmulationMode mode = EmulationMode::dilate;
  const std::optional<JsonView> mode_field = field("emulate_mode");
  const std::string mode_text =
      ov.emulate_mode.value_or(mode_field ? mode_field->as_string() : default_mode);
  if (!parse_emulation_mode(mode_text, &mode)) {
    if (ov.emulate_mode)
      throw UsageError("--emulate-mode must be floor, dilate or shift, got \"" + mode_text + "\"");
    mode_field->fail("\"floor\", \"dilate\" or \"shift\", got \"" + mode_text + "\"");
  }
  std::vector<std::optional<EmulationSpec>> out;
  for (const std::string& name : names) {
    if (name == "none") {
      out.push_back(std::nullopt);
      continue;
    }
    EmulationSpec spec;
    spec.target = load(name, ov.emulate ? std::nullopt : where, "--emulate");
    spec.reference = reference;
    spec.mode = mode;
    spec.time_scale = time_scale;
    out.push_back(spec);
  }
  return out;
}

}  // namespace

std::string default_config_dir() {
  if (const char* env = std::getenv("CAPBENCH_CONFIG_DIR"); env && *env) return env;
  return std::string(CAPBENCH_SOURCE_DIR) + "/configs";
}

Suite load_suite(const std::string& path, const SuiteOverrides& ov, const std::string& config_dir,
                 const Registry& registry) {
  const json doc = load_json_file(path);
  const JsonView root = JsonView(doc, path).object();
  Suite suite;
  suite.file = path;
  suite.name = root.get_string("name", path);
  suite.description = root.get_string("description", "");

  const json empty = json::object();
  const JsonView defaults =
      root.has("defaults") ? root.at("defaults").object() : JsonView(empty, path, "$.defaults");
  RunnerSettings base = runner_settings(defaults, RunnerSettings{});

  // Command-line values are checked like file values, but reported as usage errors.
  auto in_range = [](const auto& v, const char* flag, auto lo, auto hi) {
    if (v && !(*v >= lo && *v <= hi))
      throw UsageError(fmt::format("{} must be in [{}, {}], got {}", flag, lo, hi, *v));
  };
  for (const auto& [name, value] : ov.sizes) {
    const auto fields = all_size_fields();
    const auto f = fields.find(name);
    if (f == fields.end()) throw UsageError("no workload has a size named " + name);
    std::string flag = "--" + name;
    std::replace(flag.begin(), flag.end(), '_', '-');
    in_range(std::optional<int64_t>(value), flag.c_str(), f->second.min, f->second.max);
  }
  in_range(ov.reps, "--reps", int64_t{1}, kMaxRepetitions);
  in_range(ov.layers, "--layers", int64_t{1}, kMaxLayers);
  in_range(ov.warmup, "--warmup", int64_t{0}, kMaxRepetitions);
  in_range(ov.threads, "--threads", int64_t{0}, kMaxThreads);
  in_range(ov.seed, "--seed", int64_t{0}, INT64_MAX);
  in_range(ov.min_time_s, "--min-time", 0.0, kMaxSeconds);
  in_range(ov.max_time_s, "--max-time", 1e-3, kMaxSeconds);
  in_range(ov.ci_bound, "--ci-bound", 1e-4, 1.0);
  if (ov.workload && !find_workload(*ov.workload))
    throw UsageError("--workload must be one of " + workload_names() + ", got \"" + *ov.workload +
                     "\"");
  if (ov.backend && *ov.backend != "cpu" && *ov.backend != "cuda" && !registry.find(*ov.backend))
    throw UsageError("--backend: no backend \"" + *ov.backend +
                     "\" in this build (capbench list shows them)");
  DType override_dtype = DType::f32;
  if (ov.dtype && !(parse_dtype(*ov.dtype, &override_dtype) && is_model_dtype(override_dtype)))
    throw UsageError("--dtype must be fp32 or bf16, got \"" + *ov.dtype + "\"");
  std::optional<ModelConfig> override_model;
  if (ov.model) override_model = load_model_config(*ov.model, config_dir);

  const std::vector<JsonView> entries = root.at("runs").items();
  if (entries.empty()) root.at("runs").fail("at least one run");
  for (const JsonView& raw_entry : entries) {
    const JsonView e = raw_entry.object();
    RunSpec s;
    s.workload = e.at("workload").as_string();
    const Workload* workload = find_workload(s.workload);
    if (!workload)
      e.at("workload").fail("a workload (" + workload_names() + "), got \"" + s.workload + "\"");
    if (ov.workload && *ov.workload != s.workload) continue;
    s.origin = path + " " + e.path();
    s.runner = runner_settings(e, base);
    if (ov.reps) s.runner.min_reps = s.runner.max_reps = *ov.reps, s.runner.min_time_s = 0;
    if (ov.warmup) s.runner.warmup = *ov.warmup;
    if (ov.min_time_s) s.runner.min_time_s = *ov.min_time_s;
    if (ov.max_time_s) s.runner.max_time_s = *ov.max_time_s;
    if (ov.ci_bound) s.runner.ci_bound = *ov.ci_bound;

    auto load_model = [&](const JsonView& m) {
      try {
        return load_model_config(m.as_string(), config_dir);
      } catch (const ConfigError& err) {
        if (err.json_path() != "$") throw;  // an error inside the model file itself
        m.fail("a model in " + config_dir + "/models (" + err.what() + ")");
      }
    };
    // Sizes from an object (the entry, or its on_cpu substitute), command line first.
    auto apply_sizes = [&](RunSpec& r, const JsonView& from, bool substitute) {
      if (override_model)
        r.model = *override_model;
      else if (!substitute || from.has("model"))
        r.model = load_model(from.at("model"));
      bool overridden = override_model.has_value();
      for (const SizeField& f : workload->size_fields()) {
        int64_t& value = r.shape.*f.member;
        auto over = ov.sizes.find(f.name);
        if (over == ov.sizes.end() && !f.also_from.empty()) over = ov.sizes.find(f.also_from);
        if (over != ov.sizes.end()) {
          value = over->second;
          overridden = true;
        } else if (substitute) {
          value = from.get_int_in(f.name, value, f.min, f.max);
        } else if (f.required) {
          value = from.at(f.name).as_int_in(f.min, f.max);
        } else {
          value = from.get_int_in(f.name, defaults.get_int_in(f.name, f.fallback, f.min, f.max),
                                  f.min, f.max);
        }
      }
      check_shape(*workload, r, from, overridden);
    };
    apply_sizes(s, e, false);
    const std::string dtype_text =
        ov.dtype.value_or(e.get_string("dtype", defaults.get_string("dtype", "fp32")));
    if (!parse_dtype(dtype_text, &s.dtype) || !is_model_dtype(s.dtype))
      (e.has("dtype") ? e.at("dtype") : defaults.at("dtype"))
          .fail("fp32 or bf16, got \"" + dtype_text + "\"");
    s.threads = ov.threads.value_or(
        e.get_int_in("threads", defaults.get_int_in("threads", 0, 0, kMaxThreads), 0, kMaxThreads));
    s.seed = static_cast<uint64_t>(ov.seed.value_or(
        e.get_int_in("seed", defaults.get_int_in("seed", 1, 0, INT64_MAX), 0, INT64_MAX)));
    s.learning_rate = e.get_number_in(
        "learning_rate", defaults.get_number_in("learning_rate", 1e-3, 0, 1e300), 0, 1e300);
    if (e.has("graphs"))
      s.graphs = e.at("graphs").as_bool();
    else if (defaults.has("graphs"))
      s.graphs = defaults.at("graphs").as_bool();
    if (ov.no_graphs) s.graphs = false;
    const std::vector<std::optional<EmulationSpec>> emulations =
        emulation_list(e, defaults, ov, config_dir);
    const bool some_run_native =
        std::any_of(emulations.begin(), emulations.end(),
                    [](const std::optional<EmulationSpec>& em) { return !em; });
    s.parallel =
        parallel_spec(e, defaults, ov, *workload, s.model, some_run_native, &s.virtual_link);

    std::vector<std::string> backends;
    Unavailable unavailable;
    if (ov.backend)
      backends = expand_backends({*ov.backend}, root, registry, &unavailable);
    else
      backends = expand_backends(e.at("backends").as_string_list(), e.at("backends"), registry,
                                 &unavailable);
    if (backends.empty() && unavailable.empty()) {
      s.no_backend_reason = "no backend of this build matches " +
                            (ov.backend ? *ov.backend : e.at("backends").raw().dump());
      suite.runs.push_back(s);
    }
    for (const std::string& b : backends) {
      RunSpec one = s;
      one.backend = b;
      // LLM-shaped entries name what a CPU runs instead, so a suite finishes there: a smaller
      // stand-in model, or a few of the model's own layers ("layers").
      std::optional<int64_t> layers = ov.layers;
      if (e.has("on_cpu") && registry.find(b)->device_kind == "cpu") {
        const JsonView cpu = e.at("on_cpu").object();
        apply_sizes(one, cpu, true);
        if (cpu.has("model")) {
          // The key names both, so stand-ins for different models stay different runs.
          one.model.name += " for " + s.model.name;
          one.origin += " (on_cpu stand-in)";
        }
        if (!layers && cpu.has("layers"))
          layers = cpu.at("layers").as_int_in(1, one.model.n_layers);
        // A dtype the CPU stand-in runs at (a slow-motion run's length follows the host's rate
        // at it), unless --dtype says otherwise.
        if (cpu.has("dtype") && !ov.dtype) {
          const std::string text = cpu.at("dtype").as_string();
          if (!parse_dtype(text, &one.dtype) || !is_model_dtype(one.dtype))
            cpu.at("dtype").fail("fp32 or bf16, got \"" + text + "\"");
        }
      }
      if (layers && *layers < one.model.n_layers) {
        one.full_model = one.model;
        one.model = layer_slice(one.model, *layers);
      } else if (layers && *layers > one.model.n_layers) {
        throw UsageError(fmt::format("--layers {}: model {} has {} layers", *layers, one.model.name,
                                     one.model.n_layers));
      }
      for (const std::optional<EmulationSpec>& em : emulations) {
        RunSpec run = one;
        run.emulation = em;
        suite.runs.push_back(run);
      }
    }
    // Backends this machine cannot run are skipped runs with the reason, never silently absent.
    for (const auto& [name, why] : unavailable) {
      RunSpec skipped = s;
      skipped.backend = name;
      skipped.no_backend_reason = name + " is not available here: " + why;
      suite.runs.push_back(skipped);
    }
  }
  if (suite.runs.empty())
    throw UsageError("no run of " + path + " matches --workload " + ov.workload.value_or(""));
  // Overrides can make entries identical (--backend torch --model small over a suite of several
  // entries): the same experiment runs once, under the first entry that asked for it.
  std::vector<RunSpec> unique;
  std::set<std::string> seen;
  for (RunSpec& r : suite.runs)
    if (seen.insert(experiment_of(r)).second) unique.push_back(std::move(r));
  suite.runs = std::move(unique);
  return suite;
}

}  // namespace capbench
