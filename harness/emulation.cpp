#include "harness/emulation.h"

#include <algorithm>

namespace capbench {

EmulationPlan plan_emulation(const DeviceProfile& target, const DeviceProfile* reference,
                             const Rates& host, EmulationMode mode, DType dtype) {
  EmulationPlan plan;
  plan.pacing.profile = target.name;
  plan.pacing.mode = mode;
  plan.pacing.host = host;
  plan.memory_capacity_bytes = target.memory_capacity_bytes.value;
  Rates wanted;
  if (reference) {
    plan.relative_to = reference->name;
    plan.compute_ratio = target.bf16_flops.value / reference->bf16_flops.value;
    plan.bandwidth_ratio = target.memory_bytes_per_s.value / reference->memory_bytes_per_s.value;
    wanted = {host.flops * plan.compute_ratio, host.bytes_per_s * plan.bandwidth_ratio};
  } else {
    wanted = {target.flops(dtype).value, target.memory_bytes_per_s.value};
  }
  // A target faster than the host cannot be emulated by slowing the host down.
  if (wanted.flops > host.flops * (1 + 1e-9)) plan.limited_by.push_back("compute");
  if (wanted.bytes_per_s > host.bytes_per_s * (1 + 1e-9))
    plan.limited_by.push_back("memory_bandwidth");
  plan.pacing.target = {std::min(wanted.flops, host.flops),
                        std::min(wanted.bytes_per_s, host.bytes_per_s)};
  return plan;
}

nlohmann::json plan_json(const EmulationPlan& p, const EmulationSpec& spec) {
  auto figure = [](const Figure& f) {
    return nlohmann::json{{"value", f.value}, {"source", f.source}, {"kind", f.kind}};
  };
  nlohmann::json j = {
      {"profile", p.pacing.profile},
      {"profile_file", spec.target.file},
      {"mode", emulation_mode_name(p.pacing.mode)},
      {"relative_to",
       p.relative_to.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.relative_to)},
      {"host_rates", {{"flops", p.pacing.host.flops}, {"bytes_per_s", p.pacing.host.bytes_per_s}}},
      {"target_rates",
       {{"flops", p.pacing.target.flops}, {"bytes_per_s", p.pacing.target.bytes_per_s}}},
      {"limited_by", p.limited_by},
      {"memory_capacity_bytes", p.memory_capacity_bytes},
      {"profile_figures",
       {{"bf16_flops", figure(spec.target.bf16_flops)},
        {"fp32_flops", figure(spec.target.fp32_flops)},
        {"memory_bytes_per_s", figure(spec.target.memory_bytes_per_s)},
        {"memory_capacity_bytes", figure(spec.target.memory_capacity_bytes)}}}};
  if (!p.relative_to.empty()) {
    j["compute_ratio"] = p.compute_ratio;
    j["bandwidth_ratio"] = p.bandwidth_ratio;
  }
  return j;
}

}  // namespace capbench
