// The one backend interface. Every workload is written once against it; every backend
// (reference, torch, ...) implements it. Ops take tensor views: outputs first, then inputs,
// weights, saved values, then an args struct.
//
// Conventions shared by every backend:
// - Tensors are dense, row-major; the view does not own its memory (the backend's alloc does).
// - Linear layers keep weights as [out, in] (y = x · Wᵀ), as PyTorch does.
// - Gradients of weights accumulate (+=): the workload zeroes the gradient buffer once a step.
//   rmsnorm_bwd also accumulates into its input gradient, which is the residual stream's gradient
//   in a pre-norm block. Every other output is overwritten.
// - Dtypes: a backend runs each op at one compute dtype, fp32 or (where supports() says so)
//   bf16, at which activations, weights and activation gradients are stored. Always fp32
//   whatever the compute dtype: weight gradients (matmul's C may be fp32 with bf16 A and B, for
//   dW; rmsnorm_bwd's dweight; embedding_bwd's dtable), rmsnorm's rstd, attention's lse, the
//   losses, and AdamW's params, m and v. convert casts between fp32 and bf16, which mixed
//   precision training needs to refresh its bf16 weights from the fp32 master copy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace capbench {

enum class DType { f32, bf16, f16, i32 };

const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);
// Parses "fp32"/"f32", "bf16", "fp16"/"f16", "i32"; returns false for anything else.
bool parse_dtype(const std::string& text, DType* out);

constexpr int kMaxRank = 4;

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::f32;
  int rank = 0;
  std::array<int64_t, kMaxRank> shape{};

  Tensor() = default;
  Tensor(void* data_, DType dtype_, std::initializer_list<int64_t> dims);

  int64_t dim(int i) const { return shape[static_cast<size_t>(i < 0 ? rank + i : i)]; }
  int64_t numel() const;
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  // Collapses all leading dimensions: [a, b, c] -> rows a·b, cols c.
  int64_t rows() const { return rank == 0 ? 1 : numel() / dim(-1); }
  int64_t cols() const { return rank == 0 ? 1 : dim(-1); }
  Tensor reshaped(std::initializer_list<int64_t> dims) const;
  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  std::string shape_string() const;
};

// ---- op arguments -------------------------------------------------------------------------

struct RmsNormArgs {
  float eps = 1e-5f;
};

// C[M,N] = alpha · op(A) · op(B) + beta · C, op(X) = Xᵀ when trans_x. With beta = 0, C's old
// contents are ignored (NaN in it does not propagate).
struct MatmulArgs {
  bool trans_a = false;
  bool trans_b = false;
  float alpha = 1.0f;
  float beta = 0.0f;
};

// Rotary embedding on pairs (x[2i], x[2i+1]) of each head, angle pos · theta^(-2i/D).
// Token t of every sequence sits at position pos_offset + t.
struct RopeArgs {
  int64_t pos_offset = 0;
  float theta = 10000.0f;
  // The most positions the model uses (its max_seq): a backend that caches angle tables sizes
  // them once, so a table never grows in the middle of a captured graph. 0: unknown.
  int64_t max_positions = 0;
};

// Causal grouped-query attention, scale 1/sqrt(head_dim). Query head h reads key/value head
// h / (n_heads / n_kv_heads).
struct AttentionArgs {
  bool causal = true;
};

struct KvAppendArgs {
  int64_t pos = 0;  // first cache position written
};

// Queries of the new tokens sit at positions pos .. pos+T-1 and attend, causally, over the
// cache positions 0 .. their own position.
struct DecodeArgs {
  int64_t pos = 0;
};

struct CrossEntropyArgs {
  float dloss_scale = 1.0f;  // dlogits = (softmax - onehot) · dloss_scale (1/N for a mean loss)
};

struct AdamWArgs {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  int64_t step = 1;  // 1-based, for bias correction
  // [1] f32 on the device. When set, the step is read from it when the op runs and `step` is
  // ignored: a captured graph bakes in its arguments, so a replayed train step advances its
  // step count in device memory (the workload adds one to it each step).
  Tensor step_tensor;
};

// ---- capability query and device description ---------------------------------------------

enum class OpId {
  embedding_fwd,
  embedding_bwd,
  rmsnorm_fwd,
  rmsnorm_bwd,
  matmul,
  rope_fwd,
  rope_bwd,
  attention_fwd,
  attention_bwd,
  kv_append,
  attention_decode,
  swiglu_fwd,
  swiglu_bwd,
  add,
  cross_entropy_fwd_bwd,
  adamw,
  convert,
  count_
};
constexpr int kOpCount = static_cast<int>(OpId::count_);
const char* op_name(OpId op);

struct Support {
  bool ok = true;
  std::string reason;  // why not, when !ok
  static Support yes() { return {}; }
  static Support no(std::string why) { return {false, std::move(why)}; }
};

