// The libtorch backend: every op through ATen, on the CPU (Debian's libtorch 1.13) or, with a
// CUDA libtorch 2.x, on a GPU. Tensor views are wrapped with from_blob (no copies, no ownership);
// device memory comes from ATen's allocator (the caching allocator on CUDA).
//
// Attention is written as explicit matmuls with grouped-query heads folded into the query rows
// ([B, K, G·T, D] against [B, K, S, D]), so K/V are never repeated in memory.
#include "backends/torch/torch_backend.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/version.h>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "backends/cuda/gemm_layout.h"
#include "backends/shape_checks.h"

#ifdef CAPBENCH_TORCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <optional>
#endif
// Fused kernels of libtorch 2.x on CUDA: flash attention (FlashAttention-2, bf16/fp16, head
// dim <= 256) with its backward, and the fused AdamW that torch.optim.AdamW(fused=True) runs.
// Their C++ signatures took their current form in 2.1.
#if defined(CAPBENCH_TORCH_CUDA) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
#define CAPBENCH_TORCH_FUSED_KERNELS 1
#endif
#ifdef CAPBENCH_HAVE_CUDA_PACING
#include "backends/cuda/green_context.h"
#include "backends/cuda/pacing.h"
#endif

namespace capbench {
namespace {

// ATen's thread count does not reach OpenBLAS, which Debian's libtorch calls for matmuls and
// which runs its own threads (measured: --threads 1 still gave the 2-core GEMM rate). Set it too,
// when the BLAS in the process is OpenBLAS; looked up at run time, so another BLAS still links.
void set_blas_threads(int threads) {
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    fn(threads);
}

// Which OpenBLAS build runs the matmuls: its threading decides how it shares the cores with
// ATen's OpenMP team (see prefer_openmp_openblas in harness/main.cpp).
std::string blas_threading() {
  using GetParallel = int (*)();
  auto fn = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  if (!fn) return "";
  switch (fn()) {
    case 0:
      return ", OpenBLAS (sequential)";
    case 1:
      return ", OpenBLAS (pthreads)";
    case 2:
      return ", OpenBLAS (OpenMP)";
    default:
      return ", OpenBLAS";
  }
}

// ATen's messages append a C++ backtrace after the first line; a run's reason keeps the line.
std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

at::ScalarType scalar_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return at::kFloat;
    case DType::bf16:
      return at::kBFloat16;
    case DType::f16:
      return at::kHalf;
    case DType::i32:
      return at::kInt;
  }
  throw std::invalid_argument("unknown dtype");
}

class TorchBackend final : public Backend {
 public:
  TorchBackend(at::Device device, const BackendOptions& options) : device_(device) {
    if (device.is_cpu()) {
      if (options.sm_count > 0)
        throw std::invalid_argument("torch on the CPU has no SMs to confine to (sm_count)");
      threads_ = options.threads > 0 ? options.threads
                                     : static_cast<int>(std::thread::hardware_concurrency());
      at::set_num_threads(threads_);
      set_blas_threads(threads_);
    }
#ifdef CAPBENCH_TORCH_CUDA
    if (device.is_cuda() && options.sm_count > 0) confine_to_sms(options.sm_count);
#endif
  }
#ifdef CAPBENCH_TORCH_CUDA
  ~TorchBackend() override {
    // The current stream is per thread and outlives the backend: give the old one back.
    if (previous_stream_) at::cuda::setCurrentCUDAStream(*previous_stream_);
  }
#endif

  DeviceInfo device_info() const override {
    DeviceInfo info;
    info.backend = device_.is_cpu() ? "torch" : "torch:cuda";
    info.device_kind = device_.is_cpu() ? "cpu" : "cuda";
    info.threads = device_.is_cpu() ? threads_ : 0;
    info.library_version = std::string("libtorch ") + TORCH_VERSION + blas_threading();
    info.name = host_cpu_name();
#ifdef CAPBENCH_TORCH_CUDA
    if (device_.is_cuda()) {
      const cudaDeviceProp* prop = at::cuda::getCurrentDeviceProperties();
      info.name = prop->name;
      info.memory_bytes = prop->totalGlobalMem;
#ifdef CAPBENCH_HAVE_CUDA_PACING
      if (partition_) info.name += ", " + sm_partition_label(*partition_);
#endif
    }
#endif
    return info;
  }

  Support supports(OpId, DType dtype) const override {
    if (dtype == DType::f32 || dtype == DType::bf16) return Support::yes();
    return Support::no(std::string("the torch backend runs fp32 and bf16, not ") +
                       dtype_name(dtype));
  }

