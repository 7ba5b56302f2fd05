#include "harness/rates.h"

#include <fmt/format.h>
#include <algorithm>
#include <set>

namespace capbench {

std::string backend_rates_key(const std::string& backend, int64_t threads) {
  return backend + "|threads=" + std::to_string(threads);
}

BackendOptions SuiteContext::backend_options(int64_t threads) const {
  BackendOptions o;
  o.threads = static_cast<int>(threads);
  o.device_ordinal = device_ordinal;
  return o;
}

SuiteContext calibrate_for_suite(const Suite& suite, const Registry& registry, int threads,
                                 int device_ordinal, bool calibrate,
                                 const std::function<void(const std::string&)>& begin,
                                 const std::function<void(const std::string&)>& update,
                                 const std::function<void(const std::string&)>& end) {
  SuiteContext context;
  context.registry = &registry;
  context.device_ordinal = device_ordinal;
  if (!calibrate) return context;
  std::set<std::string> kinds;
  for (const RunSpec& s : suite.runs)
    if (const BackendEntry* e = registry.find(s.backend)) kinds.insert(e->device_kind);
  for (const std::string& kind : kinds) {
    begin("calibrating " + kind);
    const DevicePeaks& p = context.peaks[kind] =
        device_peaks(registry, kind, context.backend_options(threads), false, update);
    end(fmt::format("GEMM {:.1f} GFLOP/s, memory {:.1f} GB/s", p.fp32_flops / 1e9,
                    p.bytes_per_s / 1e9));
  }
  // Emulated runs pace against their own backend's rates, at the thread count the run uses.
  for (const RunSpec& s : suite.runs)
    if (s.emulation && registry.find(s.backend)) {
      const std::string key = backend_rates_key(s.backend, s.threads);
      if (context.backend_rates.count(key)) continue;
      begin("calibrating " + s.backend);
      context.backend_rates[key] = backend_calibration(
          *registry.find(s.backend), context.backend_options(s.threads), false, update);
      end("ok");
    }
  for (const RunSpec& s : suite.runs)
    if (s.emulation && s.emulation->time_scale.kind == TimeScale::Kind::suite)
      if (auto it = context.backend_rates.find(backend_rates_key(s.backend, s.threads));
          it != context.backend_rates.end()) {
        const Rates host = it->second.host_rates(s.dtype).peak;
        context.suite_time_scale =
            std::min(context.suite_time_scale,
                     fitting_time_scale(host, emulated_rates(*s.emulation, host, s.dtype)));
      }
  return context;
}

double link_time_scale(const SuiteContext& context, const RunSpec& spec) {
  if (!spec.emulation || !context.comm || context.comm->world() <= 1 ||
      spec.parallel.layout == "single" || !(context.host_link_bytes_per_s > 0))
    return 1;
  const int world = context.comm->world();
  const double target =
      emulated_link(*spec.emulation, context.host_link_bytes_per_s, world).bandwidth(world);
  return target > 0 ? std::min(1.0, context.host_link_bytes_per_s / target) : 1.0;
}

double time_scale_for(const SuiteContext& context, const RunSpec& spec, const HostRates& host) {
  const TimeScale& t = spec.emulation->time_scale;
  switch (t.kind) {
    case TimeScale::Kind::suite:
      return context.suite_time_scale;
    case TimeScale::Kind::fit: {
      double s =
          fitting_time_scale(host.peak, emulated_rates(*spec.emulation, host.peak, spec.dtype));
      return std::min(s, link_time_scale(context, spec));
    }
    case TimeScale::Kind::fixed:
      return t.value;
  }
  return 1;
}

SourcedRates device_peaks_for(const SuiteContext& context, const RunSpec& spec,
                              const DeviceInfo& info) {
  if (auto it = context.peaks.find(info.device_kind); it != context.peaks.end()) {
    const DevicePeaks& device = it->second;
    return {{device.flops(spec.dtype), device.bytes_per_s},
            fmt::format("best of {}'s backends: {} GEMM {}; memory {}", device.device,
                        dtype_name(spec.dtype),
                        spec.dtype == DType::bf16 ? device.bf16_source : device.fp32_source,
                        device.bytes_source)};
  }
  if (info.peak_flops > 0) return {{info.peak_flops, info.peak_bytes_per_s}, "backend device_info"};
  return {};
}

SourcedHostRates host_rates_for(const SuiteContext& context, const RunSpec& spec) {
  const auto own = context.backend_rates.find(backend_rates_key(spec.backend, spec.threads));
  if (own == context.backend_rates.end()) return {};
  const Calibration& c = own->second;
  return {c.host_rates(spec.dtype),
          fmt::format("calibrated with {} ({} threads, {})", c.backend, c.threads, c.measured_utc)};
}

}  // namespace capbench
