#include "harness/calibrate.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <thread>
#include <tuple>
#include <vector>

#include "backends/throttle/device_profile.h"
#include "harness/json_access.h"
#include "harness/report.h"

namespace capbench {

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

double Calibration::memory_peak_bytes_per_s() const {
  return std::max({read_bytes_per_s, copy_bytes_per_s, stream_bytes_per_s});
}

HostRates Calibration::host_rates(DType dtype) const {
  HostRates h;
  const bool bf16 = dtype == DType::bf16;
  h.peak = {bf16 ? gemm_bf16_flops : gemm_flops, stream_bytes_per_s};
  h.gemv = bf16 ? gemv_rates_bf16 : gemv_rates;
  h.gemm = bf16 ? gemm_rates_bf16 : gemm_rates;
  h.other_bytes_per_s = other_bytes_per_s;
  h.dispatch_s = dispatch_s;
  return h;
}

namespace {

nlohmann::json shape_json(const std::vector<ShapeRate>& rates) {
  nlohmann::json out = nlohmann::json::array();
  for (const ShapeRate& r : rates)
    out.push_back(r.rows > 0 ? nlohmann::json{r.size, r.rows, r.rate}
                             : nlohmann::json{r.size, r.rate});
  return out;
}

}  // namespace

static nlohmann::json read_by_threads_json(const std::vector<Calibration::ThreadsRate>& rates) {
  nlohmann::json out = nlohmann::json::array();
  for (const Calibration::ThreadsRate& r : rates) out.push_back({r.threads, r.bytes_per_s});
  return out;
}

nlohmann::json to_json(const Calibration& c) {
  return {{"device", c.device},
          {"backend", c.backend},
          {"threads", c.threads},
          {"gemm_flops", c.gemm_flops},
          {"gemm_n", c.gemm_n},
          {"gemm_bf16_flops", c.gemm_bf16_flops},
          {"gemm_bf16_n", c.gemm_bf16_n},
          {"copy_bytes_per_s", c.copy_bytes_per_s},
          {"copy_bytes", c.copy_bytes},
          {"stream_bytes_per_s", c.stream_bytes_per_s},
          {"read_bytes_per_s", c.read_bytes_per_s},
          {"read_by_threads", read_by_threads_json(c.read_by_threads)},
          {"gemv_rates", shape_json(c.gemv_rates)},
          {"gemm_rates", shape_json(c.gemm_rates)},
          {"gemv_rates_bf16", shape_json(c.gemv_rates_bf16)},
          {"gemm_rates_bf16", shape_json(c.gemm_rates_bf16)},
          {"other_bytes_per_s", c.other_bytes_per_s},
          {"dispatch_s", c.dispatch_s},
          {"measured_utc", c.measured_utc}};
}

nlohmann::json to_json(const DevicePeaks& p) {
  nlohmann::json backends = nlohmann::json::array();
  for (const Calibration& c : p.backends) backends.push_back(to_json(c));
  // The first three keys keep the names of a single backend's calibration, so that readers of
  // either find the peaks where they look.
  return {{"device", p.device},
          {"gemm_flops", p.fp32_flops},
          {"gemm_bf16_flops", p.bf16_flops},
          {"memory_bytes_per_s", p.bytes_per_s},
          {"sources",
           {{"gemm_flops", p.fp32_source},
            {"gemm_bf16_flops", p.bf16_source},
            {"memory_bytes_per_s", p.bytes_source}}},
          {"backends", backends}};
}

namespace {

// Summed with many independent accumulators so that the loop is bound by memory, not by the
// latency of one add chain; compiled for the widest vectors the CPU has.
__attribute__((target_clones("avx512f", "avx2", "default"))) float sum_floats(const float* p,
                                                                              size_t n) {
  float acc[32] = {};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 32; ++k) acc[k] += p[i + k];
  float s = 0;
  for (; i < n; ++i) s += p[i];
  for (float a : acc) s += a;
  return s;
}

}  // namespace