  // ---- memory -------------------------------------------------------------------------------

  void* alloc(size_t bytes) override {
    at::Tensor t;
    try {
      t = at::empty({static_cast<int64_t>(std::max<size_t>(bytes, 1))},
                    at::TensorOptions().dtype(at::kByte).device(device_));
    } catch (const c10::OutOfMemoryError& e) {
      throw OutOfDeviceMemory(first_line(e.what()));
    }
    void* p = t.data_ptr();
    std::lock_guard<std::mutex> lock(mutex_);
    allocations_.emplace(p, std::move(t));
    return p;
  }
  void free(void* ptr) override {
    std::lock_guard<std::mutex> lock(mutex_);
    allocations_.erase(ptr);
  }
  void copy_to_device(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    bytes_view(dst, bytes).copy_(host_bytes(const_cast<void*>(src), bytes));
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    host_bytes(dst, bytes).copy_(bytes_view(const_cast<void*>(src), bytes));
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    bytes_view(dst, bytes).copy_(bytes_view(const_cast<void*>(src), bytes));
  }
  void fill(const Tensor& t, float value) override {
    wrap(t).fill_(value);
  }

  // ---- ops ----------------------------------------------------------------------------------

  void embedding_fwd(const Tensor& out, const Tensor& tokens, const Tensor& table) override {
    check_embedding(out, tokens, table);
    at::Tensor y = wrap2d(out);
    at::index_select_out(y, wrap(table), 0, wrap(tokens).reshape({-1}));
  }

  void embedding_bwd(const Tensor& dtable, const Tensor& dout, const Tensor& tokens) override {
    check_embedding(dout, tokens, dtable);
    require_dtype(dtable, DType::f32, "embedding_bwd dtable");
    wrap(dtable).index_add_(0, wrap(tokens).reshape({-1}), wrap2d(dout).to(at::kFloat));
  }

  void rmsnorm_fwd(const Tensor& out, const Tensor& rstd, const Tensor& in, const Tensor& weight,
                   const RmsNormArgs& args) override {
    check_rmsnorm(out, rstd, in, weight);
    const at::Tensor x = wrap2d(in).to(at::kFloat);  // statistics in fp32 at any dtype
    const at::Tensor r = (x.square().mean(-1, /*keepdim=*/true) + args.eps).rsqrt_();
    at::Tensor y = wrap2d(out);
    at::mul_out(y, x * r, wrap(weight).to(at::kFloat));
    wrap(rstd).copy_(r.squeeze(-1));
  }

  void rmsnorm_bwd(const Tensor& din, const Tensor& dweight, const Tensor& dout, const Tensor& in,
                   const Tensor& weight, const Tensor& rstd) override {
    check_rmsnorm(dout, rstd, in, weight);
    check_same_shape(din, in, "rmsnorm_bwd din");
    require_dtype(dweight, DType::f32, "rmsnorm_bwd dweight");
    const at::Tensor x = wrap2d(in).to(at::kFloat), dy = wrap2d(dout).to(at::kFloat);
    const at::Tensor r = wrap(rstd).unsqueeze(-1);
    const at::Tensor wdy = dy * wrap(weight).to(at::kFloat);
    const at::Tensor dot = (wdy * x).sum(-1, /*keepdim=*/true);
    const double inv_c = 1.0 / static_cast<double>(in.cols());
    wrap2d(din).add_(wdy * r - x * (r * r * r * dot * inv_c));
    wrap(dweight).add_((dy * x * r).sum(0));
  }

  void matmul(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args) override {
    check_matmul(c, a, b, args);
#ifdef CAPBENCH_TORCH_CUDA
    if (device_.is_cuda() && a.dtype == DType::bf16) return cublas_bf16_gemm(c, a, b, args);
#endif
    at::Tensor A = wrap2d(a), B = wrap2d(b);
    if (args.trans_a) A = A.t();
    if (args.trans_b) B = B.t();
    at::Tensor C = wrap2d(c);
    if (c.dtype != a.dtype || (args.beta != 0.0f && c.dtype != DType::f32)) {
      // Results that accumulate (fp32 weight gradients from bf16 A, B; beta·C + product at
      // bf16) must round once: a product rounded to bf16 before the sum loses the result where
      // beta·C and the product nearly cancel (measured: 2-5% on a one-element C). ATen 1.13 has
      // no mm with a wider output, so the operands are widened. (cuBLAS computes in fp32 and
      // rounds once: the CUDA path calls it directly, cublas_bf16_gemm.)
      const at::Tensor product = at::mm(A.to(at::kFloat), B.to(at::kFloat));
      if (args.beta == 0.0f)
        C.copy_(product.mul_(args.alpha));
      else
        C.copy_(C.to(at::kFloat).mul_(args.beta).add_(product, args.alpha));
    } else if (args.beta == 0.0f) {
      at::mm_out(C, A, B);
      if (args.alpha != 1.0f) C.mul_(args.alpha);
    } else {
      C.addmm_(A, B, args.beta, args.alpha);
    }
  }

