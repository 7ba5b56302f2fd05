// capbench: the command line. Bad input (a config, a flag, a file) is one line on stderr naming
// the file, the JSON path and what was expected, and exit code 2, before any run starts.
#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>
#include <thread>

#include "build_info.h"
#include "harness/calibrate.h"
#include "harness/comm_bench.h"
#include "harness/compare.h"
#include "harness/config_files.h"
#include "harness/console.h"
#include "harness/emulation.h"
#include "harness/errors.h"
#include "harness/fidelity.h"
#include "harness/history.h"
#include "harness/host_info.h"
#include "harness/html_report.h"
#include "harness/interrupt.h"
#include "harness/json_access.h"
#include "harness/launch.h"
#include "harness/rates.h"
#include "harness/runner.h"
#include "harness/suite.h"

namespace fs = std::filesystem;
using namespace capbench;

namespace {

// Long enough for a large collective on a slow link, short enough that a dead rank is noticed.
constexpr double kDefaultCommTimeout = 300;

struct RunOptions {
  std::string suite = std::string(CAPBENCH_SOURCE_DIR) + "/configs/suites/quick.json";
  std::string out;
  std::string config_dir = default_config_dir();
  bool no_calibrate = false;
  bool show_ops = false;
  double comm_timeout_s = kDefaultCommTimeout;
  SuiteOverrides ov;
};

// The ranks of this process's job, from a launcher's environment (a world of one without one).
// Local ranks share the host's cores: each takes its share unless --threads says otherwise.
struct Job {
  Rendezvous rendezvous;
  std::unique_ptr<Communicator> comm;
  bool leader() const { return rendezvous.rank == 0; }
};
Job join_job(double timeout_s, std::optional<int64_t>* threads) {
  Job job;
  job.rendezvous = rendezvous_from_env();
  if (!(timeout_s > 0 && timeout_s <= 86400))
    throw UsageError(
        fmt::format("--comm-timeout must be in (0, 86400] seconds, got {}", timeout_s));
  job.comm = make_communicator(job.rendezvous, timeout_s);
  if (threads && !*threads && job.rendezvous.local_world > 1) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    *threads = std::max(1, cores / job.rendezvous.local_world);
  }
  return job;
}

// An output that would overwrite one of the command's inputs: refused before anything is read.
void refuse_overwriting_input(const std::string& out, const std::vector<std::string>& inputs,
                              const std::string& flag) {
  std::error_code ec;
  for (const std::string& in : inputs)
    if (fs::equivalent(out, in, ec))
      throw UsageError(flag + " " + out + " is the input " + in + ": it would be overwritten");
}

// 128 + the signal that stopped the suite; else 1 when a run failed; else 0.
int suite_exit_code(const Report& report) {
  if (const int signal = interrupt_signal()) return 128 + signal;
  for (const RunRecord& r : report.runs)
    if (r.status == "failed") return 1;
  return 0;
}