HostReadStream::HostReadStream(size_t bytes) : count_(bytes / sizeof(float)) {
  // In memory as a CPU backend's weights are (host_alloc: huge pages where offered).
  data_ = static_cast<float*>(host_alloc(count_ * sizeof(float)));
  std::fill_n(data_, count_, 1.0f);
}

HostReadStream::~HostReadStream() {
  host_free(data_);
}

double HostReadStream::measure(int threads, int passes) {
  threads = std::max(threads, 1);
  std::vector<float> sums(static_cast<size_t>(threads));
  double best = 1e30;
  for (int pass = 0; pass < std::max(passes, 1); ++pass) {
    const double t0 = host_seconds_now();
    std::vector<std::thread> team;
    for (int t = 0; t < threads; ++t)
      team.emplace_back([&, t] {
        const size_t begin = count_ * static_cast<size_t>(t) / static_cast<size_t>(threads);
        const size_t end = count_ * static_cast<size_t>(t + 1) / static_cast<size_t>(threads);
        sums[static_cast<size_t>(t)] = sum_floats(data_ + begin, end - begin);
      });
    for (std::thread& worker : team) worker.join();
    best = std::min(best, host_seconds_now() - t0);
    // Every float is 1: a wrong sum means the loop did not read what it was timed on.
    double total = 0;
    for (float s : sums) total += s;
    if (std::fabs(total - static_cast<double>(count_)) > 1e-3 * static_cast<double>(count_))
      throw std::runtime_error("read-stream calibration summed the wrong value");
  }
  return static_cast<double>(count_ * sizeof(float)) / best;
}

// GEMM: grow n until one call takes long enough to time well, then keep the best of several.
// Returns n and FLOP/s.
static std::pair<int64_t, double> measure_gemm(
    Backend& be, DType dtype, int64_t max_n,
    const std::function<void(const std::string&)>& progress) {
  for (int64_t n = 256;; n *= 2) {
    const size_t bytes = static_cast<size_t>(n * n) * dtype_size(dtype);
    DeviceBuffer a(be, bytes), b(be, bytes), cbuf(be, bytes);
    const Tensor ta = a.view(dtype, {n, n}), tb = b.view(dtype, {n, n}),
                 tc = cbuf.view(dtype, {n, n});
    be.fill(ta, 0.5f);
    be.fill(tb, 0.25f);
    auto gemm = [&] { be.matmul(tc, ta, tb, MatmulArgs{}); };
    const double one = time_synchronized(be, gemm);
    if (one <= 0.05 && n < max_n) continue;
    if (progress) progress(fmt::format("calibrate: GEMM {}^3 {}", n, dtype_name(dtype)));
    double best = one;
    const double budget = std::max(0.5, 5 * one);
    double spent = 0;
    for (int rep = 0; rep < 20 && spent < budget; ++rep) {
      const double t = time_synchronized(be, gemm);
      best = std::min(best, t);
      spent += t;
    }
    return {n, 2.0 * static_cast<double>(n) * n * n / best};
  }
}

double measure_gemv(Backend& be, DType dtype, int64_t k, int64_t n_out, size_t total_bytes) {
  const size_t elt = dtype_size(dtype);
  const size_t one = static_cast<size_t>(n_out * k) * elt;
  const size_t count = std::max<size_t>(1, total_bytes / one);
  DeviceBuffer w(be, one * count), x(be, static_cast<size_t>(k) * elt),
      y(be, static_cast<size_t>(n_out) * elt);
  be.fill(w.view(dtype, {static_cast<int64_t>(one * count / elt)}), 0.01f);
  const Tensor tx = x.view(dtype, {1, k}), ty = y.view(dtype, {1, n_out});
  be.fill(tx, 1.0f);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep)
    best = std::min(best, time_synchronized(be, [&] {
                      for (size_t i = 0; i < count; ++i)
                        be.matmul(ty, tx, w.view(dtype, {n_out, k}, i * one),
                                  MatmulArgs{false, true, 1.0f, 0.0f});
                    }));
  return static_cast<double>(count * (one + tx.bytes() + ty.bytes())) / best;
}

