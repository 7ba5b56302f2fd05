#include "harness/run_view.h"

#include <fmt/format.h>
#include <set>

namespace capbench {
namespace {

double metric(const std::map<std::string, double>& metrics, const std::string& name,
              double fallback = -1) {
  auto it = metrics.find(name);
  return it == metrics.end() ? fallback : it->second;
}

std::string utilisation(const RunRecord& r, const std::map<std::string, double>& metrics,
                        const std::string& label, const std::string& name) {
  const double v = metric(metrics, name);
  if (v >= 0) return fmt::format("{} {:.1f}%", label, 100 * v);
  // Left out as impossible (a note says why), or no calibration: the table says which.
  for (const std::string& note : r.notes)
    if (note.rfind(label + " left out", 0) == 0) return label + " ?";
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
      {"parallel",
       [](R r) {
         return fmt::format("{}x{}{}", r.key.parallel_layout, r.key.world,
                            r.key.virtual_ranks ? " virt" : "");
       }},
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

namespace {

std::string seconds_text(double t) {
  if (t >= 1) return fmt::format("{:.3g} s", t);
  if (t >= 1e-3) return fmt::format("{:.3g} ms", t * 1e3);
  return fmt::format("{:.3g} us", t * 1e6);
}

TableHeadline headline_of(const RunRecord& r, const std::map<std::string, double>& metrics) {
  TableHeadline t;
  if (const Workload* w = find_workload(r.key.workload)) {
    const Headline h = w->headline(metrics);
    t.throughput = h.throughput;
    t.unit = h.unit;
    t.latency = h.latency;
    t.utilisation = utilisation(r, metrics, h.utilisation_label, h.utilisation_metric);
  } else {  // a workload this build does not know (a newer report): its median alone
    t.unit = r.key.workload;
    t.latency = fmt::format("{} {:.4g} ms", r.primary, primary_median(r) * 1e3);
    t.utilisation = "-";
  }
  return t;
}

}  // namespace

TableHeadline headline(const RunRecord& r) {
  return headline_of(r, r.metrics);
}

std::string whole_model_summary(const RunRecord& r) {
  const nlohmann::json& x = r.extrapolation;
  if (r.status != "ok" || !x.is_object() || !x.contains("metrics") || !x["metrics"].is_object())
    return "";
  std::map<std::string, double> metrics;
  for (const auto& [name, value] : x["metrics"].items())
    if (value.is_number()) metrics[name] = value.get<double>();
  const TableHeadline h = headline_of(r, metrics);
  std::string s =
      fmt::format("{} ({} layers, extrapolated from {}): {:.4g} {}, {}, {}",
                  x.value("model", std::string("?")), x.value("layers", 0),
                  x.value("layers_run", 0), h.throughput, h.unit, h.latency, h.utilisation);
  if (x.contains("estimated_seconds") && x["estimated_seconds"].is_number())
    s += ", on target " + seconds_text(x["estimated_seconds"].get<double>());
  return s;
}

double primary_median(const RunRecord& r) {
  auto it = r.stats.find(r.primary);
  return it == r.stats.end() ? 0 : it->second.median;
}

double time_scale_of(const RunRecord& r) {
  if (r.emulation.is_object() && r.emulation.contains("time_scale") &&
      r.emulation["time_scale"].is_number()) {
    const double s = r.emulation["time_scale"].get<double>();
    if (s > 0 && s <= 1) return s;
  }
  return 1;
}

std::string target_estimate(const RunRecord& r) {
  if (r.key.emulation_profile.empty() || r.status != "ok") return "-";
  return seconds_text(primary_median(r) * time_scale_of(r));
}

std::string parallel_summary(const RunRecord& r) {
  if (!r.parallel.is_object()) return "";
  const std::string layout = r.parallel.value("layout", std::string("?"));
  std::string out = fmt::format("{} x{} ({})", layout, r.parallel.value("world", 0),
                                r.parallel.value("engine", std::string("?")));
  if (layout == "tp")
    out += fmt::format(" tp {} x dp {}, kv heads {}", r.parallel.value("tp", 1),
                       r.parallel.value("dp", 1), r.parallel.value("kv_heads", std::string("?")));
  std::string sep = ": ";
  for (const char* field : {"tp_collectives", "collectives"}) {
    const nlohmann::json collectives = r.parallel.value(field, nlohmann::json::object());
    for (const auto& [kind, c] : collectives.items()) {
      out +=
          fmt::format("{}{}{} {} calls, {:.1f} MB, busbw {:.2f} GB/s", sep,
                      field[0] == 't' ? "tensor-parallel " : "", kind, c.value("calls", int64_t{0}),
                      c.value("bytes", 0.0) / 1e6, c.value("busbw_bytes_per_s", 0.0) / 1e9);
      sep = "; ";
    }
  }
  const auto metric = [&](const char* name) {
    const auto it = r.metrics.find(name);
    return it == r.metrics.end() ? -1.0 : it->second;
  };
  if (metric("comm_ms") >= 0)
    out += fmt::format("; comm {:.2f} ms a step, {:.2f} ms exposed", metric("comm_ms"),
                       metric("exposed_comm_ms"));
  if (metric("overlap_fraction") >= 0)
    out += fmt::format(" (overlap {:.0f}%)", 100 * metric("overlap_fraction"));
  if (r.roofline.communication_seconds > 0)
    out += fmt::format("; link model {:.2f} ms on the host's link",
                       r.roofline.communication_seconds * 1e3);
  if (r.emulation.is_object() && r.emulation.contains("predicted_communication_seconds"))
    out += fmt::format(", {:.3f} ms on {}'s",
                       r.emulation["predicted_communication_seconds"].get<double>() * 1e3,
                       r.key.emulation_profile);
  return out;
}

}  // namespace capbench
