// torch on an NVIDIA GPU (a CUDA libtorch 2.x): what only the GPU has. bf16 products through one
// cuBLAS call; on libtorch 2.1 or later flash attention and the fused AdamW; CUDA graphs; green
// contexts to run on a subset of the SMs; pacing kernels on the op's stream. Compiled when the
// libtorch found at configure time has CUDA (and type-checked without one:
// tests/torch_cuda_syntax/check.sh).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <torch/version.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "backends/cuda/gemm_layout.h"
#include "backends/shape_checks.h"
#include "backends/torch/torch_backend.h"
#include "backends/torch/torch_common.h"

// Fused kernels of libtorch 2.x on CUDA: flash attention (FlashAttention-2, bf16/fp16, head
// dim <= 256) with its backward, and the fused AdamW that torch.optim.AdamW(fused=True) runs.
// Their C++ signatures took their current form in 2.1.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define CAPBENCH_TORCH_FUSED_KERNELS 1
#endif
// From 2.5 the flash kernels take fewer K/V heads than query heads (grouped-query attention),
// as FlashAttention-2 itself does: K/V as they are, dK and dV summed over each group inside.
// Before, each kv head is repeated for its group and the gradients summed here.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
#define CAPBENCH_TORCH_FLASH_GQA 1
#endif
#ifdef CAPBENCH_HAVE_CUDA_PACING
#include "backends/cuda/green_context.h"
#include "backends/cuda/pacing.h"
#endif

namespace capbench {
namespace {

class TorchCudaBackend final : public TorchBackend {
 public:
  explicit TorchCudaBackend(const BackendOptions& options)
      : TorchBackend(device_of(options.device_ordinal)) {
    // The thread's current device becomes ours while the backend lives: cuBLAS handles, the
    // pacer's memory and a green context are the current device's.
    previous_device_ = c10::cuda::current_device();
    c10::cuda::set_device(device_.index());
    // Every op, the eager first run of a step and every capture run on one stream of the
    // backend's own (a green context's when confined): resources a stream creates lazily (cuBLAS
    // workspaces) are made once, before any capture, and captures never need a side stream.
    previous_stream_.emplace(at::cuda::getCurrentCUDAStream(device_.index()));
    if (options.sm_count > 0)
      confine_to_sms(options.sm_count);
    else
      at::cuda::setCurrentCUDAStream(
          at::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index()));
    stream_.emplace(at::cuda::getCurrentCUDAStream(device_.index()));
#ifdef CAPBENCH_HAVE_CUDA_PACING
    cuda_pacer_ = std::make_unique<CudaPacer>();  // never lazily: inside a capture it could not
#endif
  }
  // With two backends alive (the fidelity check's whole GPU and k SMs), the one in use makes
  // its stream, and so its green context, the thread's current one again.
  void activate() override {
    c10::cuda::set_device(device_.index());
    at::cuda::setCurrentCUDAStream(*stream_);
  }
  ~TorchCudaBackend() override {
    // Everything queued finishes before the memory, graphs, pacer and green context it uses go
    // (this class's members go before the base's, which hold the allocations).
    try {
      synchronize();
    } catch (...) {  // never throw from a destructor
    }
    graphs_.clear();
    release_memory();
    // The current stream and device are per thread and outlive the backend: give the old ones
    // back.
    at::cuda::setCurrentCUDAStream(*previous_stream_);
    c10::cuda::set_device(previous_device_);
  }

  DeviceInfo device_info() const override {
    DeviceInfo info;
    info.backend = "torch:cuda";
    info.device_kind = "cuda";
    info.library_version = std::string("libtorch ") + TORCH_VERSION;
    const cudaDeviceProp* prop = at::cuda::getDeviceProperties(device_.index());
    info.name = prop->name;
    info.memory_bytes = prop->totalGlobalMem;
#ifdef CAPBENCH_HAVE_CUDA_PACING
    if (partition_) info.name += ", " + sm_partition_label(*partition_);
#endif
    return info;
  }

  // ---- ops run the GPU's own way --------------------------------------------------------------

  void matmul(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args) override {
    if (a.dtype != DType::bf16) return TorchBackend::matmul(c, a, b, args);
    check_matmul(c, a, b, args);
    cublas_bf16_gemm(c, a, b, args);
  }

