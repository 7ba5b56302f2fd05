#include "harness/console.h"

#include "harness/run_view.h"

#include <fmt/format.h>
#include <algorithm>

namespace capbench {
namespace {

std::string percent(double fraction) {
  return fraction < 0 ? "-" : fmt::format("{:.1f}%", 100 * fraction);
}

}  // namespace

std::string human_rate(double v, const char* unit) {
  if (v >= 1e12) return fmt::format("{:.2f} T{}", v / 1e12, unit);
  if (v >= 1e9) return fmt::format("{:.2f} G{}", v / 1e9, unit);
  if (v >= 1e6) return fmt::format("{:.2f} M{}", v / 1e6, unit);
  if (v >= 1e3) return fmt::format("{:.2f} k{}", v / 1e3, unit);
  return fmt::format("{:.2f} {}", v, unit);
}

void print_summary_table(std::FILE* out, const Report& report) {
  const std::vector<KeyColumn> columns = distinguishing_columns(report.runs);
  // Each key column as wide as its widest value.
  std::vector<size_t> widths;
  for (const KeyColumn& c : columns) {
    size_t w = c.name.size();
    for (const RunRecord& r : report.runs) w = std::max(w, c.value(r).size());
    widths.push_back(w);
  }
  auto key_cells = [&](auto value_of) {
    std::string line;
    for (size_t i = 0; i < columns.size(); ++i)
      line += fmt::format("{:<{}} ", value_of(i), widths[i]);
    return line;
  };
  // Emulated runs also show their primary median on the target (measured x time scale).
  bool emulates = false;
  for (const RunRecord& r : report.runs) emulates = emulates || !r.key.emulation_profile.empty();
  const char* tail = "{:<8} {:>12} {:<40} {:<14} {:>6} {:<5}";
  fmt::print(out, "{}", key_cells([&](size_t i) { return columns[i].name; }));
  fmt::print(out, tail, "status", "tokens/s", "latency (median)", "util", "CI95", "valid");
  fmt::print(out, "{}\n", emulates ? " on target" : "");
  for (const RunRecord& r : report.runs) {
    std::string tokens = "-", latency = "-", util = "-", ci = "-", valid = "-";
    if (r.status == "ok") {
      const TableHeadline h = headline(r);
      tokens = fmt::format("{:.1f}", h.throughput);
      latency = h.latency;
      util = h.utilisation;
      if (r.stats.count(r.primary))
        ci = fmt::format("±{:.1f}%", 100 * r.stats.at(r.primary).median_ci_relative());
      valid = r.validity.valid ? "yes" : "no";
    }
    fmt::print(out, "{}", key_cells([&](size_t i) { return columns[i].value(r); }));
    fmt::print(out, tail, r.status, tokens, latency, util, ci, valid);
    fmt::print(out, "{}\n", emulates ? " " + target_estimate(r) : "");
  }
  bool limited = false;
  for (const RunRecord& r : report.runs) limited = limited || emulation_limited(r);
  if (limited)
    fmt::print(out,
               "  * the host cannot reach this chip in some dimension (emulation.limited_by): "
               "optimistic there\n");
  for (const RunRecord& r : report.runs) {
    const std::string who =
        fmt::format("{} {} {}{}", r.key.backend, r.key.model, r.key.workload,
                    r.key.emulation_profile.empty() ? "" : " as " + r.key.emulation_profile);
    if (r.status != "ok")
      fmt::print(out, "  {}: {}: {}\n", who, r.status, r.reason);
    else if (!r.validity.valid)
      for (const std::string& why : r.validity.reasons)
        fmt::print(out, "  {}: not valid: {}\n", who, why);
    for (const std::string& note : r.notes) fmt::print(out, "  {}: {}\n", who, note);
    const std::string whole = whole_model_summary(r);
    if (!whole.empty()) fmt::print(out, "  {}: whole model {}\n", who, whole);
    const std::string parallel = parallel_summary(r);
    if (!parallel.empty()) fmt::print(out, "  {}: {}\n", who, parallel);
  }
  if (report.interrupted.is_object())
    fmt::print(out, "  interrupted by {} during {}: {} run(s) finished, {} not run\n",
               report.interrupted.value("signal", std::string("a signal")),
               report.interrupted.value("during", std::string("the suite")), report.runs.size(),
               report.interrupted.value("runs_not_run", 0));
}

void print_op_breakdown(std::FILE* out, const Report& report) {
  for (const RunRecord& r : report.runs) {
    if (r.ops.empty()) continue;
    double total = 0;
    for (const OpRecord& o : r.ops) total += o.seconds;
    fmt::print(out, "\n{} {} {} — per op, {} ({:.2f} ms profiled):\n", r.key.backend, r.key.model,
               r.key.workload, r.ops_unit, total * 1e3);
    const char* row = "  {:<22} {:>6} {:>11} {:>7} {:>14} {:>14} {:>8} {:>10}\n";
    fmt::print(out, row, "op", "calls", "time ms", "share", "FLOP/s", "bytes/s", "bound",
               "roofline");
    std::vector<OpRecord> ops = r.ops;
    std::sort(ops.begin(), ops.end(),
              [](const OpRecord& a, const OpRecord& b) { return a.seconds > b.seconds; });
    for (const OpRecord& o : ops) {
      const double frac =
          o.roofline_seconds > 0 && o.seconds > 0 ? o.roofline_seconds / o.seconds : -1;
      fmt::print(out, row, o.op, o.calls, fmt::format("{:.3f}", o.seconds * 1e3),
                 percent(total > 0 ? o.seconds / total : 0),
                 human_rate(o.seconds > 0 ? o.flops / o.seconds : 0, "FLOP/s"),
                 human_rate(o.seconds > 0 ? o.bytes / o.seconds : 0, "B/s"),
                 o.bound.empty() ? "-" : o.bound, percent(frac));
    }
  }
}

void print_fidelity(std::FILE* out, const Report& report) {
  for (const FidelityResult& f : report.fidelity) {
    fmt::print(out, "\n{} on {}: emulation fidelity (medians of {}): {}\n", f.backend, f.device,
               f.reps, f.passed() ? "every check meets its goal" : "some checks MISS their goal");
    for (const FidelityCheck& c : f.checks) {
      const std::string goal = c.informational
                                   ? std::string("informational, no goal")
                                   : fmt::format("goal {:.2f}..{:.2f}", c.goal_low, c.goal_high);
      fmt::print(out, "  {:<9} {:<100} {:>7.4f}  {:<6} {}  ({})\n", c.kind, c.name, c.ratio,
                 c.informational ? "info"
                 : c.passed      ? "meets"
                                 : "MISSES",
                 goal, c.detail);
    }
    for (const std::string& note : f.notes) fmt::print(out, "  {}\n", note);
  }
}

}  // namespace capbench
