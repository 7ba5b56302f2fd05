// Which rates a run uses, in one place: the device's peaks, which utilisations and the roofline
// divide by (the best any of its backends measured), and the host's own rates, which the
// throttle paces against (the run's backend's calibration, at the run's thread count). Also
// what a suite must calibrate before its first run.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "backends/comm/communicator.h"
#include "backends/rates.h"
#include "backends/registry.h"
#include "harness/calibrate.h"
#include "harness/suite.h"

namespace capbench {

struct SuiteContext {
  const Registry* registry = nullptr;
  // Peaks per device kind ("cpu", "cuda"); missing when not calibrated.
  std::map<std::string, DevicePeaks> peaks;
  // Each emulating backend's own rates, by backend_rates_key.
  std::map<std::string, Calibration> backend_rates;
  // The time scale every emulated run with time_scale "suite" shares: the largest at which the
  // host meets every emulated chip of the suite in every dimension. 1 when none emulates.
  double suite_time_scale = 1;
  // The ranks of this job (null: one process), and the host's own link between them as an
  // all-reduce's bus bandwidth measured at calibration (0: not measured).
  Communicator* comm = nullptr;
  // Beside it, the communicators for device memory by device kind ("cuda": NCCL), and why a
  // kind has none.
  std::map<std::string, Communicator*> device_comms;
  std::map<std::string, std::string> device_comm_missing;
  double host_link_bytes_per_s = 0;
  double host_link_latency_s = 0;
  std::string host_link_source;
  // Which of the host's accelerators this process drives (BackendOptions::device_ordinal): its
  // local rank.
  int device_ordinal = 0;
  // The options every backend of a run is made with.
  BackendOptions backend_options(int64_t threads) const;
};

std::string backend_rates_key(const std::string& backend, int64_t threads);

// Measures (or reads from the cache) what the suite's runs need: the peaks of every device kind
// they use, and the rates of every backend that emulates. Nothing when !calibrate.
SuiteContext calibrate_for_suite(const Suite& suite, const Registry& registry, int threads,
                                 int device_ordinal, bool calibrate,
                                 const std::function<void(const std::string& what)>& begin,
                                 const std::function<void(const std::string& status)>& update,
                                 const std::function<void(const std::string& outcome)>& end);

struct SourcedRates {
  Rates rates;
  std::string source;  // which calibration, with which backend, when
};

// The device's peaks at the run's dtype: calibrated, else what the backend knows; zeros when
// neither (utilisations and the roofline are then left out).
SourcedRates device_peaks_for(const SuiteContext& context, const RunSpec& spec,
                              const DeviceInfo& info);
struct SourcedHostRates {
  HostRates rates;
  std::string source;
};
// The host's rates for the throttle: the run's backend's calibration at its dtype (zeros when
// missing).
SourcedHostRates host_rates_for(const SuiteContext& context, const RunSpec& spec);
// The time scale of an emulated run: the suite's, the one that fits this run, or the fixed one
// it asks for.
// The largest time scale at which the host's measured link carries the emulated chip's link
// (1 for a run without collectives or with no link measured).
double link_time_scale(const SuiteContext& context, const RunSpec& spec);
double time_scale_for(const SuiteContext& context, const RunSpec& spec, const HostRates& host);

}  // namespace capbench