void add_gemv_classes(Backend& be, DType dtype, const std::vector<std::pair<int64_t, int64_t>>& kn,
                      std::vector<ShapeRate>& classes) {
  for (const auto& [k, n] : kn) {
    const bool known = std::any_of(classes.begin(), classes.end(),
                                   [&](const ShapeRate& c) { return c.size == k && c.rows == n; });
    if (!known) classes.push_back({k, measure_gemv(be, dtype, k, n, size_t{128} << 20), n});
  }
}

namespace {

// FLOP/s of an n×n×n GEMM: best of as many repetitions as a quarter of a second allows.
double measure_square_gemm(Backend& be, DType dtype, int64_t n) {
  const size_t bytes = static_cast<size_t>(n * n) * dtype_size(dtype);
  DeviceBuffer a(be, bytes), b(be, bytes), cbuf(be, bytes);
  const Tensor ta = a.view(dtype, {n, n}), tb = b.view(dtype, {n, n}),
               tc = cbuf.view(dtype, {n, n});
  be.fill(ta, 0.5f);
  be.fill(tb, 0.25f);
  double best = 1e30, spent = 0;
  for (int rep = 0; rep < 200 && (rep < 3 || spent < 0.25); ++rep) {
    const double t = time_synchronized(be, [&] { be.matmul(tc, ta, tb, MatmulArgs{}); });
    best = std::min(best, t);
    spent += t;
  }
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / best;
}

// Bytes per second of out = a + b over `bytes` per buffer (fp32), counting all three.
double measure_elementwise(Backend& be, size_t bytes) {
  const int64_t n = static_cast<int64_t>(bytes / 4);
  DeviceBuffer a(be, bytes), b(be, bytes), out(be, bytes);
  const Tensor ta = a.view(DType::f32, {n}), tb = b.view(DType::f32, {n}),
               tout = out.view(DType::f32, {n});
  be.fill(ta, 1.0f);
  be.fill(tb, 2.0f);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep)
    best = std::min(best, time_synchronized(be, [&] { be.add(tout, ta, tb); }));
  return 3.0 * static_cast<double>(bytes) / best;
}

}  // namespace

