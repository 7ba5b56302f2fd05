#include "harness/report.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "harness/json_access.h"

namespace capbench {
namespace {

json stats_json(const Stats& s) {
  return {{"n", s.n},
          {"mean", s.mean},
          {"median", s.median},
          {"stdev", s.stdev},
          {"cv", s.cv},
          {"min", s.min},
          {"max", s.max},
          {"p50", s.p50},
          {"p90", s.p90},
          {"p99", s.p99},
          {"median_ci95", {s.median_ci_low, s.median_ci_high}},
          {"outliers", s.outliers}};
}

// A series' samples: seconds, finite and non-negative.
std::vector<double> sample_series(const JsonView& v) {
  std::vector<double> out;
  for (const JsonView& item : v.items()) {
    const double x = item.as_number();
    if (!(x >= 0) || !std::isfinite(x)) item.fail("a finite, non-negative number of seconds");
    out.push_back(x);
  }
  return out;
}

// The number a field holds, if it holds one: maps of metrics and memory figures are open, and a
// reader ignores the entries it cannot use, as it ignores unknown fields.
bool try_number(const JsonView& v, double* out) {
  try {
    *out = v.as_number();
    return true;
  } catch (const ConfigError&) {
    return false;
  }
}

json key_json(const RunKey& k) {
  json emulation = nullptr;
  if (!k.emulation_profile.empty())
    emulation = {{"profile", k.emulation_profile},
                 {"mode", k.emulation_mode},
                 {"relative_to", k.emulation_relative_to}};
  return {{"workload", k.workload},
          {"model", k.model},
          {"backend", k.backend},
          {"device", k.device},
          {"dtype", k.dtype},
          {"batch", k.batch},
          {"seq", k.seq},
          {"prompt", k.prompt},
          {"decode_steps", k.decode_steps},
          {"threads", k.threads},
          {"emulation", emulation},
          {"parallel",
           {{"layout", k.parallel_layout},
            {"world", k.world},
            {"tp", k.tp},
            {"virtual", k.virtual_ranks}}}};
}

RunKey key_from(const JsonView& v) {
  RunKey k;
  k.workload = v.at("workload").as_string();
  k.model = v.at("model").as_string();
  k.backend = v.at("backend").as_string();
  k.device = v.get_string("device", "");
  k.dtype = v.get_string("dtype", "");
  k.batch = v.get_nonnegative_int("batch", 0);
  k.seq = v.get_nonnegative_int("seq", 0);
  k.prompt = v.get_nonnegative_int("prompt", 0);
  k.decode_steps = v.get_nonnegative_int("decode_steps", 0);
  k.threads = v.get_nonnegative_int("threads", 0);
  if (v.has("emulation") && !v.at("emulation").raw().is_null()) {
    const JsonView e = v.at("emulation");
    k.emulation_profile = e.at("profile").as_string();
    k.emulation_mode = e.get_string("mode", "");
    k.emulation_relative_to = e.get_string("relative_to", "");
  }
  if (v.has("parallel")) {
    const JsonView p = v.at("parallel");
    k.parallel_layout = p.get_string("layout", "single");
    k.world = p.get_positive_int("world", 1);
    k.tp = p.get_positive_int("tp", 1);
    k.virtual_ranks = p.has("virtual") && p.at("virtual").as_bool();
  }
  return k;
}

std::vector<double> numbers(const JsonView& v) {
  std::vector<double> out;
  for (const JsonView& item : v.items()) out.push_back(item.as_number());
  return out;
}

}  // namespace

std::string RunKey::to_string() const {
  std::string s = workload + " model=" + model + " backend=" + backend + " device=" + device +
                  " dtype=" + dtype + " batch=" + std::to_string(batch);
  if (seq) s += " seq=" + std::to_string(seq);
  if (prompt) s += " prompt=" + std::to_string(prompt);
  if (decode_steps) s += " decode=" + std::to_string(decode_steps);
  if (threads) s += " threads=" + std::to_string(threads);
  if (!emulation_profile.empty()) {
    s += " emulate=" + emulation_profile + "/" + emulation_mode;
    if (!emulation_relative_to.empty()) s += "/rel:" + emulation_relative_to;
  }
  if (parallel_layout != "single" || world != 1)
    s += " parallel=" + parallel_layout + "x" + std::to_string(world);
  if (parallel_layout == "tp") s += " tp=" + std::to_string(tp);
  if (virtual_ranks) s += " virtual";
  return s;
}

json to_json(const RunRecord& r) {
  json samples = json::object(), stats = json::object();
  for (const auto& [name, values] : r.samples) samples[name] = values;
  for (const auto& [name, s] : r.stats) stats[name] = stats_json(s);
  json ops = json::array();
  for (const OpRecord& o : r.ops) {
    ops.push_back({{"op", o.op},
                   {"calls", o.calls},
                   {"seconds", o.seconds},
                   {"flops", o.flops},
                   {"bytes", o.bytes},
                   {"achieved_flops_per_s", o.seconds > 0 ? o.flops / o.seconds : 0.0},
                   {"achieved_bytes_per_s", o.seconds > 0 ? o.bytes / o.seconds : 0.0},
                   {"roofline_seconds", o.roofline_seconds},
                   {"target_roofline_seconds", o.target_roofline_seconds},
                   {"bound", o.bound}});
  }
  json canaries = json::array();
  for (const Canary& c : r.canaries)
    canaries.push_back(
        {{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}, {"values", c.values}});
  json roofline = nullptr;
  if (r.roofline.available)
    roofline = {{"seconds", r.roofline.seconds},
                {"bound", r.roofline.bound},
                {"peak_flops", r.roofline.peak_flops},
                {"peak_bytes_per_s", r.roofline.peak_bytes_per_s},
                {"peaks_source", r.roofline.peaks_source},
                {"communication_seconds", r.roofline.communication_seconds}};
  return {{"key", key_json(r.key)},
          {"status", r.status},
          {"reason", r.reason},
          {"primary", r.primary},
          {"samples", samples},
          {"stats", stats},
          {"metrics", r.metrics},
          {"roofline", roofline},
          {"ops_unit", r.ops_unit},
          {"ops", ops},
          {"canaries", canaries},
          {"validity", {{"valid", r.validity.valid}, {"reasons", r.validity.reasons}}},
          {"memory", r.memory},
          {"device", r.device},
          {"settings", r.settings},
          {"harness_overhead", r.harness_overhead},
          {"notes", r.notes},
          {"emulation", r.emulation},
          {"extrapolation", r.extrapolation},
          {"parallel", r.parallel}};
}

json to_json(const Report& report) {
  json runs = json::array();
  for (const RunRecord& r : report.runs) runs.push_back(to_json(r));
  json doc = {{"schema_version", report.schema_version},
              {"capbench_version", report.capbench_version},
              {"git_revision", report.git_revision},
              {"created_utc", report.created_utc},
              {"suite", report.suite},
              {"host", report.host},
              {"calibration", report.calibration},
              {"runs", runs}};
  if (!report.interrupted.is_null()) doc["interrupted"] = report.interrupted;
  if (!report.comm_bench.is_null()) doc["comm_bench"] = report.comm_bench;
  if (!report.fidelity.empty()) {
    doc["fidelity"] = nlohmann::json::array();
    for (const FidelityResult& f : report.fidelity) doc["fidelity"].push_back(to_json(f));
  }
  return doc;
}

Report report_from_json(const json& doc, const std::string& file) {
  const JsonView root = JsonView(doc, file).object();
  Report report;
  report.schema_version = static_cast<int>(root.at("schema_version").as_positive_int());
  if (report.schema_version != kReportSchemaVersion)
    root.at("schema_version")
        .fail("schema version " + std::to_string(kReportSchemaVersion) + ", got " +
              std::to_string(report.schema_version));
  report.capbench_version = root.get_string("capbench_version", "");
  report.git_revision = root.get_string("git_revision", "");
  report.created_utc = root.get_string("created_utc", "");
  report.suite = root.get_string("suite", "");
  if (root.has("host")) report.host = root.at("host").object().raw();
  if (root.has("calibration")) report.calibration = root.at("calibration").raw();
  for (const JsonView& rv : root.at("runs").items()) {
    RunRecord r;
    rv.object();
    r.key = key_from(rv.at("key"));
    r.status = rv.at("status").as_string();
    if (r.status != "ok" && r.status != "skipped" && r.status != "failed")
      rv.at("status").fail("one of ok, skipped, failed, got \"" + r.status + "\"");
    r.reason = rv.get_string("reason", "");
    r.primary = rv.get_string("primary", "");
    // Samples are the data; statistics are derived from them, so every reader computes them
    // the same way whatever the file says. An ok run must hold its primary series.
    if (rv.has("samples"))
      for (const auto& [name, values] : rv.at("samples").object().raw().items())
        if (values.is_array() || name == r.primary)
          r.samples[name] = sample_series(rv.at("samples").at(name));
    if (r.status == "ok") {
      if (r.primary.empty()) rv.fail("an ok run to name its primary series (field \"primary\")");
      if (r.samples[r.primary].empty())
        rv.at("samples").fail("the primary series \"" + r.primary + "\" with samples");
    }
    for (const auto& [name, values] : r.samples)
      if (!values.empty()) r.stats[name] = summarize(values);
    if (rv.has("metrics"))
      for (const auto& [name, _] : rv.at("metrics").object().raw().items()) {
        double v = 0;
        if (try_number(rv.at("metrics").at(name), &v)) r.metrics[name] = v;
      }
    if (rv.has("roofline") && !rv.at("roofline").raw().is_null()) {
      const JsonView f = rv.at("roofline");
      r.roofline.available = true;
      r.roofline.seconds = f.at("seconds").as_number();
      r.roofline.bound = f.get_string("bound", "");
      r.roofline.peak_flops = f.get_number("peak_flops", 0);
      r.roofline.peak_bytes_per_s = f.get_number("peak_bytes_per_s", 0);
      r.roofline.peaks_source = f.get_string("peaks_source", "");
      r.roofline.communication_seconds = f.get_number("communication_seconds", 0);
    }
    r.ops_unit = rv.get_string("ops_unit", "");
    if (rv.has("ops"))
      for (const JsonView& o : rv.at("ops").items()) {
        OpRecord op;
        op.op = o.at("op").as_string();
        op.calls = o.at("calls").as_nonnegative_int();
        op.seconds = o.at("seconds").as_number();
        op.flops = o.get_number("flops", 0);
        op.bytes = o.get_number("bytes", 0);
        op.roofline_seconds = o.get_number("roofline_seconds", 0);
        op.target_roofline_seconds = o.get_number("target_roofline_seconds", 0);
        op.bound = o.get_string("bound", "");
        r.ops.push_back(op);
      }
    if (rv.has("canaries"))
      for (const JsonView& c : rv.at("canaries").items()) {
        Canary canary;
        canary.name = c.at("name").as_string();
        canary.passed = c.at("passed").as_bool();
        canary.detail = c.get_string("detail", "");
        if (c.has("values")) canary.values = numbers(c.at("values"));
        r.canaries.push_back(canary);
      }
    if (rv.has("validity")) {
      const JsonView v = rv.at("validity");
      r.validity.valid = v.at("valid").as_bool();
      if (v.has("reasons"))
        for (const JsonView& reason : v.at("reasons").items())
          r.validity.reasons.push_back(reason.as_string());
    }
    if (rv.has("memory"))
      for (const auto& [name, _] : rv.at("memory").object().raw().items()) {
        double v = 0;
        if (try_number(rv.at("memory").at(name), &v)) r.memory[name] = v;
      }
    if (rv.has("notes"))
      for (const JsonView& note : rv.at("notes").items()) r.notes.push_back(note.as_string());
    if (rv.has("device")) r.device = rv.at("device").raw();
    if (rv.has("settings")) r.settings = rv.at("settings").raw();
    r.harness_overhead = rv.get_number("harness_overhead", 0);
    if (rv.has("emulation") && !rv.at("emulation").raw().is_null())
      r.emulation = rv.at("emulation").object().raw();
    if (rv.has("extrapolation") && !rv.at("extrapolation").raw().is_null())
      r.extrapolation = rv.at("extrapolation").object().raw();
    if (rv.has("parallel") && !rv.at("parallel").raw().is_null())
      r.parallel = rv.at("parallel").object().raw();
    report.runs.push_back(std::move(r));
  }
  if (root.has("interrupted")) report.interrupted = root.at("interrupted").object().raw();
  if (root.has("comm_bench") && !root.at("comm_bench").raw().is_null())
    report.comm_bench = root.at("comm_bench").object().raw();
  if (root.has("fidelity"))
    for (const JsonView& f : root.at("fidelity").items())
      report.fidelity.push_back(fidelity_from_json(f));
  return report;
}

Report read_report(const std::string& path) {
  return report_from_json(load_json_file(path), path);
}

namespace {

std::string folder_of(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Why `path` must not be replaced by a new regular file, or "" when it may be.
std::string unreplaceable(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "";  // not there: fine
  if (S_ISLNK(st.st_mode))
    return "is a symbolic link (capbench would replace the link, not the file it names: give "
           "the file's own path)";
  if (S_ISDIR(st.st_mode)) return "is a folder";
  if (!S_ISREG(st.st_mode)) return "is not a regular file (a device, FIFO or socket)";
  return "";
}

// A new, empty, exclusively created file beside `path`: (descriptor, name).
std::pair<int, std::string> create_temporary(const std::string& path) {
  const std::filesystem::path p(path);
  std::string name =
      (std::filesystem::path(folder_of(path)) / ("." + p.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  return {fd, name};
}

}  // namespace

void check_output_path(const std::string& path, const std::string& flag) {
  const std::string folder = folder_of(path);
  if (!std::filesystem::is_directory(folder))
    throw UsageError(flag + " " + path + ": folder " + folder + " does not exist");
  if (const std::string why = unreplaceable(path); !why.empty())
    throw UsageError(flag + " " + path + ": " + why);
  const auto [fd, name] = create_temporary(path);
  if (fd < 0)
    throw UsageError(flag + " " + path + ": cannot create files in " + folder + " (" +
                     std::strerror(errno) + ")");
  ::close(fd);
  ::unlink(name.c_str());
}

void write_text_atomic(const std::string& text, const std::string& path) {
  if (const std::string why = unreplaceable(path); !why.empty())
    throw UsageError(path + ": " + why);
  const auto [fd, tmp] = create_temporary(path);
  if (fd < 0)
    throw std::runtime_error("cannot create a file beside " + path + ": " + std::strerror(errno));
  size_t done = 0;
  bool ok = true;
  while (ok && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  const int saved = errno;
  // mkostemp makes the file private (0600); a report is as readable as any file the user makes.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ok = ok && ::fchmod(fd, 0666 & ~mask) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(ok ? errno : saved);
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path + ": " + why);
  }
}

void write_report_atomic(const Report& report, const std::string& path) {
  write_text_atomic(dump_json(to_json(report), 2) + "\n", path);
}

}  // namespace capbench
