#include "backends/throttle/throttle_backend.h"

#include <algorithm>
#include <stdexcept>

namespace capbench {

const char* emulation_mode_name(EmulationMode mode) {
  switch (mode) {
    case EmulationMode::floor:
      return "floor";
    case EmulationMode::dilate:
      return "dilate";
    case EmulationMode::shift:
      return "shift";
  }
  return "?";
}

bool parse_emulation_mode(const std::string& text, EmulationMode* out) {
  if (text == "floor")
    *out = EmulationMode::floor;
  else if (text == "dilate")
    *out = EmulationMode::dilate;
  else if (text == "shift")
    *out = EmulationMode::shift;
  else
    return false;
  return true;
}

ThrottleBackend::ThrottleBackend(Backend& inner, PacingPlan plan)
    : ForwardingBackend(inner), plan_(std::move(plan)), slots_(inner.pace_slots()) {
  if (slots_ <= 0)
    throw std::runtime_error(inner.device_info().backend + " cannot pace ops (no pace slots)");
  if (plan_.target.peak.flops <= 0 || plan_.target.peak.bytes_per_s <= 0 ||
      plan_.host.peak.flops <= 0 || plan_.host.peak.bytes_per_s <= 0 || plan_.launch_s < 0 ||
      plan_.launch_extra_s < 0)
    throw std::invalid_argument("ThrottleBackend: host and target rates must be positive");
}

PaceRule ThrottleBackend::rule_for(OpId op, const OpCost& cost) const {
  const Rates target_rates = plan_.target.for_op(op, cost);
  const double target = roofline(cost, target_rates.flops, target_rates.bytes_per_s).seconds;
  if (plan_.mode == EmulationMode::floor) return PaceRule{target + plan_.launch_s, 1.0, 0.0};
  const Rates host_rates = plan_.host.for_op(op, cost);
  const double host = roofline(cost, host_rates.flops, host_rates.bytes_per_s).seconds;
  if (plan_.mode == EmulationMode::shift)
    return PaceRule{0.0, 1.0, std::max(0.0, target - host) + plan_.launch_extra_s};
  return PaceRule{0.0, host > 0 ? std::max(1.0, target / host) : 1.0, plan_.launch_extra_s};
}

void ThrottleBackend::around_op(OpId op, const OpCost& cost, const std::function<void()>& call) {
  if (!pacing_) {
    call();
    return;
  }
  // No op of a real chip lasts minutes: a rule that asks for it comes from rates no chip has
  // (a profile or calibration out of range), and would stall the run rather than measure it.
  const PaceRule rule = rule_for(op, cost);
  if (rule.floor_s > kMaxPacedOpSeconds || rule.extra_s > kMaxPacedOpSeconds ||
      rule.dilate > kMaxDilation)
    throw std::runtime_error(
        "emulating " + plan_.profile + " would pace one " + op_name(op) + " for too long (" +
        std::to_string(rule.floor_s + rule.extra_s) + " s, or " + std::to_string(rule.dilate) +
        " times its own time): the target's rates (" + std::to_string(plan_.target.peak.flops) +
        " FLOP/s, " + std::to_string(plan_.target.peak.bytes_per_s) + " B/s) are not a chip's");
  const int slot = next_slot_;
  next_slot_ = (next_slot_ + 1) % slots_;
  inner_.stamp(slot);
  call();
  inner_.pace(slot, rule);
}

}  // namespace capbench
