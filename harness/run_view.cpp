#include "harness/run_view.h"

#include <fmt/format.h>
#include <set>

namespace capbench {
namespace {

double metric(const RunRecord& r, const char* name, double fallback = -1) {
  auto it = r.metrics.find(name);
  return it == r.metrics.end() ? fallback : it->second;
}

std::string utilisation(const RunRecord& r, const char* label, const char* name) {
  const double v = metric(r, name);
  if (v >= 0) return fmt::format("{} {:.1f}%", label, 100 * v);
  // Left out as impossible (a note says why), or no calibration: the table says which.
  for (const std::string& note : r.notes)
    if (note.rfind(std::string(label) + " left out", 0) == 0) return std::string(label) + " ?";
  return "-";
}

std::string sizes(const RunKey& k) {
  if (k.workload == "train_step") return fmt::format("b{}x{}", k.batch, k.seq);
  return fmt::format("b{} p{} d{}", k.batch, k.prompt, k.decode_steps);
}

}  // namespace

bool emulation_limited(const RunRecord& r) {
  return r.emulation.is_object() && r.emulation.contains("limited_by") &&
         r.emulation["limited_by"].is_array() && !r.emulation["limited_by"].empty();
}

std::string emulation_label(const RunRecord& r) {
  const RunKey& k = r.key;
  if (k.emulation_profile.empty()) return "-";
  std::string s = k.emulation_profile;
  if (!k.emulation_relative_to.empty()) s += " rel. " + k.emulation_relative_to;
  if (!k.emulation_mode.empty() && k.emulation_mode != "dilate") s += " (" + k.emulation_mode + ")";
  if (emulation_limited(r)) s += "*";
  return s;
}

std::vector<KeyColumn> distinguishing_columns(const std::vector<RunRecord>& runs) {
  using R = const RunRecord&;
  std::vector<KeyColumn> out = {{"backend", [](R r) { return r.key.backend; }},
                                {"model", [](R r) { return r.key.model; }},
                                {"workload", [](R r) { return r.key.workload; }}};
  const std::vector<KeyColumn> when_they_vary = {
      {"dtype", [](R r) { return r.key.dtype; }},
      {"sizes", [](R r) { return sizes(r.key); }},
      {"threads", [](R r) { return r.key.threads ? std::to_string(r.key.threads) : "-"; }},
      {"device", [](R r) { return r.key.device; }},
      {"parallel", [](R r) { return fmt::format("{}x{}", r.key.parallel_layout, r.key.world); }},
      // A run that emulates is never shown like a native one.
      {"emulating", emulation_label}};
  for (const KeyColumn& c : when_they_vary) {
    std::set<std::string> values;
    for (const RunRecord& r : runs) values.insert(c.value(r));
    if (values.size() > 1 || (c.name == "emulating" && !values.count("-") && !values.empty()))
      out.push_back(c);
  }
  return out;
}

TableHeadline headline(const RunRecord& r) {
  TableHeadline t;
  if (const Workload* w = find_workload(r.key.workload)) {
    const Headline h = w->headline(r.metrics);
    t.throughput = h.throughput;
    t.unit = h.unit;
    t.latency = h.latency;
    t.utilisation = utilisation(r, h.utilisation_label.c_str(), h.utilisation_metric.c_str());
  } else {  // a workload this build does not know (a newer report): its median alone
    t.unit = r.key.workload;
    t.latency = fmt::format("{} {:.4g} ms", r.primary, primary_median(r) * 1e3);
    t.utilisation = "-";
  }
  return t;
}

double primary_median(const RunRecord& r) {
  auto it = r.stats.find(r.primary);
  return it == r.stats.end() ? 0 : it->second.median;
}

}  // namespace capbench