int cmd_run(RunOptions o) {
  // From the start: a signal during loading or calibration ends the command (nothing has
  // finished yet); during the runs it keeps those that have.
  install_interrupt_handlers();
  const Registry& registry = builtin_registry();
  // Found now, not after every run has finished: a report that cannot be written loses them.
  // Several ranks: rank 0 alone prints and writes.
  const Job job = join_job(o.comm_timeout_s, &o.ov.threads);
  if (!job.leader()) o.out.clear();
  if (!o.out.empty()) check_output_path(o.out, "--out");
  o.ov.launcher_world = job.comm->world();
  const Suite suite = load_suite(o.suite, o.ov, o.config_dir, registry);
  refuse_overwriting_input(o.out, {o.suite}, "--out");

  const bool emulates = std::any_of(suite.runs.begin(), suite.runs.end(),
                                    [](const RunSpec& s) { return s.emulation.has_value(); });
  if (emulates && o.no_calibrate)
    throw UsageError(
        "emulation paces ops against the host's calibrated rates: drop --no-calibrate");
  Progress progress = job.leader() ? Progress::for_stderr() : Progress(Progress::Style::silent);
  // One rank per host measures (or reads the cache), then the others read what it cached.
  const bool calibrates_first = job.rendezvous.local_rank == 0;
  const auto calibrate = [&] {
    return calibrate_for_suite(
        suite, registry, static_cast<int>(o.ov.threads.value_or(0)), job.rendezvous.local_rank,
        !o.no_calibrate, [&](const std::string& what) { progress.begin(0, 1, what); },
        [&](const std::string& status) {
          check_interrupted();
          progress.update(status);
        },
        [&](const std::string& outcome) { progress.end(outcome); });
  };
  SuiteContext context;
  if (calibrates_first) context = calibrate();
  job.comm->barrier()->wait();
  if (!calibrates_first) context = calibrate();
  context.comm = job.comm.get();
  const bool parallel = std::any_of(suite.runs.begin(), suite.runs.end(),
                                    [](const RunSpec& s) { return s.parallel.layout != "single"; });
  if (job.comm->world() > 1 && parallel && !o.no_calibrate) {
    progress.begin(0, 1, "measuring the link between the ranks");
    const HostLink link = measure_host_link(*job.comm);
    context.host_link_bytes_per_s = link.bytes_per_s;
    context.host_link_latency_s = link.latency_s;
    context.host_link_source = link.source;
    progress.end(fmt::format("all-reduce busbw {:.2f} GB/s, {:.0f} us a step",
                             link.bytes_per_s / 1e9, link.latency_s * 1e6));
    for (const RunSpec& s : suite.runs)
      if (s.emulation && s.emulation->time_scale.kind == TimeScale::Kind::suite)
        context.suite_time_scale = std::min(context.suite_time_scale, link_time_scale(context, s));
  }
  // Device memory's communicators (NCCL for torch:cuda), for the kinds the parallel runs use.
  std::vector<std::unique_ptr<Communicator>> device_comms;
  if (job.comm->world() > 1)
    for (const RunSpec& s : suite.runs) {
      const BackendEntry* e = registry.find(s.backend);
      if (s.parallel.layout == "single" || !e || e->device_kind == "cpu" ||
          context.device_comms.count(e->device_kind))
        continue;
      std::string why;
      device_comms.push_back(make_device_communicator(job.rendezvous, o.comm_timeout_s,
                                                      e->device_kind, *job.comm, &why));
      context.device_comms[e->device_kind] = device_comms.back().get();
      if (!device_comms.back()) context.device_comm_missing[e->device_kind] = why;
    }
  const Report report = run_suite(suite, context, progress);
  if (!job.leader()) return suite_exit_code(report);
  // Results that cannot be emulated faithfully are said to be so, every time.
  std::set<std::string> warned;
  for (const RunRecord& r : report.runs)
    if (!r.emulation.is_null() && !r.emulation["limited_by"].empty() &&
        warned.insert(r.key.emulation_profile + r.key.emulation_relative_to).second)
      fmt::print(
          stderr,
          "capbench: warning: {} cannot be emulated fully on this host: its {} exceeds "
          "the host's{}; those runs are optimistic in that dimension "
          "(emulation.limited_by)\n",
          r.key.emulation_profile, r.emulation["limited_by"].dump(),
          r.key.emulation_relative_to.empty() ? "" : " scaled as " + r.key.emulation_relative_to);
  // Written first: nothing the tables do can lose the runs.
  if (!o.out.empty()) write_report_atomic(report, o.out);
  print_summary_table(stdout, report);
  if (o.show_ops) print_op_breakdown(stdout, report);
  if (!o.out.empty())
    fmt::print("report: {}{}\n", o.out,
               report.interrupted.is_null() ? "" : " (interrupted: the runs that finished)");
  return suite_exit_code(report);
}

struct CommBenchCli {
  CommBenchOptions options;
  std::vector<std::string> dtypes{"fp32", "bf16"};
  std::vector<std::string> collectives;
  std::string min_size = "1K", max_size = "256M";
  double timeout_s = kDefaultCommTimeout;
  std::string out;
  std::string emulate;    // a device profile whose link every collective is paced to
  int virtual_world = 0;  // > 0: that many virtual ranks on the profile's link, in this process
  std::string config_dir = default_config_dir();
};

// "1K", "64M", "1G" or plain bytes.
int64_t parse_size(const std::string& text, const std::string& flag) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  double scale = 1;
  if (unit == "K" || unit == "KiB")
    scale = 1 << 10;
  else if (unit == "M" || unit == "MiB")
    scale = 1 << 20;
  else if (unit == "G" || unit == "GiB")
    scale = 1 << 30;
  else if (!unit.empty() && unit != "B")
    used = 0;
  const double bytes = value * scale;
  if (used == 0 || !(bytes >= 1 && bytes <= 64.0 * (1 << 30)))
    throw UsageError(flag + " must be a size from 1 byte to 64G (e.g. 1K, 64M), got \"" + text +
                     "\"");
  return static_cast<int64_t>(bytes);
}

