// Runs a suite: for each run spec, warm-up, then repetitions until both a minimum count and a
// minimum time are met; statistics, metrics, canaries, the per-op breakdown and the roofline
// prediction go into one RunRecord. A run that throws is recorded as failed and the suite goes on.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "backends/forwarding.h"
#include "backends/throttle/throttle_backend.h"
#include "harness/calibrate.h"
#include "harness/report.h"
#include "harness/suite.h"

namespace capbench {

// Times every op, with a synchronisation on each side, while enabled; forwards untouched
// otherwise. The timed repetitions run with it disabled; one extra pass runs with it enabled.
class OpProfiler final : public ForwardingBackend {
 public:
  explicit OpProfiler(Backend& inner) : ForwardingBackend(inner) { intercept_ = false; }
  struct Entry {
    int64_t calls = 0;
    double seconds = 0, flops = 0, bytes = 0;
    double roofline_seconds = 0, target_roofline_seconds = 0;  // on host / target rates
  };
  // Starts the profiled pass; rooflines are summed per call on both sets of rates (a zero rate
  // gives no prediction on that side).
  void start(const Rates& host, const Rates& target);
  void stop() { intercept_ = false; }
  const std::array<Entry, kOpCount>& entries() const { return entries_; }

  // The workload allocates through here: the peak of its buffers, on any backend.
  void* alloc(size_t bytes) override;
  void free(void* ptr) override;
  size_t allocated_peak_bytes() const { return allocated_peak_; }

 protected:
  void around_op(OpId op, const OpCost& cost, const std::function<void()>& call) override;

 private:
  Rates host_, target_;
  std::array<Entry, kOpCount> entries_{};
  std::map<void*, size_t> allocations_;
  size_t allocated_ = 0, allocated_peak_ = 0;
};

// Progress lines on stderr, only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  static Progress for_stderr();
  void begin(size_t index, size_t total, const std::string& label);
  void update(const std::string& status);
  void end(const std::string& outcome);
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  std::string prefix_;
};

struct SuiteContext {
  const Registry* registry = nullptr;
  // Peaks per device kind ("cpu", "cuda"), for MFU, MBU and the roofline; missing when not
  // calibrated.
  std::map<std::string, DevicePeaks> peaks;
  // Each emulating backend's own rates, by backend_rates_key: what the throttle paces against.
  std::map<std::string, Calibration> backend_rates;
};

std::string backend_rates_key(const std::string& backend, int64_t threads);

RunRecord execute_run(const RunSpec& spec, const SuiteContext& context, Progress& progress);

Report run_suite(const Suite& suite, const SuiteContext& context, Progress& progress);

}  // namespace capbench
