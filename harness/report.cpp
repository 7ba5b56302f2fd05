#include "harness/report.h"

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "harness/json_access.h"

namespace capbench {
namespace {

json stats_json(const Stats& s) {
  return {{"n", s.n},     {"mean", s.mean}, {"median", s.median}, {"stdev", s.stdev},
          {"cv", s.cv},   {"min", s.min},   {"max", s.max},       {"p50", s.p50},
          {"p90", s.p90}, {"p99", s.p99}};
}

Stats stats_from(const JsonView& v) {
  Stats s;
  s.n = v.at("n").as_nonnegative_int();
  s.mean = v.at("mean").as_number();
  s.median = v.at("median").as_number();
  s.stdev = v.get_number("stdev", 0);
  s.cv = v.get_number("cv", 0);
  s.min = v.get_number("min", 0);
  s.max = v.get_number("max", 0);
  s.p50 = v.get_number("p50", s.median);
  s.p90 = v.get_number("p90", 0);
  s.p99 = v.get_number("p99", 0);
  return s;
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
          {"parallel", {{"layout", k.parallel_layout}, {"world", k.world}}}};
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
                {"peaks_source", r.roofline.peaks_source}};
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
          {"emulation", r.emulation}};
}

json to_json(const Report& report) {
  json runs = json::array();
  for (const RunRecord& r : report.runs) runs.push_back(to_json(r));
  return {{"schema_version", report.schema_version},
          {"capbench_version", report.capbench_version},
          {"git_revision", report.git_revision},
          {"created_utc", report.created_utc},
          {"suite", report.suite},
          {"host", report.host},
          {"calibration", report.calibration},
          {"runs", runs}};
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
    if (rv.has("samples"))
      for (const auto& [name, _] : rv.at("samples").object().raw().items())
        r.samples[name] = numbers(rv.at("samples").at(name));
    if (rv.has("stats"))
      for (const auto& [name, _] : rv.at("stats").object().raw().items())
        r.stats[name] = stats_from(rv.at("stats").at(name));
    if (rv.has("metrics"))
      for (const auto& [name, _] : rv.at("metrics").object().raw().items())
        r.metrics[name] = rv.at("metrics").at(name).as_number();
    if (rv.has("roofline") && !rv.at("roofline").raw().is_null()) {
      const JsonView f = rv.at("roofline");
      r.roofline.available = true;
      r.roofline.seconds = f.at("seconds").as_number();
      r.roofline.bound = f.get_string("bound", "");
      r.roofline.peak_flops = f.get_number("peak_flops", 0);
      r.roofline.peak_bytes_per_s = f.get_number("peak_bytes_per_s", 0);
      r.roofline.peaks_source = f.get_string("peaks_source", "");
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
      for (const auto& [name, _] : rv.at("memory").object().raw().items())
        r.memory[name] = rv.at("memory").at(name).as_number();
    if (rv.has("device")) r.device = rv.at("device").raw();
    if (rv.has("settings")) r.settings = rv.at("settings").raw();
    r.harness_overhead = rv.get_number("harness_overhead", 0);
    if (rv.has("emulation") && !rv.at("emulation").raw().is_null())
      r.emulation = rv.at("emulation").object().raw();
    report.runs.push_back(std::move(r));
  }
  return report;
}

Report read_report(const std::string& path) {
  return report_from_json(load_json_file(path), path);
}

void write_text_atomic(const std::string& text, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw std::runtime_error("write failed: " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
  }
}

void write_report_atomic(const Report& report, const std::string& path) {
  write_text_atomic(to_json(report).dump(2) + "\n", path);
}

}  // namespace capbench