  void attention_fwd(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                     const Tensor& v, const AttentionArgs& args) override {
#ifdef CAPBENCH_TORCH_FUSED_KERNELS
    if (flash_applies(q, args)) {
      check_attention(out, lse, q, k, v);
      Grouped g(q, k);
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
    TorchBackend::attention_fwd(out, lse, q, k, v, args);
  }

  void attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                     const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                     const Tensor& lse, const AttentionArgs& args) override {
#ifdef CAPBENCH_TORCH_FUSED_KERNELS
    if (flash_applies(q, args)) {
      check_attention_bwd(dq, dk, dv, dout, q, k, v, out, lse);
      Grouped g(q, k);
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
    TorchBackend::attention_bwd(dq, dk, dv, dout, q, k, v, out, lse, args);
  }

  void attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                        const Tensor& v_cache, const DecodeArgs& args) override {
#ifdef CAPBENCH_TORCH_FUSED_KERNELS
    if (q.dim(1) == 1 && flash_applies(q, AttentionArgs{})) {
      check_attention_decode(out, q, k_cache, v_cache, args);
      Grouped g(q, k_cache);
      const int64_t ctx = args.pos + g.t;
      // One new token: the G query heads of each kv head folded into rows ([B,K,G,D]) see the
      // whole cache, no mask - flash, on the bf16 cache read in place. (The fold is the one the
      // shared path runs and the tests check.)
      const at::Tensor qg = g.fold(wrap(q));
      const at::Tensor kt = heads_first(wrap(k_cache).narrow(1, 0, ctx));
      const at::Tensor vt = heads_first(wrap(v_cache).narrow(1, 0, ctx));
      auto result = at::_scaled_dot_product_flash_attention(qg, kt, vt, /*dropout_p=*/0.0,
                                                            /*is_causal=*/false,
                                                            /*return_debug_mask=*/false, g.scale);
      wrap(out).copy_(g.unfold(std::get<0>(result)));
      return;
    }
#endif
    TorchBackend::attention_decode(out, q, k_cache, v_cache, args);
  }

  void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
             const AdamWArgs& args) override {
#ifdef CAPBENCH_TORCH_FUSED_KERNELS
    check_adamw(params, grads, m, v, args);
    const at::Tensor p = wrap(params), g = wrap(grads), mt = wrap(m), vt = wrap(v);
    // One kernel over the flat buffers; it reads the step from device memory.
    const at::Tensor step = args.step_tensor.data
                                ? wrap(args.step_tensor)
                                : at::full({1}, static_cast<double>(args.step), p.options());
    at::_fused_adamw_({p}, {g}, {mt}, {vt}, {}, {step}, args.lr, args.beta1, args.beta2,
                      args.weight_decay, args.eps, /*amsgrad=*/false, /*maximize=*/false);
#else
    if (!args.step_tensor.data) return TorchBackend::adamw(params, grads, m, v, args);
    check_adamw(params, grads, m, v, args);
    const at::Tensor p = wrap(params), mt = wrap(m), vt = wrap(v);
    adamw_moments(p, wrap(grads), mt, vt, args);
    // The step stays on the device (a captured graph replays it): bias corrections as tensors.
    const at::Tensor step = wrap(args.step_tensor);
    const at::Tensor bc1 = 1.0 - at::pow(static_cast<double>(args.beta1), step);
    const at::Tensor bc2 = 1.0 - at::pow(static_cast<double>(args.beta2), step);
    const at::Tensor denom = (vt / bc2).sqrt_().add_(args.eps);
    p.sub_((mt / denom).mul_(bc1.reciprocal().mul_(static_cast<double>(args.lr))));
#endif
  }

  // ---- timeline ---------------------------------------------------------------------------------

  void synchronize() override {
    // The backend's stream (a green context's is not the primary context's work: waited for by
    // name), then the device.
    at::cuda::getCurrentCUDAStream(device_.index()).synchronize();
    cudaDeviceSynchronize();
  }