  void rope_fwd(const Tensor& out, const Tensor& in, const RopeArgs& args) override {
    check_rope(out, in);
    rotate(out, in, args, 1.0);
  }

  void rope_bwd(const Tensor& din, const Tensor& dout, const RopeArgs& args) override {
    check_rope(din, dout);
    rotate(din, dout, args, -1.0);
  }

  void attention_fwd(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                     const Tensor& v, const AttentionArgs& args) override {
    check_attention(out, lse, q, k, v);
    Grouped g(q, k);
#ifdef CAPBENCH_TORCH_FUSED_KERNELS
    if (flash_applies(q, args)) {
      auto result = at::_scaled_dot_product_flash_attention(
          heads_first(wrap(q)), flash_heads(wrap(k), g), flash_heads(wrap(v), g),
          /*dropout_p=*/0.0, args.causal, /*return_debug_mask=*/false, g.scale);
      wrap(out).copy_(heads_first(std::get<0>(result)));
      wrap(lse).copy_(std::get<1>(result).narrow(-1, 0, g.t));
      flash_philox_seed_ = std::get<6>(result);
      flash_philox_offset_ = std::get<7>(result);
      return;
    }
#endif
    const at::Tensor qg = g.fold(wrap(q)), kt = heads_first(wrap(k)), vt = heads_first(wrap(v));
    // Scores and softmax in fp32 at any dtype; the P·V product at the inputs' dtype.
    at::Tensor scores = scores_fp32(qg, kt).mul_(g.scale);
    if (args.causal) scores.masked_fill_(causal_mask(g, 0, g.s), -INFINITY);
    const at::Tensor l = scores.logsumexp(-1, /*keepdim=*/true);
    const at::Tensor o = at::matmul((scores - l).exp_().to(qg.scalar_type()), vt);
    wrap(out).copy_(g.unfold(o));
    wrap(lse).copy_(l.reshape({g.b, g.h, g.t}));
  }

