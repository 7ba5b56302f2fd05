// Emulation planning: which rates a run's ops are paced to, from the target's profile, the chip
// the host plays (relative emulation), the host's calibrated rates and the time scale; what
// cannot be emulated (limited_by); and the plan as the report records it. The throttle takes
// only the pacing part.
//
// Time scale s (0 < s <= 1): the host plays the target in slow motion. The target's rates are
// multiplied by s and its launch overhead divided by it, so the emulated machine keeps the
// target's balance of compute to bandwidth exactly; a time measured on the host times s is the
// estimate on the target. The largest s at which the host can meet every dimension fits; s = 1
// is real time, where a target faster than the host in a dimension is limited to the host there.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backends/comm/link_model.h"
#include "backends/throttle/device_profile.h"
#include "backends/throttle/throttle_backend.h"

namespace capbench {

// How a run's time scale is chosen: one for every emulated run of the suite (so that they share
// a time base and compare directly), the largest that fits this run, or a fixed value.
struct TimeScale {
  enum class Kind { suite, fit, fixed } kind = Kind::suite;
  double value = 1;  // fixed
};
// "suite", "auto" or a number in (0, 1]; false for anything else.
bool parse_time_scale(const std::string& text, TimeScale* out);
std::string time_scale_name(const TimeScale& t);

// An emulation a suite entry asks for.
struct EmulationSpec {
  DeviceProfile target;
  std::optional<DeviceProfile> reference;  // relative emulation: the chip the host plays
  EmulationMode mode = EmulationMode::dilate;
  TimeScale time_scale;
};

// The rates of the chip emulated, at `dtype`: the profile's own figures (absolute), or the host's
// scaled by the target's figures over the reference's (relative: dense bf16 compute, the
// headline figure of these chips; memory bandwidth).
Rates emulated_rates(const EmulationSpec& spec, const Rates& host_peak, DType dtype);
// The largest s in (0, 1] at which a host of `host` rates meets `target` times s everywhere.
double fitting_time_scale(const Rates& host, const Rates& target);

struct EmulationPlan {
  PacingPlan pacing;
  std::string relative_to;  // reference profile name; empty for absolute emulation
  Rates emulated;           // the chip's own rates (before the time scale)
  double time_scale = 1;
  // The emulated chip's per-op overhead (before the time scale): the profile's launch overhead
  // (absolute), or the host's own plus what the target's exceeds the reference's (relative).
  double launch_s = 0;
  // Dimensions ("compute", "memory_bandwidth") where the scaled target is faster than the host
  // can be: those run at the host's rate, so results there are optimistic, and say so.
  std::vector<std::string> limited_by;
  double memory_capacity_bytes = 0;
  // compute and bandwidth scale factors applied to the host (relative emulation), else 0.
  double compute_ratio = 0, bandwidth_ratio = 0;
  // The emulated chip's scale-up link (before the time scale): the profile's, or the host's
  // link scaled by the target's over the reference's (relative). Absent when the host's link
  // was not measured (a single process).
  std::optional<LinkModel> link;
};

// A profile's scale-up link and scale-out figures as a link model.
LinkModel profile_link(const DeviceProfile& profile);
// The emulated chip's link for a collective over `world` ranks: the profile's (absolute), or,
// relative, the host's measured link (an all-reduce's bus bandwidth) scaled by the target's
// bandwidth over the reference's at that world, on a switch.
LinkModel emulated_link(const EmulationSpec& spec, double host_link_bytes_per_s, int world);
// Adds the emulated link to `plan` for a run over `world` ranks, and "interconnect" to its
// limited_by when the host's link cannot carry it at the plan's time scale.
void plan_link(EmulationPlan& plan, const EmulationSpec& spec, double host_link_bytes_per_s,
               int world);

// `graphs`: the run replays captured graphs, so the target's launch overhead is its graphs'.
EmulationPlan plan_emulation(const EmulationSpec& spec, const HostRates& host, DType dtype,
                             double time_scale, bool graphs);

// The report's emulation block: profile, mode, time scale, rates, limits, and the profile's
// figures with their sources.
nlohmann::json plan_json(const EmulationPlan& plan, const EmulationSpec& spec);

}  // namespace capbench
