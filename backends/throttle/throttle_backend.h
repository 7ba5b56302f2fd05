// The throttle: a forwarding backend that makes every op last as long as it would on a target
// chip. For each op: stamp, run it on the inner backend, pace. The op's FLOPs and bytes come
// from the op costs; the host's rates for that op from its shape class (backends/rates.h); the
// target's rates (its shape class's where the plan has them), and its per-op launch overhead L,
// from the plan (already multiplied by the time
// scale, and L divided by it, when the target is played in slow motion). With roofline_x =
// max(flops / F_x, bytes / B_x), and L' what L adds to the host's own per-op cost:
//
//   floor:  the op lasts at least roofline_target + L
//   dilate: it lasts t_measured · max(1, roofline_target / roofline_host) + L'
//   shift:  it lasts t_measured + max(0, roofline_target − roofline_host) + L': only
//           the roofline part of the op changes; what it spends beyond (dispatch, fork/join,
//           small-op inefficiency) carries over as it is. On a CPU that part does not shrink
//           with more cores, and dilate multiplies it (docs/emulation.md).
#pragma once

#include <string>
#include <vector>

#include "backends/forwarding.h"
#include "backends/rates.h"

namespace capbench {

enum class EmulationMode { floor, dilate, shift };
const char* emulation_mode_name(EmulationMode mode);
bool parse_emulation_mode(const std::string& text, EmulationMode* out);

// What the throttle paces to: the host's rates and the target's, chosen by the harness's
// emulation planning (harness/emulation.h), and the rule.
struct PacingPlan {
  std::string profile;  // the emulated chip, for messages
  EmulationMode mode = EmulationMode::dilate;
  HostRates host;    // calibrated, per shape class
  HostRates target;  // the rates ops are paced to: a profile's peaks, or per shape class where
                     // the target is a machine measured like the host (the physical check)
  // The target's per-op launch overhead on the host's timeline: all of it (floor, where an op
  // lasts its paced time whatever it measured), and what it adds to the host's own per-op cost
  // (dilate, shift, where the measured time already holds that).
  double launch_s = 0, launch_extra_s = 0;
};

// Bounds on one paced op: beyond them the op throws instead of waiting.
constexpr double kMaxPacedOpSeconds = 600;
constexpr double kMaxDilation = 1e5;

class ThrottleBackend final : public ForwardingBackend {
 public:
  // Throws std::runtime_error when the inner backend cannot pace (no pace slots).
  ThrottleBackend(Backend& inner, PacingPlan plan);
  const PacingPlan& plan() const { return plan_; }
  // The pacing rule for one op of this kind and cost.
  PaceRule rule_for(OpId op, const OpCost& cost) const;
  void set_pacing(bool on) override {
    pacing_ = on;
    ForwardingBackend::set_pacing(on);
  }

 protected:
  void around_op(OpId op, const OpCost& cost, const std::function<void()>& call) override;

 private:
  PacingPlan plan_;
  int slots_ = 0, next_slot_ = 0;
  bool pacing_ = true;
};

}  // namespace capbench
