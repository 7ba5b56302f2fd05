#include "backends/op_profiler.h"

#include <algorithm>

namespace capbench {

void OpProfiler::start(const Rates& host, const Rates& target, double target_launch_s) {
  entries_ = {};
  region_seconds_ = {};
  host_ = host;
  target_ = target;
  target_launch_s_ = target_launch_s;
  intercept_ = true;
}

void OpProfiler::around_op(OpId op, const OpCost& cost, const std::function<void()>& call) {
  inner_.synchronize();
  const double t0 = host_seconds_now();
  call();
  inner_.synchronize();
  Entry& e = entries_[static_cast<size_t>(op)];
  const double seconds = host_seconds_now() - t0;
  e.calls += 1;
  e.seconds += seconds;
  region_seconds_[static_cast<size_t>(region_)] += seconds;
  e.flops += cost.flops;
  e.bytes += cost.bytes;
  e.roofline_seconds += roofline(cost, host_.flops, host_.bytes_per_s).seconds;
  if (target_.flops > 0)
    e.target_roofline_seconds +=
        roofline(cost, target_.flops, target_.bytes_per_s).seconds + target_launch_s_;
}

void* OpProfiler::alloc(size_t bytes) {
  void* p = inner_.alloc(bytes);
  allocations_[p] = bytes;
  allocated_ += bytes;
  allocated_peak_ = std::max(allocated_peak_, allocated_);
  return p;
}

void OpProfiler::free(void* ptr) {
  if (auto it = allocations_.find(ptr); it != allocations_.end()) {
    allocated_ -= it->second;
    allocations_.erase(it);
  }
  inner_.free(ptr);
}

}  // namespace capbench
