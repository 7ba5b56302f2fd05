#include "harness/console.h"

#include <fmt/format.h>
#include <algorithm>

namespace capbench {
namespace {

double metric(const RunRecord& r, const char* name) {
  auto it = r.metrics.find(name);
  return it == r.metrics.end() ? -1 : it->second;
}

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
  const char* row = "{:<11} {:<8} {:<11} {:<14} {:<8} {:>12} {:<28} {:<11} {:>6} {:<5}\n";
  fmt::print(out, row, "backend", "model", "workload", "emulating", "status", "tokens/s",
             "latency (median)", "util", "CV", "valid");
  for (const RunRecord& r : report.runs) {
    std::string tokens = "-", latency = "-", util = "-", cv = "-", valid = "-";
    if (r.status == "ok") {
      if (r.key.workload == "train_step") {
        tokens = fmt::format("{:.1f}", metric(r, "tokens_per_s"));
        latency = fmt::format("step {:.2f} ms", metric(r, "step_ms"));
        util = "MFU " + percent(metric(r, "mfu"));
      } else if (r.metrics.count("decode_tokens_per_s")) {
        tokens = fmt::format("{:.1f}", metric(r, "decode_tokens_per_s"));
        latency =
            fmt::format("TPOT {:.2f} / TTFT {:.1f} ms", metric(r, "tpot_ms"), metric(r, "ttft_ms"));
        util = "MBU " + percent(metric(r, "mbu"));
      } else {
        tokens = fmt::format("{:.1f}", metric(r, "prefill_tokens_per_s"));
        latency = fmt::format("TTFT {:.1f} ms", metric(r, "ttft_ms"));
        util = "MFU " + percent(metric(r, "prefill_mfu"));
      }
      if (r.stats.count(r.primary)) cv = percent(r.stats.at(r.primary).cv);
      valid = r.validity.valid ? "yes" : "no";
    }
    std::string emulating = r.key.emulation_profile.empty() ? "-" : r.key.emulation_profile;
    if (!r.emulation.is_null() && !r.emulation.value("limited_by", nlohmann::json::array()).empty())
      emulating += "*";  // limited: see the note below the table
    fmt::print(out, row, r.key.backend, r.key.model, r.key.workload, emulating, r.status, tokens,
               latency, util, cv, valid);
  }
  bool limited = false;
  for (const RunRecord& r : report.runs)
    limited = limited || (!r.emulation.is_null() &&
                          !r.emulation.value("limited_by", nlohmann::json::array()).empty());
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
  }
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

}  // namespace capbench