int cmd_comm_bench(CommBenchCli o) {
  install_interrupt_handlers();
  // Bad flags are found before the ranks meet.
  o.options.min_bytes = parse_size(o.min_size, "--min-size");
  o.options.max_bytes = parse_size(o.max_size, "--max-size");
  if (o.options.min_bytes > o.options.max_bytes)
    throw UsageError("--min-size is larger than --max-size");
  o.options.dtypes.clear();
  for (const std::string& d : o.dtypes) {
    DType dtype = DType::f32;
    if (!parse_dtype(d, &dtype) || (dtype != DType::f32 && dtype != DType::bf16))
      throw UsageError("--dtype must be fp32 or bf16, got \"" + d + "\"");
    o.options.dtypes.push_back(dtype);
  }
  if (!o.collectives.empty()) {
    o.options.collectives.clear();
    for (const std::string& c : o.collectives) {
      bool found = false;
      for (int k = 0; k < kCollectiveCount; ++k)
        if (c == collective_name(static_cast<Collective>(k)) &&
            k != static_cast<int>(Collective::barrier)) {
          o.options.collectives.push_back(static_cast<Collective>(k));
          found = true;
        }
      if (!found)
        throw UsageError(
            "--op must be all_reduce, all_gather, reduce_scatter or broadcast, got \"" + c + "\"");
    }
  }
  std::optional<DeviceProfile> profile;
  if (!o.emulate.empty()) profile = load_device_profile(o.emulate, o.config_dir);
  if (o.virtual_world != 0 && (o.virtual_world < 2 || !profile))
    throw UsageError(
        "--virtual N needs N of at least 2 and --emulate PROFILE (whose link it "
        "models), got " +
        std::to_string(o.virtual_world));
  const Job job = join_job(o.timeout_s, nullptr);
  if (o.virtual_world != 0 && job.comm->world() > 1)
    throw UsageError("--virtual runs in one process, not under a launcher");
  if (!job.leader()) o.out.clear();
  if (!o.out.empty()) check_output_path(o.out, "--out");
  // Paced to a chip's link in real time: the throttle's own check against a shaped link; or
  // virtual ranks, whose collectives are that link's model alone.
  std::unique_ptr<ThrottledCommunicator> paced;
  std::unique_ptr<VirtualCommunicator> virtual_ranks;
  Communicator* comm = job.comm.get();
  if (o.virtual_world) {
    virtual_ranks = std::make_unique<VirtualCommunicator>(o.virtual_world, profile_link(*profile));
    comm = virtual_ranks.get();
    o.options.check_results = false;
  } else if (profile) {
    paced = std::make_unique<ThrottledCommunicator>(*job.comm, profile_link(*profile));
    comm = paced.get();
  }
  Progress progress = job.leader() ? Progress::for_stderr() : Progress(Progress::Style::silent);
  progress.begin(0, 1,
                 fmt::format("comm-bench over {} ranks{}", comm->world(),
                             o.emulate.empty() ? "" : ", paced to " + o.emulate));
  const std::vector<CommBenchRow> rows =
      run_comm_bench(*comm, o.options, [&](const std::string& s) { progress.update(s); });
  progress.end("done");
  int64_t wrong = 0;
  for (const CommBenchRow& r : rows) wrong += r.wrong;
  if (!job.leader()) return wrong ? 1 : 0;
  Report report;
  report.capbench_version = CAPBENCH_VERSION;
  report.git_revision = CAPBENCH_GIT_REVISION;
  report.created_utc = utc_now_iso8601();
  report.suite = "comm-bench";
  report.host = host_info(builtin_registry());
  report.comm_bench = to_json(rows, *comm);
  if (profile) {
    const LinkModel& link = paced ? paced->link() : virtual_ranks->link();
    report.comm_bench["emulate"] = {{"profile", o.emulate},
                                    {"topology", link.topology},
                                    {"link_bytes_per_s", link.link_bytes_per_s},
                                    {"latency_s", link.latency_s}};
  }
  print_comm_bench(stdout, report.comm_bench);
  if (!o.out.empty()) {
    write_report_atomic(report, o.out);
    fmt::print("report: {}\n", o.out);
  }
  return wrong ? 1 : 0;
}

int cmd_list(const std::string& config_dir) {
  const Registry& registry = builtin_registry();
  fmt::print("backends in this build:\n");
  for (const BackendEntry& e : registry.entries()) {
    std::string device;
    try {
      device = e.make(BackendOptions{})->device_info().name;
    } catch (const std::exception& err) {
      device = std::string("unavailable: ") + err.what();
    }
    fmt::print("  {:<12} {:<5} {}{} — {}\n", e.name, e.device_kind, e.description,
               e.oracle ? " (oracle)" : "", device);
  }
  for (const UnavailableBackend& u : registry.unavailable())
    fmt::print("  {:<12} {:<5} not available here: {}\n", u.name, u.device_kind, u.reason);
  for (const char* kind : {"models", "suites"}) {
    fmt::print("{} in {}/{}:\n", kind, config_dir, kind);
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(config_dir + "/" + kind, ec))
      if (f.path().extension() == ".json") names.push_back(f.path().stem().string());
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) fmt::print("  {}\n", n);
  }
  fmt::print("workloads:\n");
  for (const Workload* w : all_workloads())
    fmt::print("  {:<12} {}\n", w->name(), w->description());
  return 0;
}