Calibration measure_calibration(Backend& be,
                                const std::function<void(const std::string&)>& progress) {
  const DeviceInfo info = be.device_info();
  const bool gpu = info.device_kind != "cpu";
  Calibration c;
  c.device = info.name;
  c.backend = info.backend;
  c.threads = info.threads;
  c.measured_utc = utc_now_iso8601();

  const int64_t max_n = gpu ? 8192 : 2048;
  std::tie(c.gemm_n, c.gemm_flops) = measure_gemm(be, DType::f32, max_n, progress);
  if (be.supports(OpId::matmul, DType::bf16).ok)
    std::tie(c.gemm_bf16_n, c.gemm_bf16_flops) = measure_gemm(be, DType::bf16, max_n, progress);

  // Copy: larger than any last-level cache.
  const size_t bytes = gpu ? (size_t{1} << 30) : (size_t{256} << 20);
  if (progress) progress(fmt::format("calibrate: copy {} MiB", bytes >> 20));
  DeviceBuffer src(be, bytes), dst(be, bytes);
  be.fill(src.view(DType::f32, {static_cast<int64_t>(bytes / 4)}), 1.0f);
  be.fill(dst.view(DType::f32, {static_cast<int64_t>(bytes / 4)}), 0.0f);
  double best = 1e30;
  for (int rep = 0; rep < 8; ++rep)
    best = std::min(best, time_synchronized(be, [&] { be.copy(dst.data(), src.data(), bytes); }));
  c.copy_bytes = static_cast<double>(bytes);
  c.copy_bytes_per_s = 2.0 * static_cast<double>(bytes) / best;

  // Streaming: y[1,N] = x[1,K] · W[N,K]ᵀ over 128 MiB of weights, as a batch-1 decode step's
  // matmuls. The BLAS takes different paths by shape (here K = 4096 streamed at 8.7 GB/s on two
  // cores where K = 512 reached ~12), so the peak is the best of a narrow and a wide K, as the
  // GEMM peak is the best of its repetitions.
  if (progress) progress("calibrate: weight streaming (GEMV)");
  for (const int64_t k : {int64_t{512}, int64_t{4096}})
    c.stream_bytes_per_s =
        std::max(c.stream_bytes_per_s,
                 measure_gemv(be, DType::f32, k, (int64_t{32} << 20) / k, size_t{128} << 20));

  // Shape classes: what the throttle paces each op against (its nearest class).
  for (const DType dtype : {DType::f32, DType::bf16}) {
    if (!be.supports(OpId::matmul, dtype).ok) continue;
    if (progress) progress(fmt::format("calibrate: shape classes, {}", dtype_name(dtype)));
    std::vector<ShapeRate>& gemv = dtype == DType::f32 ? c.gemv_rates : c.gemv_rates_bf16;
    std::vector<ShapeRate>& gemm = dtype == DType::f32 ? c.gemm_rates : c.gemm_rates_bf16;
    // Row lengths an octave apart up to 4096 (the d_model and d_ff of most models lie among
    // them) and one long row, by 256 to 16384 rows (a projection to a head), each over 128 MiB
    // of distinct matrices as a decode step reads them; square GEMMs likewise, up to the peak.
    std::vector<std::pair<int64_t, int64_t>> grid;
    for (const int64_t k : {256, 512, 1024, 2048, 4096, 16384})
      for (const int64_t n : {256, 1024, 4096, 16384}) grid.push_back({k, n});
    add_gemv_classes(be, dtype, grid, gemv);
    for (const int64_t n : {128, 256, 512, 1024})
      if (n < (dtype == DType::f32 ? c.gemm_n : c.gemm_bf16_n))
        gemm.push_back({n, measure_square_gemm(be, dtype, n)});
    gemm.push_back({dtype == DType::f32 ? c.gemm_n : c.gemm_bf16_n,
                    dtype == DType::f32 ? c.gemm_flops : c.gemm_bf16_flops});
  }
  if (progress) progress("calibrate: elementwise stream");
  c.other_bytes_per_s = measure_elementwise(be, size_t{64} << 20);

  // Read stream: on a CPU the backend's memory is the host's, read by its thread count.
  if (!gpu) {
    if (progress) progress("calibrate: read stream");
    const int64_t threads = std::max<int64_t>(info.threads, 1);
    HostReadStream stream(size_t{512} << 20);
    for (int64_t t = 1; t < threads; t *= 2)
      c.read_by_threads.push_back({t, stream.measure(static_cast<int>(t), 6)});
    c.read_bytes_per_s = stream.measure(static_cast<int>(threads), 6);
    c.read_by_threads.push_back({threads, c.read_bytes_per_s});
  }

  // Dispatch: a one-element add, synchronised each time; the median of many.
  if (progress) progress("calibrate: dispatch overhead");
  DeviceBuffer tiny(be, 3 * sizeof(float));
  const Tensor a = tiny.view(DType::f32, {1}), b = tiny.view(DType::f32, {1}, 4),
               out = tiny.view(DType::f32, {1}, 8);
  be.fill(tiny.view(DType::f32, {3}), 1.0f);
  std::vector<double> times;
  for (int rep = 0; rep < 201; ++rep)
    times.push_back(time_synchronized(be, [&] { be.add(out, a, b); }));
  std::nth_element(times.begin(), times.begin() + 100, times.end());
  c.dispatch_s = times[100];
  return c;
}

