#include "harness/emulation.h"

#include <fmt/format.h>
#include <algorithm>
#include <cstdlib>

namespace capbench {

bool parse_time_scale(const std::string& text, TimeScale* out) {
  if (text == "suite") {
    *out = {TimeScale::Kind::suite, 1};
    return true;
  }
  if (text == "auto") {
    *out = {TimeScale::Kind::fit, 1};
    return true;
  }
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v > 0 && v <= 1)) return false;
  *out = {TimeScale::Kind::fixed, v};
  return true;
}

std::string time_scale_name(const TimeScale& t) {
  switch (t.kind) {
    case TimeScale::Kind::suite:
      return "suite";
    case TimeScale::Kind::fit:
      return "auto";
    case TimeScale::Kind::fixed:
      return fmt::format("{:g}", t.value);
  }
  return "?";
}

Rates emulated_rates(const EmulationSpec& spec, const Rates& host_peak, DType dtype) {
  const DeviceProfile& target = spec.target;
  if (!spec.reference) return {target.flops(dtype).value, target.memory_bytes_per_s.value};
  const DeviceProfile& ref = *spec.reference;
  return {host_peak.flops * target.bf16_flops.value / ref.bf16_flops.value,
          host_peak.bytes_per_s * target.memory_bytes_per_s.value / ref.memory_bytes_per_s.value};
}

double fitting_time_scale(const Rates& host, const Rates& target) {
  double s = 1;
  if (target.flops > 0) s = std::min(s, host.flops / target.flops);
  if (target.bytes_per_s > 0) s = std::min(s, host.bytes_per_s / target.bytes_per_s);
  return s;
}

LinkModel profile_link(const DeviceProfile& profile) {
  LinkModel link;
  link.topology = profile.topology;
  link.link_bytes_per_s = profile.link_bytes_per_s.value;
  link.latency_s = profile.link_latency_s.value;
  link.scale_out_bytes_per_s = profile.scale_out_bytes_per_s.value;
  link.ranks_per_node = static_cast<int>(profile.max_peers + 1);
  return link;
}

LinkModel emulated_link(const EmulationSpec& spec, double host_link_bytes_per_s, int world) {
  const LinkModel target = profile_link(spec.target);
  if (!spec.reference) return target;
  const LinkModel reference = profile_link(*spec.reference);
  LinkModel link = target;
  link.topology = "switch";
  link.link_bytes_per_s =
      host_link_bytes_per_s * target.bandwidth(world) / reference.bandwidth(world);
  link.scale_out_bytes_per_s = 0;
  return link;
}

void plan_link(EmulationPlan& plan, const EmulationSpec& spec, double host_link_bytes_per_s,
               int world) {
  plan.link = emulated_link(spec, host_link_bytes_per_s, world);
  if (plan.link->bandwidth(world) * plan.time_scale > host_link_bytes_per_s * (1 + 1e-9))
    plan.limited_by.push_back("interconnect");
}