int cmd_calibrate(const std::string& backend_name, int threads, bool force) {
  const Registry& registry = builtin_registry();
  const BackendEntry* e = registry.find(backend_name);
  if (!e) throw UsageError("--backend: no backend \"" + backend_name + "\" in this build");
  bool cached = false;
  Progress progress = Progress::for_stderr();
  progress.begin(0, 1, "calibrating " + backend_name);
  const Calibration c = backend_calibration(
      *e, BackendOptions{threads}, force, [&](const std::string& s) { progress.update(s); },
      &cached);
  progress.end(cached ? "cached" : "done");
  std::string read_lines;
  for (const Calibration::ThreadsRate& r : c.read_by_threads)
    read_lines += fmt::format("  read stream 512 MiB, {} thread{}: {:.1f} GB/s\n", r.threads,
                              r.threads == 1 ? "" : "s", r.bytes_per_s / 1e9);
  fmt::print(
      "{} on {} ({} threads){}:\n  GEMM {}^3 fp32: {:.1f} GFLOP/s\n  GEMM bf16: {}\n"
      "  copy {} MiB:  {:.1f} GB/s (read + write)\n{}  weight streaming (GEMV): {:.1f} GB/s\n  "
      "dispatch: {:.2f} us per op\n  cache: {}/calibration.json\n",
      c.backend, c.device, c.threads, cached ? " [cached]" : "", c.gemm_n, c.gemm_flops / 1e9,
      c.gemm_bf16_flops > 0
          ? fmt::format("{}^3, {:.1f} GFLOP/s", c.gemm_bf16_n, c.gemm_bf16_flops / 1e9)
          : std::string("not supported by this backend"),
      static_cast<int64_t>(c.copy_bytes) >> 20, c.copy_bytes_per_s / 1e9, read_lines,
      c.stream_bytes_per_s / 1e9, c.dispatch_s * 1e6, cache_dir());
  return 0;
}

struct FidelityCli {
  std::vector<std::string> backends;
  FidelityOptions options;
  std::string out, html;
};

// Every backend named, or each one of this build that can pace (not the oracle).
int cmd_fidelity(FidelityCli o) {
  install_interrupt_handlers();
  const Registry& registry = builtin_registry();
  if (!o.out.empty()) check_output_path(o.out, "--out");
  if (!o.html.empty()) check_output_path(o.html, "--html");
  if (o.options.reps < 3)
    throw UsageError("--reps: at least 3, got " + std::to_string(o.options.reps));
  std::vector<const BackendEntry*> entries;
  for (const std::string& name : o.backends) {
    const BackendEntry* e = registry.find(name);
    if (!e) {
      const UnavailableBackend* u = registry.unavailable(name);
      throw UsageError("--backend " + name + ": " +
                       (u ? "not available here: " + u->reason : "no such backend in this build"));
    }
    entries.push_back(e);
  }
  if (entries.empty())
    for (const BackendEntry& e : registry.entries()) {
      if (e.oracle) continue;
      try {
        if (e.make(BackendOptions{})->pace_slots() > 0) entries.push_back(&e);
      } catch (const std::exception&) {  // a device this machine lacks
      }
    }
  if (entries.empty()) throw UsageError("no backend of this build can pace ops");
  Report report;
  report.capbench_version = CAPBENCH_VERSION;
  report.git_revision = CAPBENCH_GIT_REVISION;
  report.created_utc = utc_now_iso8601();
  report.suite = "fidelity";
  report.host = host_info(registry);
  Progress progress = Progress::for_stderr();
  for (size_t i = 0; i < entries.size(); ++i) {
    progress.begin(i, entries.size(), "fidelity of " + entries[i]->name);
    try {
      report.fidelity.push_back(measure_fidelity(*entries[i], o.options, [&](const std::string& s) {
        check_interrupted();
        progress.update(s);
      }));
      progress.end(report.fidelity.back().passed() ? "every check meets its goal"
                                                   : "some checks miss their goal");
    } catch (const Interrupted&) {
      progress.end("interrupted");
      break;
    }
  }
  print_fidelity(stdout, report);
  if (!o.out.empty()) {
    write_report_atomic(report, o.out);
    fmt::print("report: {}\n", o.out);
  }
  if (!o.html.empty()) {
    write_text_atomic(render_html(report, "capbench: emulation fidelity"), o.html);
    fmt::print("page: {}\n", o.html);
  }
  if (const int signal = interrupt_signal()) return 128 + signal;
  for (const FidelityResult& f : report.fidelity)
    if (!f.passed()) return 1;
  return 0;
}