  void attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                     const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                     const Tensor& lse, const AttentionArgs& args) override {
    check_attention_bwd(dq, dk, dv, dout, q, k, v, out, lse);
    Grouped g(q, k);
#ifdef CAPBENCH_TORCH_FUSED_KERNELS
    if (flash_applies(q, args)) {
      if (!flash_philox_seed_.defined()) {  // no forward ran here: dropout 0 never reads them
        flash_philox_seed_ = at::empty({0}, wrap(lse).options().dtype(at::kLong));
        flash_philox_offset_ = flash_philox_seed_;
      }
      auto grads = at::_scaled_dot_product_flash_attention_backward(
          heads_first(wrap(dout)), heads_first(wrap(q)), flash_heads(wrap(k), g),
          flash_heads(wrap(v), g), heads_first(wrap(out)), wrap(lse), /*cum_seq_q=*/at::Tensor(),
          /*cum_seq_k=*/at::Tensor(), g.t, g.t, /*dropout_p=*/0.0, args.causal, flash_philox_seed_,
          flash_philox_offset_, g.scale);
      wrap(dq).copy_(heads_first(std::get<0>(grads)));
      wrap(dk).copy_(heads_first(flash_group_sum(std::get<1>(grads), g)));
      wrap(dv).copy_(heads_first(flash_group_sum(std::get<2>(grads), g)));
      return;
    }
#endif
    const at::Tensor qg = g.fold(wrap(q)), dog = g.fold(wrap(dout));
    const at::Tensor kt = heads_first(wrap(k)), vt = heads_first(wrap(v));
    at::Tensor scores = scores_fp32(qg, kt).mul_(g.scale);
    if (args.causal) scores.masked_fill_(causal_mask(g, 0, g.s), -INFINITY);
    const at::Tensor l = wrap(lse).reshape({g.b, g.kv, g.group * g.t, 1});
    const at::Tensor p = (scores - l).exp_();
    const at::Tensor dp = at::matmul(dog, vt.transpose(-1, -2)).to(at::kFloat);
    const at::ScalarType dt = qg.scalar_type();
    const at::Tensor ds = (p * (dp - (p * dp).sum(-1, /*keepdim=*/true)) * g.scale).to(dt);
    wrap(dv).copy_(at::matmul(p.to(dt).transpose(-1, -2), dog).permute({0, 2, 1, 3}));
    wrap(dq).copy_(g.unfold(at::matmul(ds, kt)));
    wrap(dk).copy_(at::matmul(ds.transpose(-1, -2), qg).permute({0, 2, 1, 3}));
  }

  void kv_append(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                 const KvAppendArgs& args) override {
    check_kv_append(k_cache, v_cache, k, v, args);
    wrap(k_cache).narrow(1, args.pos, k.dim(1)).copy_(wrap(k));
    wrap(v_cache).narrow(1, args.pos, v.dim(1)).copy_(wrap(v));
  }

  void attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                        const Tensor& v_cache, const DecodeArgs& args) override {
    check_attention_decode(out, q, k_cache, v_cache, args);
    Grouped g(q, k_cache);
    const int64_t ctx = args.pos + g.t;
    // Queries folded per kv head ([B,K,G·T,D]) against that head's cache rows, read in place
    // ([S,K,D]-strided): grouped-query models need no repeated K/V.
    const at::Tensor qg = g.fold(wrap(q));
    const at::Tensor kt = heads_first(wrap(k_cache).narrow(1, 0, ctx));
    const at::Tensor vt = heads_first(wrap(v_cache).narrow(1, 0, ctx));
#ifdef CAPBENCH_TORCH_FUSED_KERNELS
    if (g.t == 1 && flash_applies(q, AttentionArgs{})) {
      // One new token: the G folded rows see the whole cache, no mask - flash, on the bf16
      // cache as it is. (The fold is the one the CPU path below runs and the tests check.)
      auto result = at::_scaled_dot_product_flash_attention(qg, kt, vt, /*dropout_p=*/0.0,
                                                            /*is_causal=*/false,
                                                            /*return_debug_mask=*/false, g.scale);
      wrap(out).copy_(g.unfold(std::get<0>(result)));
      return;
    }
#endif
    at::Tensor scores = scores_fp32(qg, kt).mul_(g.scale);
    if (g.t > 1) scores.masked_fill_(causal_mask(g, args.pos, ctx), -INFINITY);
    wrap(out).copy_(g.unfold(at::matmul(scores.softmax(-1).to(vt.scalar_type()), vt)));
  }

  void swiglu_fwd(const Tensor& out, const Tensor& gate_up) override {
    check_swiglu(out, gate_up);
    const int64_t f = out.cols();
    const at::Tensor gu = wrap2d(gate_up).to(at::kFloat);  // fp32 inside at any dtype
    at::Tensor y = wrap2d(out);
    at::mul_out(y, at::silu(gu.narrow(1, 0, f)), gu.narrow(1, f, f));
  }

  void swiglu_bwd(const Tensor& dgate_up, const Tensor& dout, const Tensor& gate_up) override {
    check_swiglu(dout, gate_up);
    check_same_shape(dgate_up, gate_up, "swiglu_bwd dgate_up");
    const int64_t f = dout.cols();
    const at::Tensor gu = wrap2d(gate_up).to(at::kFloat), dy = wrap2d(dout).to(at::kFloat);
    const at::Tensor dgu = wrap2d(dgate_up);
    const at::Tensor g = gu.narrow(1, 0, f), u = gu.narrow(1, f, f);
    const at::Tensor sg = at::sigmoid(g);
    at::Tensor dg = dgu.narrow(1, 0, f), du = dgu.narrow(1, f, f);
    at::mul_out(du, dy, g * sg);
    at::mul_out(dg, dy * u, sg * (1 + g * (1 - sg)));
  }

  void add(const Tensor& out, const Tensor& a, const Tensor& b) override {
    check_same_shape(out, a, "add a");
    check_same_shape(out, b, "add b");
    at::Tensor y = wrap(out);
    at::add_out(y, wrap(a), wrap(b));
  }

  void cross_entropy_fwd_bwd(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                             const Tensor& targets, const CrossEntropyArgs& args) override {
    check_cross_entropy(losses, dlogits, logits, targets);
    const at::Tensor x = wrap2d(logits).to(at::kFloat);
    const at::Tensor tgt = wrap(targets).to(at::kLong).unsqueeze(1);
    const at::Tensor l = x.logsumexp(-1, /*keepdim=*/true);
    wrap(losses).copy_((l - x.gather(1, tgt)).squeeze(1));
    // In fp32, rounded once at the end: p - 1 from a bf16-rounded p loses a confident row.
    at::Tensor d = logits.dtype == DType::f32 ? wrap2d(dlogits) : at::empty_like(x);
    at::exp_out(d, x - l);
    d.scatter_add_(1, tgt, at::full({x.size(0), 1}, -1.0f, x.options()));
    d.mul_(args.dloss_scale);
    if (logits.dtype != DType::f32) wrap2d(dlogits).copy_(d);
  }

  void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
             const AdamWArgs& args) override {
    check_adamw(params, grads, m, v, args);
    const at::Tensor p = wrap(params), g = wrap(grads), mt = wrap(m), vt = wrap(v);
    const double lr = args.lr;
#ifdef CAPBENCH_TORCH_FUSED_KERNELS
    if (device_.is_cuda()) {
      // One kernel over the flat buffers; it reads the step from device memory.
      const at::Tensor step = args.step_tensor.data
                                  ? wrap(args.step_tensor)
                                  : at::full({1}, static_cast<double>(args.step), p.options());
      at::_fused_adamw_({p}, {g}, {mt}, {vt}, {}, {step}, lr, args.beta1, args.beta2,
                        args.weight_decay, args.eps, /*amsgrad=*/false, /*maximize=*/false);
      return;
    }
#endif
    mt.mul_(args.beta1).add_(g, 1.0 - args.beta1);
    vt.mul_(args.beta2).addcmul_(g, g, 1.0 - args.beta2);
    p.mul_(1.0 - lr * args.weight_decay);
    if (device_.is_cuda() && args.step_tensor.data) {
      // The step stays on the device (a captured graph replays it): bias corrections as tensors.
      const at::Tensor step = wrap(args.step_tensor);
      const at::Tensor bc1 = 1.0 - at::pow(static_cast<double>(args.beta1), step);
      const at::Tensor bc2 = 1.0 - at::pow(static_cast<double>(args.beta2), step);
      const at::Tensor denom = (vt / bc2).sqrt_().add_(args.eps);
      p.sub_((mt / denom).mul_(bc1.reciprocal().mul_(lr)));
      return;
    }
    const int64_t step = device_.is_cpu() ? host_adamw_step(args) : args.step;
    const double bc1 = 1.0 - std::pow(static_cast<double>(args.beta1), step);
    const double bc2 = 1.0 - std::pow(static_cast<double>(args.beta2), step);
    const at::Tensor denom = (vt / bc2).sqrt_().add_(args.eps);
    p.addcdiv_(mt, denom, -lr / bc1);
  }

  void convert(const Tensor& out, const Tensor& in) override {
    check_convert(out, in);
    wrap(out).view({-1}).copy_(wrap(in).view({-1}));
  }

  // ---- timeline -----------------------------------------------------------------------------

  void synchronize() override {
#ifdef CAPBENCH_TORCH_CUDA
    if (device_.is_cuda()) {
      // A green context's stream is not the primary context's work: wait for it by name.
      if (previous_stream_) at::cuda::getCurrentCUDAStream(device_.index()).synchronize();
      cudaDeviceSynchronize();
    }
#endif
  }
  // CUDA graphs. Capture runs on a side stream (the legacy default stream cannot capture); the
  // graphs share one memory pool, safe because no temporary outlives the op that made it, and
  // replay on the current stream. A step's first run is eager (the workload sees to it), so
  // lazy initialisation - cuBLAS handles, workspaces, RoPE tables - stays outside the capture.
  Support can_capture() const override {
#ifdef CAPBENCH_TORCH_CUDA
    if (device_.is_cuda()) return Support::yes();
#endif
    return Support::no("torch on the CPU has no graph capture");
  }
