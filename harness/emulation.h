// Emulation planning: which rates a run's ops are paced to, from the target's profile, the chip
// the host plays (relative emulation), and the host's calibrated rates; what cannot be emulated
// (limited_by); and the plan as the report records it. The throttle takes only the pacing part.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backends/throttle/device_profile.h"
#include "backends/throttle/throttle_backend.h"

namespace capbench {

// An emulation a suite entry asks for.
struct EmulationSpec {
  DeviceProfile target;
  std::optional<DeviceProfile> reference;  // relative emulation: the chip the host plays
  EmulationMode mode = EmulationMode::dilate;
};

struct EmulationPlan {
  PacingPlan pacing;
  std::string relative_to;  // reference profile name; empty for absolute emulation
  // Dimensions ("compute", "memory_bandwidth") where the target is faster than the host can
  // be: those run at the host's rate, so results there are optimistic, and say so.
  std::vector<std::string> limited_by;
  double memory_capacity_bytes = 0;
  // compute and bandwidth scale factors applied to the host (relative emulation), else 0.
  double compute_ratio = 0, bandwidth_ratio = 0;
};

// Absolute emulation (reference == nullptr): the target's own figures for `dtype`. Relative
// emulation: the host plays `reference`; its calibrated rates are scaled by target / reference
// (dense bf16 tensor rate for compute, the headline figure of these chips; memory bandwidth).
EmulationPlan plan_emulation(const DeviceProfile& target, const DeviceProfile* reference,
                             const Rates& host, EmulationMode mode, DType dtype);

// The report's emulation block: profile, mode, rates, limits, and the profile's figures with
// their sources.
nlohmann::json plan_json(const EmulationPlan& plan, const EmulationSpec& spec);

}  // namespace capbench