int cmd_show(const std::string& path, bool ops) {
  const Report report = read_report(path);
  fmt::print("{} — capbench {} ({}), {}\n", report.suite, report.capbench_version,
             report.git_revision, report.created_utc);
  print_summary_table(stdout, report);
  if (ops) print_op_breakdown(stdout, report);
  print_fidelity(stdout, report);
  print_comm_bench(stdout, report.comm_bench);
  return 0;
}

struct CompareCli {
  std::vector<std::string> reports;
  CompareOptions options;
  std::string format = "console";
  std::string out;
  std::string by;
  std::string base;
};

int cmd_compare(const CompareCli& o) {
  if (o.options.threshold <= 0 || o.options.threshold >= 1)
    throw UsageError(fmt::format("--threshold must be in (0, 1), got {}", o.options.threshold));
  if (o.options.alpha <= 0 || o.options.alpha >= 1)
    throw UsageError(fmt::format("--alpha must be in (0, 1), got {}", o.options.alpha));
  static const std::set<std::string> formats = {"console", "markdown", "json", "junit"};
  if (!formats.count(o.format))
    throw UsageError("--format must be console, markdown, json or junit, got \"" + o.format + "\"");
  static const std::set<std::string> fields = {
      "backend", "emulation.profile", "model", "dtype", "device", "threads"};
  if (!o.by.empty() && !fields.count(o.by))
    throw UsageError(
        "--by must be one of backend, emulation.profile, model, dtype, device, "
        "threads, got \"" +
        o.by + "\"");
  if (o.by.empty() && o.reports.size() < 2)
    throw UsageError("compare needs a baseline report and at least one more (or --by FIELD)");
  if (!o.out.empty()) {
    check_output_path(o.out, "--out");
    refuse_overwriting_input(o.out, o.reports, "--out");
  }
  std::vector<std::pair<std::string, Report>> reports;
  for (const std::string& path : o.reports) reports.emplace_back(path, read_report(path));

  // With --by, the runs of every report given are pooled: capbench's and the PyTorch reference
  // script's reports, say, compared by backend.
  Report pooled = reports.front().second;
  for (size_t i = 1; i < reports.size(); ++i)
    for (const RunRecord& r : reports[i].second.runs) pooled.runs.push_back(r);
  const Comparison c =
      o.by.empty()
          ? compare_reports(reports, o.options)
          : compare_by_field(pooled, o.by,
                             o.base.empty() ? std::nullopt : std::optional<std::string>(o.base),
                             o.options);
  const bool colour = o.out.empty() && isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
  std::string text;
  if (o.format == "markdown")
    text = format_markdown(c, o.options);
  else if (o.format == "json")
    text = format_json(c, o.options);
  else if (o.format == "junit")
    text = format_junit(c, o.options);
  else
    text = format_console(c, o.options, colour);
  if (o.out.empty())
    fmt::print("{}", text);
  else
    write_text_atomic(text, o.out);
  return c.any_regressed() ? 1 : 0;
}

int cmd_report(const std::string& path, const std::string& html_out, const std::string& title) {
  check_output_path(html_out, "--html");
  refuse_overwriting_input(html_out, {path}, "--html");
  const Report report = read_report(path);
  write_text_atomic(render_html(report, title.empty() ? "capbench: " + report.suite : title),
                    html_out);
  fmt::print("wrote {}\n", html_out);
  return 0;
}

int cmd_history_add(const std::vector<std::string>& paths, const std::string& db) {
  std::vector<Report> reports;
  for (const std::string& p : paths) reports.push_back(read_report(p));  // all valid, or none added
  for (size_t i = 0; i < paths.size(); ++i) {
    const size_t added = history_add(db, reports[i], paths[i]);
    fmt::print("{}: {} run(s) added to {}\n", paths[i], added, db);
  }
  return 0;
}