#ifdef CAPBENCH_TORCH_CUDA
  void begin_capture() override {
    if (!device_.is_cuda()) Backend::begin_capture();
    if (capturing_) throw std::logic_error("begin_capture: a capture is already open");
    synchronize();  // the capture stream must see the work before it done
    if (graph_pool_.first == 0 && graph_pool_.second == 0)
      graph_pool_ = at::cuda::graph_pool_handle();
    // Confined to a green context, its stream (not the legacy default) captures: the graph's
    // kernels then replay on those SMs too.
    if (!previous_stream_)
      capture_stream_.emplace(
          at::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index()));
    capturing_ = std::make_unique<at::cuda::CUDAGraph>();
    try {
      capturing_->capture_begin(graph_pool_);
    } catch (...) {
      capturing_.reset();
      capture_stream_.reset();
      throw;
    }
  }
  int end_capture() override {
    if (!capturing_) throw std::logic_error("end_capture without begin_capture");
    std::unique_ptr<at::cuda::CUDAGraph> graph = std::move(capturing_);
    try {
      graph->capture_end();  // on the capture stream: the guard goes after it, in every case
    } catch (...) {
      capture_stream_.reset();
      throw;
    }
    capture_stream_.reset();
    graphs_.push_back(std::move(graph));
    return static_cast<int>(graphs_.size()) - 1;
  }
  void replay(int graph) override {
    if (graph < 0 || graph >= static_cast<int>(graphs_.size()))
      throw std::out_of_range("replay: no graph " + std::to_string(graph));
    graphs_[static_cast<size_t>(graph)]->replay();
  }
  uint64_t device_peak_bytes() override {
    if (!device_.is_cuda()) return 0;
    // allocated_bytes[0]: the aggregate over the small and large pools.
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_.index());
    return static_cast<uint64_t>(stats.allocated_bytes[0].peak);
  }
  void reset_device_peak_bytes() override {
    if (device_.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device_.index());
  }
