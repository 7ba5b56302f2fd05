// The throttle: a forwarding backend that makes every op last as long as it would on a target
// chip. For each op: stamp, run it on the inner backend, pace. The op's FLOPs and bytes come
// from the cost model.
//
//   floor:  the op lasts at least max(flops / F_target, bytes / B_target)
//   dilate: the op lasts t_measured · max(1, roofline_target / roofline_host), each roofline
//           max(flops / F, bytes / B), the host's F and B from calibration
//   shift:  the op lasts t_measured + max(0, roofline_target - roofline_host): only the
//           roofline part of the op changes; what it spends beyond (dispatch, fork/join, small-op
//           inefficiency) carries over as it is. On a CPU that part does not shrink with more
//           cores, and dilate multiplies it (benchmarks/throttle_fidelity, README).
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
  Rates host;    // calibrated
  Rates target;  // the rates ops are paced to (never above the host's)
};

// Bounds on one paced op: beyond them the op throws instead of waiting.
constexpr double kMaxPacedOpSeconds = 600;
constexpr double kMaxDilation = 1e5;

class ThrottleBackend final : public ForwardingBackend {
 public:
  // Throws std::runtime_error when the inner backend cannot pace (no pace slots).
  ThrottleBackend(Backend& inner, PacingPlan plan);
  const PacingPlan& plan() const { return plan_; }
  // The pacing rule for one op of this cost.
  PaceRule rule_for(const OpCost& cost) const;

 protected:
  void around_op(OpId op, const OpCost& cost, const std::function<void()>& call) override;

 private:
  PacingPlan plan_;
  int slots_ = 0, next_slot_ = 0;
};

}  // namespace capbench
