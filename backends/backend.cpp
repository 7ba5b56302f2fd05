#include "backends/backend.h"

#include "backends/bf16.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace capbench {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "fp32";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "fp16";
    case DType::i32:
      return "i32";
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return 4;
    case DType::bf16:
      return 2;
    case DType::f16:
      return 2;
    case DType::i32:
      return 4;
  }
  return 0;
}

bool parse_dtype(const std::string& text, DType* out) {
  if (text == "fp32" || text == "f32")
    *out = DType::f32;
  else if (text == "bf16")
    *out = DType::bf16;
  else if (text == "fp16" || text == "f16")
    *out = DType::f16;
  else if (text == "i32")
    *out = DType::i32;
  else
    return false;
  return true;
}

const char* op_name(OpId op) {
  static const char* const names[kOpCount] = {"embedding_fwd",
                                              "embedding_bwd",
                                              "rmsnorm_fwd",
                                              "rmsnorm_bwd",
                                              "matmul",
                                              "rope_fwd",
                                              "rope_bwd",
                                              "attention_fwd",
                                              "attention_bwd",
                                              "kv_append",
                                              "attention_decode",
                                              "swiglu_fwd",
                                              "swiglu_bwd",
                                              "add",
                                              "cross_entropy_fwd_bwd",
                                              "adamw",
                                              "convert"};
  int i = static_cast<int>(op);
  return i >= 0 && i < kOpCount ? names[i] : "?";
}

Tensor::Tensor(void* data_, DType dtype_, std::initializer_list<int64_t> dims)
    : data(data_), dtype(dtype_), rank(static_cast<int>(dims.size())) {
  if (dims.size() > kMaxRank) throw std::invalid_argument("Tensor: rank above 4");
  size_t i = 0;
  for (int64_t d : dims) shape[i++] = d;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= shape[static_cast<size_t>(i)];
  return n;
}

Tensor Tensor::reshaped(std::initializer_list<int64_t> dims) const {
  Tensor t(data, dtype, dims);
  if (t.numel() != numel()) throw std::invalid_argument("Tensor::reshaped: element count differs");
  return t;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) {
    if (i) s += ",";
    s += std::to_string(shape[static_cast<size_t>(i)]);
  }
  return s + "]";
}

DeviceBuffer::DeviceBuffer(Backend& backend, size_t bytes)
    : backend_(&backend), data_(backend.alloc(bytes)), bytes_(bytes) {}

DeviceBuffer::~DeviceBuffer() {
  if (backend_ && data_) backend_->free(data_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : backend_(other.backend_), data_(other.data_), bytes_(other.bytes_) {
  other.backend_ = nullptr;
  other.data_ = nullptr;
  other.bytes_ = 0;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (backend_ && data_) backend_->free(data_);
    backend_ = other.backend_;
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.backend_ = nullptr;
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

Tensor DeviceBuffer::view(DType dtype, std::initializer_list<int64_t> dims,
                          size_t byte_offset) const {
  Tensor t(static_cast<char*>(data_) + byte_offset, dtype, dims);
  if (byte_offset + t.bytes() > bytes_) throw std::out_of_range("DeviceBuffer::view out of range");
  return t;
}

std::vector<float> download_floats(Backend& backend, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::bf16) {
    std::vector<BF16> narrow(out.size());
    backend.copy_to_host(narrow.data(), t.data, t.bytes());
    for (size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_float(narrow[i]);
  } else if (t.dtype == DType::f32) {
    backend.copy_to_host(out.data(), t.data, t.bytes());
  } else {
    throw std::invalid_argument(std::string("download_floats: ") + dtype_name(t.dtype) +
                                " is not a float tensor here");
  }
  return out;
}

void upload_floats(Backend& backend, const Tensor& t, const float* host, size_t count) {
  if (static_cast<int64_t>(count) != t.numel())
    throw std::invalid_argument("upload_floats: " + std::to_string(count) + " values for " +
                                t.shape_string());
  if (t.dtype == DType::bf16) {
    std::vector<BF16> narrow(count);
    for (size_t i = 0; i < count; ++i) narrow[i] = float_to_bf16(host[i]);
    backend.copy_to_device(t.data, narrow.data(), t.bytes());
  } else if (t.dtype == DType::f32) {
    backend.copy_to_device(t.data, host, t.bytes());
  } else {
    throw std::invalid_argument(std::string("upload_floats: ") + dtype_name(t.dtype) +
                                " is not a float tensor here");
  }
}

void Backend::begin_capture() {
  throw std::logic_error("begin_capture: " + can_capture().reason);
}
int Backend::end_capture() {
  throw std::logic_error("end_capture: " + can_capture().reason);
}
void Backend::replay(int) {
  throw std::logic_error("replay: " + can_capture().reason);
}

int64_t host_adamw_step(const AdamWArgs& args) {
  if (!args.step_tensor.data) return args.step;
  return static_cast<int64_t>(std::lround(*args.step_tensor.as<const float>()));
}

double host_seconds_now() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

double time_synchronized(Backend& backend, const std::function<void()>& fn) {
  backend.synchronize();
  const double t0 = host_seconds_now();
  fn();
  backend.synchronize();
  return host_seconds_now() - t0;
}

std::string host_cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown CPU";
}

void HostPacer::stamp(int slot) {
  stamps_.at(static_cast<size_t>(slot)) = host_seconds_now();
}

void HostPacer::pace(int slot, const PaceRule& rule) {
  const double start = stamps_.at(static_cast<size_t>(slot));
  const double elapsed = host_seconds_now() - start;
  const double target = std::max(rule.floor_s, elapsed * rule.dilate + rule.extra_s);
  wait_until_host_seconds(start + target);
}

void wait_until_host_seconds(double deadline) {
  // Sleep through most of a long wait, then spin: sleeping alone overshoots by the scheduler's
  // granularity, spinning alone burns a core that the op's own threads may want.
  for (;;) {
    const double left = deadline - host_seconds_now();
    if (left <= 0) break;
    if (left > 2e-3) std::this_thread::sleep_for(std::chrono::duration<double>(left - 1e-3));
  }
}

void* host_alloc(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = bytes >= kHuge ? kHuge : 64;
  void* p = std::aligned_alloc(align, (std::max<size_t>(bytes, 1) + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  if (align == kHuge) madvise(p, (bytes + kHuge - 1) / kHuge * kHuge, MADV_HUGEPAGE);  // a hint
  return p;
}

void host_free(void* p) {
  std::free(p);
}

}  // namespace capbench