#endif

  // The CPU paces on the host clock; the GPU with kernels on the current stream (captured into
  // CUDA graphs with the ops), when the CUDA pacing library is built.
  int pace_slots() const override {
    if (device_.is_cpu()) return HostPacer::kSlots;
#ifdef CAPBENCH_HAVE_CUDA_PACING
    return CudaPacer::kSlots;
#else
    return 0;
#endif
  }
  void stamp(int slot) override {
    if (device_.is_cpu()) return pacer_.stamp(slot);
#ifdef CAPBENCH_HAVE_CUDA_PACING
    cuda_pacer().stamp(at::cuda::getCurrentCUDAStream().stream(), slot);
#else
    throw_no_device_pacing();
#endif
  }
  void pace(int slot, const PaceRule& rule) override {
    if (device_.is_cpu()) return pacer_.pace(slot, rule);
#ifdef CAPBENCH_HAVE_CUDA_PACING
    cuda_pacer().pace(at::cuda::getCurrentCUDAStream().stream(), slot, rule);
#else
    throw_no_device_pacing();
#endif
  }

 private:
  // Grouped-query geometry: K kv heads, G = H/K query heads per kv head, T queries, S keys.
  struct Grouped {
    int64_t b, t, h, kv, group, d, s;
    double scale;
    Grouped(const Tensor& q, const Tensor& k)
        : b(q.dim(0)),
          t(q.dim(1)),
          h(q.dim(2)),
          kv(k.dim(2)),
          group(q.dim(2) / k.dim(2)),
          d(q.dim(3)),
          s(k.dim(1)),
          scale(1.0 / std::sqrt(static_cast<double>(q.dim(3)))) {}
    // [B,T,H,D] -> [B,K,G·T,D], rows ordered (g, t): head h = k·G + g.
    at::Tensor fold(const at::Tensor& x) const {
      return x.view({b, t, kv, group, d}).permute({0, 2, 3, 1, 4}).reshape({b, kv, group * t, d});
    }
    // [B,K,G·T,D] -> [B,T,H,D]
    at::Tensor unfold(const at::Tensor& x) const {
      return x.view({b, kv, group, t, d}).permute({0, 3, 1, 2, 4}).reshape({b, t, h, d});
    }
  };

  // Q·Kᵀ in fp32: scores rounded to bf16 before the exponential put a 2^-9 relative error on
  // every probability (the backward's recomputed P then disagrees with the forward's lse).
  static at::Tensor scores_fp32(const at::Tensor& q, const at::Tensor& kt) {
    return at::matmul(q.to(at::kFloat), kt.to(at::kFloat).transpose(-1, -2));
  }

  static at::Tensor heads_first(const at::Tensor& x) {
    return x.permute({0, 2, 1, 3});
  }

#ifdef CAPBENCH_TORCH_FUSED_KERNELS
  bool flash_applies(const Tensor& q, const AttentionArgs& args) const {
    return device_.is_cuda() && (q.dtype == DType::bf16 || q.dtype == DType::f16) && args.causal &&
           q.dim(3) % 8 == 0 && q.dim(3) <= 256;
  }
  // [B,T,K,D] -> [B,H,T,D]: each kv head repeated for its G query heads (G = 1: a view). The
  // private flash op takes as many kv heads as query heads in every 2.x release.
  static at::Tensor flash_heads(const at::Tensor& x, const Grouped& g) {
    const at::Tensor t = heads_first(x);
    return g.group == 1 ? t : t.repeat_interleave(g.group, 1);
  }
  // [B,H,T,D] gradients of the repeated heads -> [B,K,T,D], summed over each group.
  static at::Tensor flash_group_sum(const at::Tensor& x, const Grouped& g) {
    return g.group == 1 ? x : x.reshape({g.b, g.kv, g.group, g.t, g.d}).sum(2);
  }
