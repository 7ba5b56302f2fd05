// Host calibration: the peak rates MFU, MBU and the roofline divide by, measured through a
// backend (a large GEMM; a large device-to-device copy, counted as read + write), cached per
// (device, backend, library version, threads) so runs do not pay for it each time.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backends/rates.h"
#include "backends/registry.h"

namespace capbench {

struct Calibration {
  std::string device;   // DeviceInfo::name
  std::string backend;  // which backend measured it
  int64_t threads = 0;
  double gemm_flops = 0;  // best of the repetitions
  int64_t gemm_n = 0;     // n of the n×n×n fp32 GEMM
  // The same for bf16 operands (fp32 accumulation); 0 where the backend runs no bf16 matmul.
  double gemm_bf16_flops = 0;
  int64_t gemm_bf16_n = 0;
  double copy_bytes_per_s = 0;  // best of the repetitions, read + write
  double copy_bytes = 0;        // size of one copy
  // Weight bytes per second a matrix-vector product (one row, 128 MiB of fp32 weights) streams
  // through the backend's own matmul: the rate memory-bound kernels reach, which on a CPU can
  // be far below memcpy's (one core: 7.6 vs 29.7 GB/s here). The throttle paces memory-bound
  // ops against it; MBU stays against copy_bytes_per_s, the hardware's peak.
  double stream_bytes_per_s = 0;
  double dispatch_s = 0;  // median time of a one-element op, synchronised: launch cost
  // CPU: bytes per second the backend's thread count reads from a buffer far larger than the
  // caches (a sum over 512 MiB): the most a decode step's weight stream can reach. 0 on GPUs.
  double read_bytes_per_s = 0;
  // The same read stream by 1, 2, 4, … threads up to the backend's count (the last entry is
  // read_bytes_per_s): how far fewer cores get. Empty on GPUs.
  struct ThreadsRate {
    int64_t threads = 0;
    double bytes_per_s = 0;
  };
  std::vector<ThreadsRate> read_by_threads;
  // The rates of shape classes (backends/rates.h), at fp32 and (where the backend runs it) bf16:
  // one-row products by row length K and rows N, over 128 MiB of distinct matrices
  // (bytes/s), square GEMMs by size (FLOP/s); and an elementwise add over buffers beyond the
  // caches (bytes/s).
  std::vector<ShapeRate> gemv_rates, gemm_rates, gemv_rates_bf16, gemm_rates_bf16;
  double other_bytes_per_s = 0;
  std::string measured_utc;

  // The memory rate utilisation is judged against: the best of the read stream, the copy and
  // the weight stream, each of which moved real bytes at that rate.
  double memory_peak_bytes_per_s() const;
  // What the throttle paces this backend's ops against at `dtype`: the GEMM peak and the
  // weight stream, the shape classes, the elementwise rate and the dispatch cost.
  HostRates host_rates(DType dtype) const;
  std::vector<ShapeRate>& gemv_classes(DType dtype) {
    return dtype == DType::bf16 ? gemv_rates_bf16 : gemv_rates;
  }
};

nlohmann::json to_json(const Calibration& c);

Calibration measure_calibration(Backend& backend,
                                const std::function<void(const std::string&)>& progress = {});

// Weight bytes per second of y[1,N] = x[1,K] · W[N,K]ᵀ, one product per matrix, over distinct
// matrices that fill `total_bytes` (as a decode step reads each weight once, beyond the caches):
// best of 5 passes.
double measure_gemv(Backend& backend, DType dtype, int64_t k, int64_t n, size_t total_bytes);
// Measures the one-row products of these (K, N) shapes not yet among `classes` and adds them:
// a model's own decode shapes, so that each of its matmuls is paced by its exact class.
void add_gemv_classes(Backend& backend, DType dtype,
                      const std::vector<std::pair<int64_t, int64_t>>& kn,
                      std::vector<ShapeRate>& classes);

// $CAPBENCH_CACHE_DIR, else $XDG_CACHE_HOME/capbench, else ~/.cache/capbench.
std::string cache_dir();
std::string calibration_key(const DeviceInfo& info);
std::optional<Calibration> cached_calibration(const std::string& key);
void store_calibration(const std::string& key, const Calibration& c);

// One backend's rates: cached, or measured now and cached. *was_cached (if given) says which.
Calibration backend_calibration(const BackendEntry& entry, const BackendOptions& options,
                                bool force,
                                const std::function<void(const std::string&)>& progress = {},
                                bool* was_cached = nullptr);

// A device's peaks: the best that any of its backends measured (the oracle's loops are not the
// hardware's), so that no backend's run can beat them unless the calibration is stale or was
// disturbed. MFU and MBU divide by these.
struct DevicePeaks {
  std::string device_kind, device;
  double fp32_flops = 0, bf16_flops = 0;  // GEMM; bf16 0 where no backend multiplies bf16
  double bytes_per_s = 0;                 // memory: Calibration::memory_peak_bytes_per_s
  std::string fp32_source, bf16_source, bytes_source;  // which backend and measurement
  std::vector<Calibration> backends;                   // every backend's own calibration
  double flops(DType dtype) const { return dtype == DType::bf16 ? bf16_flops : fp32_flops; }
};
nlohmann::json to_json(const DevicePeaks& p);

// Calibrates (or reads the cache of) every non-oracle backend of a device kind.
DevicePeaks device_peaks(const Registry& registry, const std::string& device_kind,
                         const BackendOptions& options, bool force,
                         const std::function<void(const std::string&)>& progress = {});

// The host's read stream: host threads summing a buffer far larger than the caches, kept between
// measurements (in memory as a CPU backend's weights are), so that one buffer serves every thread
// count of a calibration and one pass can be timed right beside other work: a fresh buffer's
// allocation and first touch take several times as long as reading it, and a shared host's
// memory bandwidth can change within a second.
class HostReadStream {
 public:
  explicit HostReadStream(size_t bytes);
  ~HostReadStream();
  HostReadStream(const HostReadStream&) = delete;
  HostReadStream& operator=(const HostReadStream&) = delete;
  // Bytes per second `threads` threads read, the best of `passes` reads of the whole buffer.
  double measure(int threads, int passes);

 private:
  size_t count_;  // floats
  float* data_;
};

std::string utc_now_iso8601();

}  // namespace capbench