struct DeviceInfo {
  std::string backend;      // registry name, e.g. "torch:cuda"
  std::string device_kind;  // "cpu" or "cuda"
  std::string name;         // e.g. "AMD EPYC 9R14" or "NVIDIA H100 80GB HBM3"
  uint64_t memory_bytes = 0;
  int threads = 0;  // CPU threads the backend uses; 0 when not applicable
  // What the backend knows of its peak rates without measuring; 0 = unknown.
  double peak_flops = 0;
  double peak_bytes_per_s = 0;
  std::string library_version;  // e.g. "libtorch 1.13.0"
};

// How long an op paced by `pace` must last, measured from its `stamp`:
// at least max(floor_s, dilate · elapsed + extra_s), elapsed being the time up to the pace call.
struct PaceRule {
  double floor_s = 0.0;
  double dilate = 1.0;
  double extra_s = 0.0;
};

// ---- the interface --------------------------------------------------------------------------

class Backend {
 public:
  virtual ~Backend() = default;

  virtual DeviceInfo device_info() const = 0;
  virtual Support supports(OpId op, DType dtype) const = 0;

  // Memory. Pointers are device pointers; the host copies are the only way across.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* ptr) = 0;
  virtual void copy_to_device(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
  virtual void fill(const Tensor& t, float value) = 0;

  // Ops. Shapes: B batch, T tokens, C d_model, H heads, K kv heads, D head dim, V vocab, F d_ff,
  // N = B·T rows, S cache capacity.
  virtual void embedding_fwd(const Tensor& out /*[B,T,C]*/, const Tensor& tokens /*[B,T] i32*/,
                             const Tensor& table /*[V,C]*/) = 0;
  virtual void embedding_bwd(const Tensor& dtable /*[V,C] +=*/, const Tensor& dout /*[B,T,C]*/,
                             const Tensor& tokens /*[B,T] i32*/) = 0;
  virtual void rmsnorm_fwd(const Tensor& out /*[N,C]*/, const Tensor& rstd /*[N] f32*/,
                           const Tensor& in /*[N,C]*/, const Tensor& weight /*[C]*/,
                           const RmsNormArgs& args) = 0;
  virtual void rmsnorm_bwd(const Tensor& din /*[N,C] +=*/, const Tensor& dweight /*[C] +=*/,
                           const Tensor& dout /*[N,C]*/, const Tensor& in /*[N,C]*/,
                           const Tensor& weight /*[C]*/, const Tensor& rstd /*[N] f32*/) = 0;
  virtual void matmul(const Tensor& c /*[M,N]*/, const Tensor& a /*[M,K] or [K,M]*/,
                      const Tensor& b /*[K,N] or [N,K]*/, const MatmulArgs& args) = 0;
  virtual void rope_fwd(const Tensor& out /*[B,T,H,D]*/, const Tensor& in /*[B,T,H,D]*/,
                        const RopeArgs& args) = 0;
  virtual void rope_bwd(const Tensor& din /*[B,T,H,D]*/, const Tensor& dout /*[B,T,H,D]*/,
                        const RopeArgs& args) = 0;
  virtual void attention_fwd(const Tensor& out /*[B,T,H,D]*/, const Tensor& lse /*[B,H,T] f32*/,
                             const Tensor& q /*[B,T,H,D]*/, const Tensor& k /*[B,T,K,D]*/,
                             const Tensor& v /*[B,T,K,D]*/, const AttentionArgs& args) = 0;
  virtual void attention_bwd(const Tensor& dq /*[B,T,H,D]*/, const Tensor& dk /*[B,T,K,D]*/,
                             const Tensor& dv /*[B,T,K,D]*/, const Tensor& dout /*[B,T,H,D]*/,
                             const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& out /*[B,T,H,D]*/, const Tensor& lse /*[B,H,T]*/,
                             const AttentionArgs& args) = 0;
  virtual void kv_append(const Tensor& k_cache /*[B,S,K,D]*/, const Tensor& v_cache /*[B,S,K,D]*/,
                         const Tensor& k /*[B,T,K,D]*/, const Tensor& v /*[B,T,K,D]*/,
                         const KvAppendArgs& args) = 0;
  virtual void attention_decode(const Tensor& out /*[B,T,H,D]*/, const Tensor& q /*[B,T,H,D]*/,
                                const Tensor& k_cache /*[B,S,K,D]*/,
                                const Tensor& v_cache /*[B,S,K,D]*/, const DecodeArgs& args) = 0;
  virtual void swiglu_fwd(const Tensor& out /*[N,F]*/, const Tensor& gate_up /*[N,2F]*/) = 0;
  virtual void swiglu_bwd(const Tensor& dgate_up /*[N,2F]*/, const Tensor& dout /*[N,F]*/,
                          const Tensor& gate_up /*[N,2F]*/) = 0;
  virtual void add(const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  virtual void cross_entropy_fwd_bwd(const Tensor& losses /*[N] f32*/,
                                     const Tensor& dlogits /*[N,V]*/,
                                     const Tensor& logits /*[N,V]*/,
                                     const Tensor& targets /*[N] i32*/,
                                     const CrossEntropyArgs& args) = 0;
  virtual void adamw(const Tensor& params /*[P] f32*/, const Tensor& grads /*[P]*/,
                     const Tensor& m /*[P] f32*/, const Tensor& v /*[P] f32*/,
                     const AdamWArgs& args) = 0;
  // out = in at out's dtype (fp32 <-> bf16, rounding to nearest even); same element count.
  virtual void convert(const Tensor& out, const Tensor& in) = 0;

  // Timeline. synchronize() waits for all queued work. stamp/pace are the throttle's pacing
  // primitives, on the device's own timeline: stamp records "now" into a slot; pace waits until
  // the rule, measured from that stamp, is met.
  virtual void synchronize() = 0;
  virtual int pace_slots() const { return 0; }
  virtual void stamp(int slot) = 0;
  virtual void pace(int slot, const PaceRule& rule) = 0;

  // Optional graph capture (CUDA graphs). Between begin_capture and end_capture the ops and
  // device-side fills and copies are recorded, not run; replay(graph) runs a recorded graph.
  // A graph bakes in every argument, so what changes between replays must live in device
  // memory (AdamW's step_tensor); nothing may copy to or from the host while capturing.
  // Graphs share the backend's memory and may replay in any order, one at a time.
  virtual Support can_capture() const { return Support::no("this backend has no graph capture"); }
  virtual void begin_capture();
  virtual int end_capture();  // the graph's id, for replay
  virtual void replay(int graph);

  // What the ops that follow belong to, for accounting only (the per-op profiler sums time by
  // it, and a run of a few layers is extrapolated to the whole model with it): the model's
  // layers, the optimizer's pass over every parameter, or the rest.
  enum class Region { other, layers, parameters };
  static constexpr int kRegionCount = 3;
  virtual void region(Region) {}

  // Makes this backend's process-wide settings current again (a CPU library's thread count is
  // the process's, and the last backend made sets it): for a harness that alternates between
  // two backends of one kind, so that drift on a shared machine falls on both alike.
  virtual void activate() {}

  // Pacing off (false) or on again: a throttle then runs ops at the host's own speed. For work
  // that checks values rather than time (a run's canaries), which in slow motion would take
  // minutes for nothing.
  virtual void set_pacing(bool) {}

  // The device allocator's peak bytes in use (temporaries included) since the last reset; 0
  // where the backend cannot tell (the CPU backends: the run reports capbench's own buffers).
  virtual uint64_t device_peak_bytes() { return 0; }
  virtual void reset_device_peak_bytes() {}
};

// An allocation the device could not satisfy; the runner records the run as failed with it.
class OutOfDeviceMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Owns one device allocation of a backend; frees it on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend& backend, size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Tensor view(DType dtype, std::initializer_list<int64_t> dims, size_t byte_offset = 0) const;

 private:
  Backend* backend_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Host-side pacing shared by every CPU backend: stamps are steady-clock readings, pace spins.
class HostPacer {
 public:
  static constexpr int kSlots = 64;
  void stamp(int slot);
  void pace(int slot, const PaceRule& rule);

 private:
  std::array<double, kSlots> stamps_{};
};

// A float tensor (fp32 or bf16) to and from host fp32 values, converting on the host; sizes
// must match the tensor's element count.
std::vector<float> download_floats(Backend& backend, const Tensor& t);
void upload_floats(Backend& backend, const Tensor& t, const float* host, size_t count);

// Host memory for a CPU backend's buffers: 64-byte aligned; from 2 MiB on, aligned to 2 MiB and
// backed by transparent huge pages where the kernel offers them (madvise), because a stream over
// 4 KiB pages stalls at every page (one core read 22 GB/s over 4 KiB pages, 31 over 2 MiB ones).
// Freed with host_free.
void* host_alloc(size_t bytes);
void host_free(void* p);

// AdamW's step for a backend whose device memory is host memory: step_tensor's value when set.
int64_t host_adamw_step(const AdamWArgs& args);

double host_seconds_now();
// Returns at host_seconds_now() >= deadline: sleeps through most of the wait, spins the rest.
void wait_until_host_seconds(double deadline);
// Seconds `fn` takes on `backend`'s timeline: synchronised before and after.
double time_synchronized(Backend& backend, const std::function<void()>& fn);
// The CPU's model name (from /proc/cpuinfo), or "unknown CPU".
std::string host_cpu_name();

}  // namespace capbench