#endif

  // True where query row (g, t) at position pos+t must not see key j: j > pos + t.
  at::Tensor causal_mask(const Grouped& g, int64_t pos, int64_t keys) const {
    const auto opts = at::TensorOptions().dtype(at::kLong).device(device_);
    const at::Tensor qpos = at::arange(g.t, opts).add_(pos).repeat({g.group}).unsqueeze(1);
    return at::arange(keys, opts).unsqueeze(0) > qpos;
  }

  // Rotation by +angle (direction 1) or -angle (-1) of each (2i, 2i+1) pair. Angles are computed
  // in double on the host, as the reference does, then cached per position range.
  void rotate(const Tensor& out, const Tensor& in, const RopeArgs& args, double direction) {
    const int64_t t = in.dim(1), hd = in.dim(3);
    const auto [cos, sin] = rope_tables(args.pos_offset, t, hd, args.theta);
    const at::Tensor x = wrap(in).view({in.dim(0), t, in.dim(2), hd / 2, 2});
    const at::Tensor x0 = x.select(-1, 0), x1 = x.select(-1, 1);
    const at::Tensor c = cos.view({1, t, 1, hd / 2}), s = sin.view({1, t, 1, hd / 2}) * direction;
    const at::Tensor y = wrap(out).view({in.dim(0), t, in.dim(2), hd / 2, 2});
    at::Tensor y0 = y.select(-1, 0), y1 = y.select(-1, 1);
    at::sub_out(y0, x0 * c, x1 * s);
    at::add_out(y1, x0 * s, x1 * c);
  }

  std::pair<at::Tensor, at::Tensor> rope_tables(int64_t pos, int64_t t, int64_t hd, float theta) {
    if (!rope_cos_.defined() || rope_hd_ != hd || rope_theta_ != theta ||
        rope_positions_ < pos + t) {
      const int64_t n = std::max<int64_t>(pos + t, 2 * rope_positions_);
      std::vector<float> c(static_cast<size_t>(n * hd / 2)), s(c.size());
      for (int64_t p = 0; p < n; ++p)
        for (int64_t i = 0; i < hd / 2; ++i) {
          const double a = static_cast<double>(p) *
                           std::pow(static_cast<double>(theta),
                                    -2.0 * static_cast<double>(i) / static_cast<double>(hd));
          c[static_cast<size_t>(p * hd / 2 + i)] = static_cast<float>(std::cos(a));
          s[static_cast<size_t>(p * hd / 2 + i)] = static_cast<float>(std::sin(a));
        }
      const auto host = at::TensorOptions().dtype(at::kFloat);
      rope_cos_ = at::from_blob(c.data(), {n, hd / 2}, host).to(device_);
      rope_sin_ = at::from_blob(s.data(), {n, hd / 2}, host).to(device_);
      if (device_.is_cpu()) rope_cos_ = rope_cos_.clone(), rope_sin_ = rope_sin_.clone();
      rope_hd_ = hd;
      rope_theta_ = theta;
      rope_positions_ = n;
    }
    return {rope_cos_.narrow(0, pos, t), rope_sin_.narrow(0, pos, t)};
  }