int cmd_history_show(const std::string& db, const OutlierRule& rule, const std::string& filter,
                     bool fail_on_flag) {
  if (!fs::exists(db)) throw UsageError("--db " + db + ": no such file");
  if (rule.window < 1)
    throw UsageError(fmt::format("--window must be at least 1, got {}", rule.window));
  if (!(rule.min_relative >= 0) || !std::isfinite(rule.min_relative))
    throw UsageError(
        fmt::format("--min-change must be a non-negative fraction, got {}", rule.min_relative));
  size_t flagged = 0, shown = 0;
  for (const HistorySeries& s : history_series(db, rule)) {
    if (!filter.empty() && s.key.find(filter) == std::string::npos) continue;
    ++shown;
    fmt::print("{}{} [{}]\n", s.flagged ? "FLAGGED " : "", s.key, s.series);
    for (const HistoryPoint& p : s.points)
      fmt::print("  {}  {:<14} {:>12.4f} ms  {}\n", p.created_utc, p.git_revision, p.median * 1e3,
                 p.report);
    if (s.flagged) {
      fmt::print("  -> {}\n", s.why);
      ++flagged;
    }
  }
  fmt::print("{} series, {} flagged\n", shown, flagged);
  return fail_on_flag && flagged ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  prefer_openmp_openblas(argv);
  // `run` keeps what finished when a signal arrives, from its first moment on.
  if (argc > 1 && std::string(argv[1]) == "run") install_interrupt_handlers();
  CLI::App app{"capbench: LLM training and inference throughput across backends and chips"};
  app.set_version_flag("--version",
                       fmt::format("capbench {} ({})", CAPBENCH_VERSION, CAPBENCH_GIT_REVISION));
  app.require_subcommand(1);

  RunOptions run;
  CLI::App* run_cmd = app.add_subcommand("run", "Run a suite of workloads and write a JSON report");
  run_cmd->add_option("suite", run.suite, "Suite file (default: configs/suites/quick.json)");
  run_cmd->add_option("--out,-o", run.out, "Write the JSON report here (atomically)");
  run_cmd->add_option("--config-dir", run.config_dir,
                      "Folder with models/ and suites/ (default: $CAPBENCH_CONFIG_DIR or the "
                      "source tree's configs/)");
  run_cmd->add_option("--backend", run.ov.backend,
                      "Run every entry on this backend (a name, or cpu/cuda for all of a kind)");
  run_cmd->add_option("--model", run.ov.model, "Run every entry on this model (name or path)");
  run_cmd->add_option("--workload", run.ov.workload,
                      "Keep only entries of this workload (" + workload_names() + ")");
  std::map<std::string, int64_t>& sizes = run.ov.sizes;
  // A flag for every size any workload has: --batch, --seq, --prompt, --decode-steps, ...
  std::set<std::string> size_flags;
  for (const Workload* w : all_workloads())
    for (const SizeField& f : w->size_fields()) {
      if (!size_flags.insert(f.name).second) continue;
      std::string flag = "--" + f.name;
      std::replace(flag.begin(), flag.end(), '_', '-');
      const std::string name = f.name;
      run_cmd->add_option_function<int64_t>(
          flag, [&sizes, name](int64_t v) { sizes[name] = v; }, f.help);
    }
  run_cmd->add_option("--dtype", run.ov.dtype, "Compute dtype: fp32 or bf16");
  run_cmd->add_option("--layers", run.ov.layers,
                      "Run this many of each model's layers, at their real dimensions, and "
                      "extrapolate to the whole model");
  run_cmd->add_option("--reps", run.ov.reps, "Exactly this many timed repetitions");
  run_cmd->add_option("--warmup", run.ov.warmup, "Warm-up repetitions");
  run_cmd->add_option("--min-time", run.ov.min_time_s, "Minimum timed seconds per run");
  run_cmd->add_option("--max-time", run.ov.max_time_s,
                      "Stop repeating after this many timed seconds per run");
  run_cmd->add_option("--ci-bound", run.ov.ci_bound,
                      "Largest relative half-width of the median's 95% confidence interval in a "
                      "valid run (default 0.05)");
  run_cmd->add_option("--threads", run.ov.threads, "CPU threads (0: all cores)");
  run_cmd->add_option("--seed", run.ov.seed, "Seed of weights and data");
  run_cmd->add_option("--emulate", run.ov.emulate,
                      "Emulate these device profiles (comma list; \"none\" for a native run)");
  run_cmd->add_option(
      "--emulate-mode", run.ov.emulate_mode,
      "floor (each op lasts its time on the target; the default), dilate (the host's time "
      "times the target's roofline over the host's; the default with --relative-to) or shift "
      "(the host's time plus the difference of the rooflines)");
  run_cmd->add_option("--time-scale", run.ov.time_scale,
                      "Play emulated chips in slow motion: suite (one scale for every emulated "
                      "run; default), auto (the largest each run fits), or a number in (0, 1] "
                      "(1: real time)");
  run_cmd->add_option("--relative-to", run.ov.relative_to,
                      "Let the host play this profile: scale its calibrated rates by the "
                      "target's figures over this one's, keeping the host's balance (\"none\": "
                      "absolute emulation)");
  run_cmd->add_flag("--no-graphs", run.ov.no_graphs,
                    "Run every step as eager ops, without CUDA graphs (on by default where the "
                    "backend can capture: torch:cuda)");
  run_cmd->add_flag("--no-calibrate", run.no_calibrate,
                    "Do not measure (or read cached) peaks; MFU, MBU and roofline are omitted");
  run_cmd->add_flag("--ops", run.show_ops, "Also print the per-op breakdown of each run");
  run_cmd->add_option(
      "--parallel", run.ov.parallel,
      "Layout over the launcher's ranks: single, dp (data parallel, training "
      "entries) or tp (tensor parallel, Megatron-style; tp = the launcher's world)");
  run_cmd->add_option("--tp", run.ov.tp, "Tensor-parallel ranks (with --parallel tp)");
  run_cmd->add_option("--dp", run.ov.dp,
                      "Data-parallel ranks beside tensor parallelism (virtual ranks only), or "
                      "the ranks played by virtual data parallelism");
  run_cmd->add_flag("--virtual", run.ov.virtual_ranks,
                    "Virtual ranks: this one process runs rank 0's shard for real and paces its "
                    "collectives by the emulated chip's link (or the suite's parallel.link), "
                    "moving no data");
  run_cmd->add_option("--bucket-mb", run.ov.bucket_mib,
                      "Data parallel: MiB of gradients per all-reduce bucket (default 25)");
  run_cmd->add_option("--comm-timeout", run.comm_timeout_s,
                      "Seconds a collective may wait for the other ranks before it fails "
                      "(default 300)");

  LaunchOptions launch;
  std::vector<std::string> launch_command;
  CLI::App* launch_cmd = app.add_subcommand(
      "launch",
      "Start N local ranks of a capbench command (as torchrun would): launch -n 2 -- run SUITE");
  launch_cmd->add_option("-n,--nproc", launch.ranks, "Ranks to start (default 2)");
  launch_cmd->add_option("--port", launch.port, "Rendezvous port (default: a free one)");
  launch_cmd->add_option("--grace", launch.grace_s,
                         "Seconds the other ranks get to finish after one failed (default 60)");
  launch_cmd->add_option("command", launch_command, "The capbench command and its arguments")
      ->required();
  launch_cmd->prefix_command();

  CommBenchCli comm_bench;
  CLI::App* comm_bench_cmd = app.add_subcommand(
      "comm-bench",
      "Collectives over the job's ranks (nccl-tests style): time, algbw, busbw, wrong results; "
      "under launch, torchrun or srun");
  comm_bench_cmd->add_option("--min-size", comm_bench.min_size, "Smallest size S (default 1K)");
  comm_bench_cmd->add_option("--max-size", comm_bench.max_size, "Largest size S (default 256M)");
  comm_bench_cmd->add_option("--dtype", comm_bench.dtypes, "fp32, bf16 (repeatable; default both)");
  comm_bench_cmd->add_option("--op", comm_bench.collectives,
                             "all_reduce, all_gather, reduce_scatter, broadcast (repeatable; "
                             "default all)");
  comm_bench_cmd->add_option("--iters", comm_bench.options.max_iters,
                             "Most timed iterations per size (default 20; fewer past 1 s)");
  comm_bench_cmd->add_option("--comm-timeout", comm_bench.timeout_s,
                             "Seconds a collective may wait (default 300)");
  comm_bench_cmd->add_option("--out,-o", comm_bench.out, "Write the results as a JSON report");
  comm_bench_cmd->add_option("--emulate", comm_bench.emulate,
                             "Pace every collective to this device profile's link (name or "
                             "path), in real time");
  comm_bench_cmd->add_option("--virtual", comm_bench.virtual_world,
                             "N virtual ranks in this one process on the --emulate profile's link "
                             "model: nothing moves, each collective lasts its modelled time");
  comm_bench_cmd->add_option("--config-dir", comm_bench.config_dir, "Folder with devices/");

  std::string list_config_dir = default_config_dir();
  CLI::App* list_cmd = app.add_subcommand("list", "Show the backends, models and suites");
  list_cmd->add_option("--config-dir", list_config_dir, "Folder with models/ and suites/");

  std::string cal_backend = "torch";
  int cal_threads = 0;
  bool cal_force = false;
  CLI::App* cal_cmd =
      app.add_subcommand("calibrate", "Measure a backend's GEMM peak and copy bandwidth");
  cal_cmd->add_option("--backend", cal_backend, "Backend to measure (default: torch)");
  cal_cmd->add_option("--threads", cal_threads, "CPU threads (0: all cores)");
  cal_cmd->add_flag("--force", cal_force, "Measure again even if a cached result exists");

  FidelityCli fidelity;
  fidelity.options.config_dir = default_config_dir();
  CLI::App* fidelity_cmd = app.add_subcommand(
      "fidelity",
      "How far emulation can be trusted here: pacing accuracy, its overhead, and fewer compute "
      "units emulated against really run (exit 1 when a check misses its goal)");
  fidelity_cmd->add_option("--backend", fidelity.backends,
                           "Check this backend (repeatable; default: every backend that paces)");
  fidelity_cmd->add_option("--reps", fidelity.options.reps,
                           "Repetitions behind each median (default 9, at least 3)");
  fidelity_cmd->add_option("--out,-o", fidelity.out, "Write the checks as a JSON report");
  fidelity_cmd->add_option("--html", fidelity.html, "Write them as an HTML page");
  fidelity_cmd->add_option("--config-dir", fidelity.options.config_dir,
                           "Folder with models/ (the checks run models/small.json)");

  std::string show_path;
  bool show_ops = false;
  CLI::App* show_cmd = app.add_subcommand("show", "Print the tables of a JSON report");
  show_cmd->add_option("report", show_path, "Report file")->required();
  show_cmd->add_flag("--ops", show_ops, "Also print the per-op breakdown");

  CompareCli compare;
  CLI::App* compare_cmd = app.add_subcommand(
      "compare", "Compare reports run by run (exit 1 when a run regressed significantly)");
  compare_cmd->add_option("reports", compare.reports, "Baseline report, then one or more others")
      ->required();
  compare_cmd->add_option("--threshold", compare.options.threshold,
                          "Relative slow-down of the median that counts (default 0.05)");
  compare_cmd->add_option("--alpha", compare.options.alpha,
                          "Significance level of the Mann-Whitney U test (default 0.05)");
  compare_cmd->add_option("--format", compare.format, "console, markdown, json or junit");
  compare_cmd->add_option("--out,-o", compare.out, "Write the output to a file");
  compare_cmd->add_option("--by", compare.by,
                          "Compare the runs of the reports given (pooled) across this key "
                          "field: backend, emulation.profile, model, dtype, device, threads");
  compare_cmd->add_option("--base", compare.base, "With --by: the value to compare against");

  std::string report_path, html_out, html_title;
  CLI::App* report_cmd =
      app.add_subcommand("report", "Render a report as one self-contained HTML page");
  report_cmd->add_option("report", report_path, "Report file")->required();
  report_cmd->add_option("--html", html_out, "Output HTML file")->required();
  report_cmd->add_option("--title", html_title, "Page title");

  CLI::App* history_cmd = app.add_subcommand("history", "Run history in SQLite");
  history_cmd->require_subcommand(1);
  std::vector<std::string> history_reports;
  std::string history_db, history_filter;
  OutlierRule rule;
  bool fail_on_flag = false;
  CLI::App* hist_add = history_cmd->add_subcommand("add", "Add the ok runs of reports");
  hist_add->add_option("reports", history_reports, "Report files")->required();
  hist_add->add_option("--db", history_db, "SQLite file (created if missing)")->required();
  CLI::App* hist_show = history_cmd->add_subcommand(
      "show", "Per run key: medians by date and revision; flag a latest value out of line");
  hist_show->add_option("--db", history_db, "SQLite file")->required();
  hist_show->add_option("--window", rule.window, "Earlier points to judge the latest against");
  hist_show->add_option("--min-change", rule.min_relative,
                        "Smallest relative change flagged (default 0.05)");
  hist_show->add_option("--key", history_filter, "Only run keys containing this text");
  hist_show->add_flag("--fail-on-flag", fail_on_flag, "Exit 1 when a series is flagged");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadInput;
  }

  try {
    if (*run_cmd) return cmd_run(run);
    if (*launch_cmd) return launch_local_ranks(launch, launch_command);
    if (*comm_bench_cmd) return cmd_comm_bench(comm_bench);
    if (*list_cmd) return cmd_list(list_config_dir);
    if (*cal_cmd) return cmd_calibrate(cal_backend, cal_threads, cal_force);
    if (*show_cmd) return cmd_show(show_path, show_ops);
    if (*fidelity_cmd) return cmd_fidelity(fidelity);
    if (*compare_cmd) return cmd_compare(compare);
    if (*report_cmd) return cmd_report(report_path, html_out, html_title);
    if (*hist_add) return cmd_history_add(history_reports, history_db);
    if (*hist_show) return cmd_history_show(history_db, rule, history_filter, fail_on_flag);
  } catch (const Interrupted& e) {
    fmt::print(stderr, "capbench: {} before any run finished\n", e.what());
    return 128 + e.signal();
  } catch (const ConfigError& e) {
    fmt::print(stderr, "capbench: error: {}\n", one_line(e.what()));
    return kExitBadInput;
  } catch (const UsageError& e) {
    fmt::print(stderr, "capbench: error: {}\n", one_line(e.what()));
    return kExitBadInput;
  } catch (const CommSetupError& e) {
    fmt::print(stderr, "capbench: error: {}\n", one_line(e.what()));
    return kExitBadInput;
  } catch (const std::exception& e) {
    fmt::print(stderr, "capbench: error: {}\n", one_line(e.what()));
    return 1;
  }
  return 0;
}