EmulationPlan plan_emulation(const EmulationSpec& spec, const HostRates& host, DType dtype,
                             double time_scale, bool graphs) {
  const DeviceProfile& target = spec.target;
  EmulationPlan plan;
  plan.pacing.profile = target.name;
  plan.pacing.mode = spec.mode;
  plan.pacing.host = host;
  plan.memory_capacity_bytes = target.memory_capacity_bytes.value;
  plan.emulated = emulated_rates(spec, host.peak, dtype);
  if (spec.reference) {
    plan.relative_to = spec.reference->name;
    plan.compute_ratio = target.bf16_flops.value / spec.reference->bf16_flops.value;
    plan.bandwidth_ratio =
        target.memory_bytes_per_s.value / spec.reference->memory_bytes_per_s.value;
  }
  plan.time_scale = time_scale;
  const Rates wanted{plan.emulated.flops * time_scale, plan.emulated.bytes_per_s * time_scale};
  // A target faster than the host, even scaled, cannot be emulated by slowing the host down.
  if (wanted.flops > host.peak.flops * (1 + 1e-9)) plan.limited_by.push_back("compute");
  if (wanted.bytes_per_s > host.peak.bytes_per_s * (1 + 1e-9))
    plan.limited_by.push_back("memory_bandwidth");
  plan.pacing.target.peak = {std::min(wanted.flops, host.peak.flops),
                             std::min(wanted.bytes_per_s, host.peak.bytes_per_s)};
  auto launch_of = [graphs](const DeviceProfile& p) {
    return (graphs ? p.launch_graphs_s : p.launch_eager_s).value;
  };
  const double d = host.dispatch_s;
  if (spec.reference) {
    // The host plays the reference with its own per-op cost; the target adds what its launches
    // cost beyond the reference's.
    const double more = std::max(0.0, launch_of(target) - launch_of(*spec.reference));
    plan.launch_s = d + more;
    plan.pacing.launch_extra_s = more / time_scale + d * (1 / time_scale - 1);
  } else {
    plan.launch_s = launch_of(target);
    plan.pacing.launch_extra_s = std::max(0.0, plan.launch_s / time_scale - d);
  }
  plan.pacing.launch_s = plan.launch_s / time_scale;
  return plan;
}

nlohmann::json plan_json(const EmulationPlan& p, const EmulationSpec& spec) {
  auto figure = [](const Figure& f) {
    return nlohmann::json{{"value", f.value}, {"source", f.source}, {"kind", f.kind}};
  };
  const HostRates& host = p.pacing.host;
  nlohmann::json shapes = nlohmann::json::object();
  nlohmann::json gemv = nlohmann::json::array(), gemm = nlohmann::json::array();
  for (const ShapeRate& r : host.gemv) gemv.push_back({r.size, r.rows, r.rate});
  for (const ShapeRate& r : host.gemm) gemm.push_back({r.size, r.rate});
  shapes["gemv_bytes_per_s_by_k_and_n"] = gemv;
  shapes["gemm_flops_by_size"] = gemm;
  shapes["other_bytes_per_s"] = host.other_bytes_per_s;
  nlohmann::json j = {
      {"profile", p.pacing.profile},
      {"profile_file", spec.target.file},
      {"mode", emulation_mode_name(p.pacing.mode)},
      {"relative_to",
       p.relative_to.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.relative_to)},
      {"time_scale", p.time_scale},
      {"time_scale_rule", time_scale_name(spec.time_scale)},
      {"host_rates",
       {{"flops", host.peak.flops},
        {"bytes_per_s", host.peak.bytes_per_s},
        {"dispatch_s", host.dispatch_s},
        {"by_shape", shapes}}},
      {"emulated_rates", {{"flops", p.emulated.flops}, {"bytes_per_s", p.emulated.bytes_per_s}}},
      {"target_rates",
       {{"flops", p.pacing.target.peak.flops}, {"bytes_per_s", p.pacing.target.peak.bytes_per_s}}},
      {"launch_s", p.launch_s},
      {"paced_launch_s", p.pacing.launch_s},
      {"paced_launch_extra_s", p.pacing.launch_extra_s},
      {"limited_by", p.limited_by},
      {"memory_capacity_bytes", p.memory_capacity_bytes},
      {"profile_figures",
       {{"bf16_flops", figure(spec.target.bf16_flops)},
        {"fp32_flops", figure(spec.target.fp32_flops)},
        {"memory_bytes_per_s", figure(spec.target.memory_bytes_per_s)},
        {"memory_capacity_bytes", figure(spec.target.memory_capacity_bytes)},
        {"launch_eager_s", figure(spec.target.launch_eager_s)},
        {"launch_graphs_s", figure(spec.target.launch_graphs_s)}}}};
  if (!p.relative_to.empty()) {
    j["compute_ratio"] = p.compute_ratio;
    j["bandwidth_ratio"] = p.bandwidth_ratio;
  }
  return j;
}

}  // namespace capbench