#ifdef CAPBENCH_TORCH_CUDA
  // bf16 operands on the GPU: one cuBLAS call, fp32 accumulation, the result rounded once to C's
  // dtype, fp32 (weight gradients) or bf16 (beta·C included), as ATen 2.x's mm cannot write a
  // wider output.
  void cublas_bf16_gemm(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args) {
    const ColumnMajorGemm g = column_major_gemm(
        c.rows(), c.cols(), args.trans_a ? a.rows() : a.cols(), args.trans_a, args.trans_b);
    const cublasHandle_t handle = at::cuda::getCurrentCUDABlasHandle();  // on the current stream
    const float alpha = args.alpha, beta = args.beta;
    const cudaDataType c_type = c.dtype == DType::f32 ? CUDA_R_32F : CUDA_R_16BF;
    auto op = [](bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; };
    auto i32 = [](int64_t x) { return static_cast<int>(x); };
    const cublasStatus_t status = cublasGemmEx(
        handle, op(g.trans_first), op(g.trans_second), i32(g.m), i32(g.n), i32(g.k), &alpha, b.data,
        CUDA_R_16BF, i32(g.ld_first), a.data, CUDA_R_16BF, i32(g.ld_second), &beta, c.data, c_type,
        i32(g.ld_c), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (status != CUBLAS_STATUS_SUCCESS)
      throw std::runtime_error(std::string("cublasGemmEx failed: ") +
                               cublasGetStatusString(status));
  }

  // Every op of this backend then runs on the green context's stream, on sm_count SMs.
  void confine_to_sms(int sm_count) {
#ifdef CAPBENCH_HAVE_CUDA_PACING
    partition_ = std::make_unique<SmPartition>(device_.index(), sm_count);
    previous_stream_.emplace(at::cuda::getCurrentCUDAStream(device_.index()));
    at::cuda::setCurrentCUDAStream(at::cuda::getStreamFromExternal(
        static_cast<cudaStream_t>(partition_->stream()), device_.index()));
#else
    throw std::runtime_error("torch:cuda cannot confine to " + std::to_string(sm_count) +
                             " SMs: this build has no CUDA library (no CUDA compiler found)");
#endif
  }
#endif

  [[noreturn]] static void throw_no_device_pacing() {
    throw std::runtime_error(
        "torch:cuda cannot pace: this build has no CUDA pacing library (no CUDA compiler found)");
  }
#ifdef CAPBENCH_HAVE_CUDA_PACING
  CudaPacer& cuda_pacer() {
    if (!cuda_pacer_) cuda_pacer_ = std::make_unique<CudaPacer>();
    return *cuda_pacer_;
  }
  std::unique_ptr<CudaPacer> cuda_pacer_;
#endif

  at::Tensor wrap(const Tensor& t) const {
    std::vector<int64_t> sizes(t.shape.begin(), t.shape.begin() + t.rank);
    return at::from_blob(t.data, sizes,
                         at::TensorOptions().dtype(scalar_type(t.dtype)).device(device_));
  }
  at::Tensor wrap2d(const Tensor& t) const {
    return wrap(t.reshaped({t.rows(), t.cols()}));
  }
  at::Tensor bytes_view(void* p, size_t n) const {
    return at::from_blob(p, {static_cast<int64_t>(n)},
                         at::TensorOptions().dtype(at::kByte).device(device_));
  }
  static at::Tensor host_bytes(void* p, size_t n) {
    return at::from_blob(p, {static_cast<int64_t>(n)}, at::TensorOptions().dtype(at::kByte));
  }

  at::Device device_;
#ifdef CAPBENCH_HAVE_CUDA_PACING
  // First member, so destroyed last: the tensors and graphs made on its stream go before it.
  std::unique_ptr<SmPartition> partition_;
#endif
  int threads_ = 0;
  std::mutex mutex_;
  std::unordered_map<void*, at::Tensor> allocations_;
  HostPacer pacer_;
  at::Tensor rope_cos_, rope_sin_;
  at::Tensor flash_philox_seed_, flash_philox_offset_;  // the last flash forward's
#ifdef CAPBENCH_TORCH_CUDA
  std::vector<std::unique_ptr<at::cuda::CUDAGraph>> graphs_;
  std::unique_ptr<at::cuda::CUDAGraph> capturing_;
  std::optional<c10::cuda::CUDAStreamGuard> capture_stream_;
  at::cuda::MempoolId_t graph_pool_{0, 0};
  std::optional<at::cuda::CUDAStream> previous_stream_;  // set while confined to a partition
#endif
  int64_t rope_hd_ = 0, rope_positions_ = 0;
  float rope_theta_ = 0;
};

}  // namespace

void register_torch_backends(Registry& registry) {
  registry.add({"torch", "cpu", "libtorch (ATen) on the CPU", false,
                [](const BackendOptions& o) -> std::unique_ptr<Backend> {
                  return std::make_unique<TorchBackend>(at::Device(at::kCPU), o);
                }});
#ifdef CAPBENCH_TORCH_CUDA
  if (at::hasCUDA())
    registry.add({"torch:cuda", "cuda", "libtorch (ATen) on the GPU", false,
                  [](const BackendOptions& o) -> std::unique_ptr<Backend> {
                    return std::make_unique<TorchBackend>(at::Device(at::kCUDA, 0), o);
                  }});
  else
    registry.add_unavailable({"torch:cuda", "cuda",
                              std::string("libtorch ") + TORCH_VERSION +
                                  " has CUDA, but sees no CUDA device (driver, "
                                  "CUDA_VISIBLE_DEVICES)"});
#else
  registry.add_unavailable(
      {"torch:cuda", "cuda",
       std::string("this build's libtorch ") + TORCH_VERSION +
           " is a CPU build; configure against a CUDA PyTorch (README: NVIDIA GPUs)"});
#endif
}

}  // namespace capbench
