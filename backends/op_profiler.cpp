#include "backends/op_profiler.h"

#include <algorithm>

namespace capbench {

void OpProfiler::start(const Rates& host, const Rates& target) {
  entries_ = {};
  host_ = host;
  target_ = target;
  intercept_ = true;
}

void OpProfiler::around_op(OpId op, const OpCost& cost, const std::function<void()>& call) {
  inner_.synchronize();
  const double t0 = host_seconds_now();
  call();
  inner_.synchronize();
  Entry& e = entries_[static_cast<size_t>(op)];
  e.calls += 1;
  e.seconds += host_seconds_now() - t0;
  e.flops += cost.flops;
  e.bytes += cost.bytes;
  e.roofline_seconds += roofline(cost, host_.flops, host_.bytes_per_s).seconds;
  e.target_roofline_seconds += roofline(cost, target_.flops, target_.bytes_per_s).seconds;
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