  // CUDA graphs, captured on the backend's stream (never the legacy default stream, which cannot
  // capture) and replayed on it. The graphs share one memory pool, safe because no temporary
  // outlives the op that made it. A step's first run is eager (the workload sees to it), so lazy
  // initialisation - cuBLAS handles and workspaces, RoPE tables - stays outside the capture.
  Support can_capture() const override {
    return Support::yes();
  }
  void begin_capture() override {
    if (capturing_) throw std::logic_error("begin_capture: a capture is already open");
    synchronize();
    if (graph_pool_.first == 0 && graph_pool_.second == 0)
      graph_pool_ = at::cuda::graph_pool_handle();
    capturing_ = std::make_unique<at::cuda::CUDAGraph>();
    try {
      capturing_->capture_begin(graph_pool_);
    } catch (...) {
      capturing_.reset();
      throw;
    }
  }
  int end_capture() override {
    if (!capturing_) throw std::logic_error("end_capture without begin_capture");
    std::unique_ptr<at::cuda::CUDAGraph> graph = std::move(capturing_);
    graph->capture_end();
    graphs_.push_back(std::move(graph));
    return static_cast<int>(graphs_.size()) - 1;
  }
  void replay(int graph) override {
    if (graph < 0 || graph >= static_cast<int>(graphs_.size()))
      throw std::out_of_range("replay: no graph " + std::to_string(graph));
    graphs_[static_cast<size_t>(graph)]->replay();
  }
  uint64_t device_peak_bytes() override {
    // allocated_bytes[0]: the aggregate over the small and large pools.
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_.index());
    return static_cast<uint64_t>(stats.allocated_bytes[0].peak);
  }
  void reset_device_peak_bytes() override {
    c10::cuda::CUDACachingAllocator::resetPeakStats(device_.index());
  }

  // Pace kernels on the current stream, captured into CUDA graphs with the ops, when the CUDA
  // pacing library is built.
  int pace_slots() const override {
#ifdef CAPBENCH_HAVE_CUDA_PACING
    return CudaPacer::kSlots;
#else
    return 0;
#endif
  }
  void stamp(int slot) override {
#ifdef CAPBENCH_HAVE_CUDA_PACING
    cuda_pacer_->stamp(at::cuda::getCurrentCUDAStream().stream(), slot);
#else
    throw_no_device_pacing(slot);
#endif
  }
  void pace(int slot, const PaceRule& rule) override {
#ifdef CAPBENCH_HAVE_CUDA_PACING
    cuda_pacer_->pace(at::cuda::getCurrentCUDAStream().stream(), slot, rule);
#else
    (void)rule;
    throw_no_device_pacing(slot);
#endif
  }

 private:
  // The device of `ordinal`, modulo the visible count.
  static at::Device device_of(int ordinal) {
    const int devices = static_cast<int>(c10::cuda::device_count());
    if (devices < 1) throw std::runtime_error("torch:cuda: no CUDA device is visible");
    return at::Device(at::kCUDA,
                      static_cast<c10::DeviceIndex>((ordinal % devices + devices) % devices));
  }

#ifdef CAPBENCH_TORCH_FUSED_KERNELS
  bool flash_applies(const Tensor& q, const AttentionArgs& args) const {
    return (q.dtype == DType::bf16 || q.dtype == DType::f16) && args.causal && q.dim(3) % 8 == 0 &&
           q.dim(3) <= 256;
  }
#ifdef CAPBENCH_TORCH_FLASH_GQA
  // [B,T,K,D] -> [B,K,T,D]: the kernels read each kv head for its group of query heads.
  static at::Tensor flash_heads(const at::Tensor& x, const Grouped&) {
    return heads_first(x);
  }
  // Their K/V gradients come per kv head already.
  static at::Tensor flash_group_sum(const at::Tensor& x, const Grouped&) {
    return x;
  }
#else
  // [B,T,K,D] -> [B,H,T,D]: each kv head repeated for its G query heads (G = 1: a view).
  static at::Tensor flash_heads(const at::Tensor& x, const Grouped& g) {
    const at::Tensor t = heads_first(x);
    return g.group == 1 ? t : t.repeat_interleave(g.group, 1);
  }
  // [B,H,T,D] gradients of the repeated heads -> [B,K,T,D], summed over each group.
  static at::Tensor flash_group_sum(const at::Tensor& x, const Grouped& g) {
    return g.group == 1 ? x : x.reshape({g.b, g.kv, g.group, g.t, g.d}).sum(2);
  }
#endif
#endif

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
    at::cuda::setCurrentCUDAStream(at::cuda::getStreamFromExternal(
        static_cast<cudaStream_t>(partition_->stream()), device_.index()));
#else
    throw std::runtime_error("torch:cuda cannot confine to " + std::to_string(sm_count) +
                             " SMs: this build has no CUDA library (no CUDA compiler found)");
#endif
  }

  [[noreturn]] static void throw_no_device_pacing(int) {
    throw std::runtime_error(
        "torch:cuda cannot pace: this build has no CUDA pacing library (no CUDA compiler found)");
  }
#ifdef CAPBENCH_HAVE_CUDA_PACING
  // First member, so destroyed last: the tensors and graphs made on its stream go before it.
  std::unique_ptr<SmPartition> partition_;
  std::unique_ptr<CudaPacer> cuda_pacer_;
#endif
  at::Tensor flash_philox_seed_, flash_philox_offset_;  // the last flash forward's
  std::vector<std::unique_ptr<at::cuda::CUDAGraph>> graphs_;
  std::unique_ptr<at::cuda::CUDAGraph> capturing_;
  at::cuda::MempoolId_t graph_pool_{0, 0};
  c10::DeviceIndex previous_device_ = 0;                 // the thread's device before ours
  std::optional<at::cuda::CUDAStream> previous_stream_;  // the thread's stream before ours
  std::optional<at::cuda::CUDAStream> stream_;           // ours
};

}  // namespace

std::unique_ptr<Backend> make_torch_cuda_backend(const BackendOptions& options) {
  return std::make_unique<TorchCudaBackend>(options);
}

bool torch_sees_cuda() {
  return at::hasCUDA();
}

}  // namespace capbench