std::string cache_dir() {
  if (const char* env = std::getenv("CAPBENCH_CACHE_DIR"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/capbench";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/capbench";
  return ".cache/capbench";
}

// The library version is part of the key: a backend whose library (or own kernels, which its
// version string names) changed streams and multiplies at other rates.
std::string calibration_key(const DeviceInfo& info) {
  return fmt::format("{}|{}|{}|threads={}", info.name, info.backend, info.library_version,
                     info.threads);
}

static std::string calibration_file() {
  return cache_dir() + "/calibration.json";
}

std::optional<Calibration> cached_calibration(const std::string& key) {
  const std::string file = calibration_file();
  if (!std::filesystem::exists(file)) return std::nullopt;
  try {
    const json doc = load_json_file(file);
    if (!doc.contains(key)) return std::nullopt;
    const JsonView v(doc.at(key), file, "$[\"" + key + "\"]");
    // Figures outside a chip's plausible range (a damaged or hand-edited cache) are measured
    // again: pacing against 1e-300 FLOP/s would stall an emulated op for ever.
    const double* flops = kFlopsRange;
    const double* bandwidth = kBandwidthRange;
    Calibration c;
    c.device = v.at("device").as_string();
    c.backend = v.at("backend").as_string();
    c.threads = v.at("threads").as_int_in(0, 1 << 20);
    c.gemm_flops = v.at("gemm_flops").as_number_in(1e6, flops[1]);
    c.gemm_n = v.at("gemm_n").as_int_in(1, 1 << 20);
    c.gemm_bf16_n = v.at("gemm_bf16_n").as_int_in(0, 1 << 20);
    c.gemm_bf16_flops = c.gemm_bf16_n == 0 ? v.at("gemm_bf16_flops").as_number_in(0, 0)
                                           : v.at("gemm_bf16_flops").as_number_in(1e6, flops[1]);
    c.copy_bytes_per_s = v.at("copy_bytes_per_s").as_number_in(1e6, bandwidth[1]);
    c.copy_bytes = v.at("copy_bytes").as_number_in(1, 1e15);
    c.stream_bytes_per_s = v.at("stream_bytes_per_s").as_number_in(1e6, bandwidth[1]);
    c.dispatch_s = v.at("dispatch_s").as_number_in(1e-10, 1.0);  // older caches: measured again
    c.read_bytes_per_s = v.at("read_bytes_per_s").as_number_in(0, bandwidth[1]);
    if (v.has("read_by_threads"))  // [threads, bytes/s] pairs; older caches lack them
      for (const JsonView& item : v.at("read_by_threads").items()) {
        const std::vector<JsonView> f = item.items();
        if (f.size() != 2u) item.fail("[threads, bytes/s]");
        c.read_by_threads.push_back(
            {f[0].as_int_in(1, 1 << 20), f[1].as_number_in(1e6, bandwidth[1])});
      }
    // GEMV classes are [K, N, rate] (a cache from before rows were classes fails here and is
    // measured again); GEMM classes [size, rate].
    auto shapes = [&](const char* name, double lo, double hi, bool by_matrix) {
      std::vector<ShapeRate> out;
      for (const JsonView& item : v.at(name).items()) {
        const std::vector<JsonView> f = item.items();
        if (f.size() != (by_matrix ? 3u : 2u))
          item.fail(by_matrix ? "[K, N, rate]" : "[size, rate]");
        ShapeRate r{f[0].as_int_in(1, int64_t{1} << 40), f.back().as_number_in(lo, hi)};
        if (by_matrix) r.rows = f[1].as_int_in(1, int64_t{1} << 40);
        out.push_back(r);
      }
      return out;
    };
    c.gemv_rates = shapes("gemv_rates", 1e6, bandwidth[1], true);
    c.gemm_rates = shapes("gemm_rates", 1e6, flops[1], false);
    c.gemv_rates_bf16 = shapes("gemv_rates_bf16", 1e6, bandwidth[1], true);
    c.gemm_rates_bf16 = shapes("gemm_rates_bf16", 1e6, flops[1], false);
    c.other_bytes_per_s = v.at("other_bytes_per_s").as_number_in(1e6, bandwidth[1]);
    // A cache from before shape classes (or without them for a dtype it runs) is measured
    // again.
    if (c.gemv_rates.empty() || (c.gemm_bf16_n > 0 && c.gemv_rates_bf16.empty()))
      return std::nullopt;
    c.measured_utc = v.get_string("measured_utc", "");
    return c;
  } catch (const ConfigError&) {
    return std::nullopt;  // a damaged cache is measured again, not fatal
  }
}

void store_calibration(const std::string& key, const Calibration& c) {
  const std::string file = calibration_file();
  std::filesystem::create_directories(cache_dir());
  json doc = json::object();
  if (std::filesystem::exists(file)) {
    try {
      doc = load_json_file(file);
      if (!doc.is_object()) doc = json::object();
    } catch (const ConfigError&) {
      doc = json::object();
    }
  }
  doc[key] = to_json(c);
  write_text_atomic(doc.dump(2) + "\n", file);
}

Calibration backend_calibration(const BackendEntry& entry, const BackendOptions& options,
                                bool force, const std::function<void(const std::string&)>& progress,
                                bool* was_cached) {
  auto backend = entry.make(options);
  const std::string key = calibration_key(backend->device_info());
  if (!force)
    if (auto hit = cached_calibration(key)) {
      // A cache written before this backend ran bf16, or before CPUs had a read-stream
      // figure, lacks it: measured again.
      const bool lacks_bf16 =
          hit->gemm_bf16_flops <= 0 && backend->supports(OpId::matmul, DType::bf16).ok;
      const bool lacks_read =
          hit->read_bytes_per_s <= 0 && backend->device_info().device_kind == "cpu";
      if (!lacks_bf16 && !lacks_read) {
        if (was_cached) *was_cached = true;
        return *hit;
      }
    }
  if (was_cached) *was_cached = false;
  Calibration c = measure_calibration(*backend, progress);
  store_calibration(key, c);
  return c;
}

DevicePeaks device_peaks(const Registry& registry, const std::string& device_kind,
                         const BackendOptions& options, bool force,
                         const std::function<void(const std::string&)>& progress) {
  DevicePeaks peaks;
  peaks.device_kind = device_kind;
  for (const BackendEntry& e : registry.entries()) {
    if (e.device_kind != device_kind || e.oracle) continue;
    const Calibration c = backend_calibration(e, options, force, progress);
    const std::string when = fmt::format("{} threads, {}", c.threads, c.measured_utc);
    peaks.device = c.device;
    if (c.gemm_flops > peaks.fp32_flops) {
      peaks.fp32_flops = c.gemm_flops;
      peaks.fp32_source = fmt::format("{} GEMM {}^3 fp32 ({})", c.backend, c.gemm_n, when);
    }
    if (c.gemm_bf16_flops > peaks.bf16_flops) {
      peaks.bf16_flops = c.gemm_bf16_flops;
      peaks.bf16_source = fmt::format("{} GEMM {}^3 bf16 ({})", c.backend, c.gemm_bf16_n, when);
    }
    if (c.memory_peak_bytes_per_s() > peaks.bytes_per_s) {
      peaks.bytes_per_s = c.memory_peak_bytes_per_s();
      const char* what = c.read_bytes_per_s >= std::max(c.copy_bytes_per_s, c.stream_bytes_per_s)
                             ? "read stream"
                         : c.stream_bytes_per_s >= c.copy_bytes_per_s ? "weight stream (GEMV)"
                                                                      : "copy (read + write)";
      peaks.bytes_source = fmt::format("{} {} ({})", c.backend, what, when);
    }
    peaks.backends.push_back(c);
  }
  if (peaks.backends.empty()) throw std::runtime_error("no backend for device kind " + device_kind);
  return peaks;
}

}  // namespace capbench
