// The per-op profiler: a decorator backend, like the throttle. While started it times every op
// with a synchronisation on each side and sums, per op kind, the calls, time, FLOPs and bytes
// (from the op costs) and the roofline time on two sets of rates; otherwise it forwards ops
// untouched. It also counts every allocation made through it, so a run knows the peak of its
// own buffers on any backend.
#pragma once

#include <array>
#include <map>

#include "backends/forwarding.h"
#include "backends/rates.h"

namespace capbench {

class OpProfiler final : public ForwardingBackend {
 public:
  explicit OpProfiler(Backend& inner) : ForwardingBackend(inner) { intercept_ = false; }
  struct Entry {
    int64_t calls = 0;
    double seconds = 0, flops = 0, bytes = 0;
    double roofline_seconds = 0, target_roofline_seconds = 0;  // on host / target rates
  };
  using Entries = std::array<Entry, kOpCount>;
  // Starts a profiled pass; rooflines are summed per call on both sets of rates (a zero rate
  // gives no prediction on that side), the target's with its per-op launch overhead.
  void start(const Rates& host, const Rates& target, double target_launch_s = 0);
  void stop() { intercept_ = false; }
  const Entries& entries() const { return entries_; }
  // Measured seconds by Backend::Region since start().
  using RegionSeconds = std::array<double, kRegionCount>;
  const RegionSeconds& region_seconds() const { return region_seconds_; }
  void region(Region r) override {
    region_ = r;
    ForwardingBackend::region(r);
  }

  void* alloc(size_t bytes) override;
  void free(void* ptr) override;
  size_t allocated_peak_bytes() const { return allocated_peak_; }

 protected:
  void around_op(OpId op, const OpCost& cost, const std::function<void()>& call) override;

 private:
  Rates host_, target_;
  double target_launch_s_ = 0;
  Entries entries_{};
  Region region_ = Region::other;
  RegionSeconds region_seconds_{};
  std::map<void*, size_t> allocations_;
  size_t allocated_ = 0, allocated_peak_ = 0;
};

}  // namespace capbench
