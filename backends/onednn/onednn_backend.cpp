// The oneDNN backend (CPU). Matmuls — the linear layers and attention's QKᵀ, PV and their
// gradients, as strided 2-D matrices — run through oneDNN's matmul primitive; softmax forward and
// backward and the swish of SwiGLU through theirs. What oneDNN 2.6 does not have (RMSNorm, RoPE,
// masking, cross-entropy, AdamW, embedding) is plain C++ parallelised with OpenMP, the runtime
// oneDNN itself uses here. Primitives are created once per shape and cached.
//
// fp32 and bf16 (on CPUs with native bf16): loops are templated over the stored element type and
// compute in fp32; bf16 matmuls accumulate in fp32 and may write fp32 (weight gradients).
#include "backends/onednn/onednn_backend.h"

#include <cstdlib>
#include <memory>
#include <thread>

#include "backends/onednn/onednn_attention.h"
#include "backends/onednn/onednn_avx512.h"
#include "backends/onednn/onednn_common.h"
#include "backends/onednn/onednn_primitives.h"
#include "backends/onednn/onednn_small_product.h"
#include "backends/rope_table.h"
#include "backends/shape_checks.h"

namespace capbench {
namespace {

using namespace onednn;

class OnednnBackend final : public Backend {
 public:
  explicit OnednnBackend(const BackendOptions& options)
      : native_bf16_(cpu_runs_avx512(true)), avx512_(cpu_runs_avx512(false)) {
    threads_ = options.threads > 0 ? options.threads
                                   : static_cast<int>(std::thread::hardware_concurrency());
    omp_set_num_threads(threads_);
  }
  void activate() override { omp_set_num_threads(threads_); }

  DeviceInfo device_info() const override {
    DeviceInfo info;
    info.backend = "onednn";
    info.device_kind = "cpu";
    info.name = host_cpu_name();
    info.threads = threads_;
    const dnnl_version_t* v = dnnl_version();
    info.library_version = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) +
                           "." + std::to_string(v->patch);
    if (avx512_) info.library_version += " + own AVX-512 decode kernels";
    return info;
  }

  Support supports(OpId, DType dtype) const override {
    if (dtype == DType::f32) return Support::yes();
    if (dtype == DType::bf16) {
      if (native_bf16_) return Support::yes();
      return Support::no("this CPU has no native bf16 (avx512_bf16); oneDNN would emulate it");
    }
    return Support::no(std::string("the onednn backend runs fp32 and bf16, not ") +
                       dtype_name(dtype));
  }

  void* alloc(size_t bytes) override { return host_alloc(bytes); }
  void free(void* ptr) override { host_free(ptr); }
  void copy_to_device(void* dst, const void* src, size_t bytes) override {
    parallel_copy(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    parallel_copy(dst, src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override { parallel_copy(dst, src, bytes); }
  void fill(const Tensor& t, float value) override {
    const int64_t n = t.numel();
    if (t.dtype == DType::i32) {
      std::fill_n(t.as<int32_t>(), n, static_cast<int32_t>(value));
      return;
    }
    with_element_type(t.dtype, "fill", [&](auto tag) {
      using T = decltype(tag);
      T v;
      store(&v, value);
      T* p = t.as<T>();
#pragma omp parallel for schedule(static) if (parallel_worth(n))
      for (int64_t i = 0; i < n; ++i) p[i] = v;
    });
  }

  // ---- ops ----------------------------------------------------------------------------------
  // Each op runs at its activations' element type T (float or BF16), computing in fp32.

  void embedding_fwd(const Tensor& out, const Tensor& tokens, const Tensor& table) override {
    check_embedding(out, tokens, table);
    require_same_dtype(out, table, "embedding_fwd out/table");
    const int64_t c = table.dim(1), n = tokens.numel(), vocab = table.dim(0);
    for (int64_t i = 0; i < n; ++i)
      if (tokens.as<int32_t>()[i] < 0 || tokens.as<int32_t>()[i] >= vocab)
        throw std::out_of_range("embedding_fwd: token id out of range");
    const size_t row_bytes = dtype_size(table.dtype) * static_cast<size_t>(c);
    const char* src = static_cast<const char*>(table.data);
    char* dst = static_cast<char*>(out.data);
#pragma omp parallel for schedule(static) if (parallel_worth(n * c))
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(dst + static_cast<size_t>(i) * row_bytes,
                  src + static_cast<size_t>(tokens.as<int32_t>()[i]) * row_bytes, row_bytes);
  }

  void embedding_bwd(const Tensor& dtable, const Tensor& dout, const Tensor& tokens) override {
    check_embedding(dout, tokens, dtable);
    require_dtype(dtable, DType::f32, "embedding_bwd dtable");
    with_element_type(dout.dtype, "embedding_bwd", [&](auto tag) {
      using T = decltype(tag);
      const int64_t c = dtable.dim(1), n = tokens.numel();
      const T* dy = dout.as<T>();
      float* dt = dtable.as<float>();
      // Columns are split across threads, so rows hit by several tokens never race.
#pragma omp parallel for schedule(static) if (parallel_worth(n * c))
      for (int64_t j = 0; j < c; ++j)
        for (int64_t i = 0; i < n; ++i) dt[tokens.as<int32_t>()[i] * c + j] += load(dy + i * c + j);
    });
  }

  void rmsnorm_fwd(const Tensor& out, const Tensor& rstd, const Tensor& in, const Tensor& weight,
                   const RmsNormArgs& args) override {
    check_rmsnorm(out, rstd, in, weight);
    require_same_dtype(in, weight, "rmsnorm_fwd in/weight");
    with_element_type(in.dtype, "rmsnorm_fwd", [&](auto tag) {
      using T = decltype(tag);
      const int64_t rows = in.rows(), c = in.cols();
      const T* w = weight.as<T>();
#pragma omp parallel for schedule(static) if (parallel_worth(rows * c))
      for (int64_t r = 0; r < rows; ++r) {
        const T* x = in.as<T>() + r * c;
        T* y = out.as<T>() + r * c;
        float ss = 0;  // fp32 with simd lanes: c ≤ a few thousand terms, error ~1e-7·sqrt(c)
#pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < c; ++j) ss += load(x + j) * load(x + j);
        const float rs = 1.0f / std::sqrt(ss / static_cast<float>(c) + args.eps);
        rstd.as<float>()[r] = rs;
        for (int64_t j = 0; j < c; ++j) store(y + j, load(x + j) * rs * load(w + j));
      }
    });
  }

  void rmsnorm_bwd(const Tensor& din, const Tensor& dweight, const Tensor& dout, const Tensor& in,
                   const Tensor& weight, const Tensor& rstd) override {
    check_rmsnorm(dout, rstd, in, weight);
    check_same_shape(din, in, "rmsnorm_bwd din");
    require_same_dtype(in, weight, "rmsnorm_bwd in/weight");
    require_dtype(dweight, DType::f32, "rmsnorm_bwd dweight");
    with_element_type(in.dtype, "rmsnorm_bwd", [&](auto tag) {
      using T = decltype(tag);
      const int64_t rows = in.rows(), c = in.cols();
      const T* w = weight.as<T>();
      const float* rstd_p = rstd.as<float>();
      // One pass over the rows: din row by row, and the weight gradient (a reduction over rows)
      // into one partial sum per thread, added up at the end.
      const int teams = parallel_worth(rows * c) ? omp_get_max_threads() : 1;
      std::vector<float> partial(static_cast<size_t>(teams * c), 0.0f);
#pragma omp parallel num_threads(teams)
      {
        float* acc = partial.data() + static_cast<int64_t>(omp_get_thread_num()) * c;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
          const T* x = in.as<T>() + r * c;
          const T* dy = dout.as<T>() + r * c;
          T* dx = din.as<T>() + r * c;
          const float rs = rstd_p[r];
          float dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t j = 0; j < c; ++j) dot += load(w + j) * load(dy + j) * load(x + j);
          const float k = rs * rs * rs * dot / static_cast<float>(c);
          for (int64_t j = 0; j < c; ++j) {
            const float xj = load(x + j), dyj = load(dy + j);
            store(dx + j, load(dx + j) + rs * load(w + j) * dyj - k * xj);
            acc[j] += dyj * xj * rs;
          }
        }
      }
      float* dw = dweight.as<float>();
      for (int t = 0; t < teams; ++t)
        for (int64_t j = 0; j < c; ++j) dw[j] += partial[static_cast<size_t>(t * c + j)];
    });
  }

  void matmul(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args) override {
    check_matmul(c, a, b, args);
    if (takes_small_product(c, a, b, args)) {
      small_product(c, a, b);
      return;
    }
    const Mat A = args.trans_a ? mat(a).t() : mat(a);
    const Mat B = args.trans_b ? mat(b).t() : mat(b);
    prims_.gemm(mat(c), A, B, args.alpha, args.beta);
  }

  void rope_fwd(const Tensor& out, const Tensor& in, const RopeArgs& args) override {
    check_rope(out, in);
    with_element_type(in.dtype, "rope_fwd",
                      [&](auto tag) { rotate<decltype(tag)>(out, in, args, 1.0f); });
  }
  void rope_bwd(const Tensor& din, const Tensor& dout, const RopeArgs& args) override {
    check_rope(din, dout);
    with_element_type(dout.dtype, "rope_bwd",
                      [&](auto tag) { rotate<decltype(tag)>(din, dout, args, -1.0f); });
  }

  void attention_fwd(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                     const Tensor& v, const AttentionArgs& args) override {
    check_attention(out, lse, q, k, v);
    with_element_type(q.dtype, "attention_fwd", [&](auto tag) {
      onednn::attention_fwd<decltype(tag)>(prims_, out, lse, q, k, v, args.causal);
    });
  }

  void attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                     const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                     const Tensor& lse, const AttentionArgs& args) override {
    check_attention_bwd(dq, dk, dv, dout, q, k, v, out, lse);
    with_element_type(q.dtype, "attention_bwd", [&](auto tag) {
      onednn::attention_bwd<decltype(tag)>(prims_, dq, dk, dv, dout, q, k, v, args.causal);
    });
  }

  void kv_append(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                 const KvAppendArgs& args) override {
    check_kv_append(k_cache, v_cache, k, v, args);
    require_same_dtype(k_cache, k, "kv_append k_cache/k");
    const size_t elt = dtype_size(k.dtype);
    const size_t row = static_cast<size_t>(k.dim(2) * k.dim(3)) * elt;
    auto at = [elt](const Tensor& t, int64_t b, int64_t s) {
      return static_cast<char*>(t.data) + static_cast<size_t>(idx4(t, b, s, 0)) * elt;
    };
    for (int64_t b = 0; b < k.dim(0); ++b)
      for (int64_t s = 0; s < k.dim(1); ++s) {
        std::memcpy(at(k_cache, b, args.pos + s), at(k, b, s), row);
        std::memcpy(at(v_cache, b, args.pos + s), at(v, b, s), row);
      }
  }

  void attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                        const Tensor& v_cache, const DecodeArgs& args) override {
    check_attention_decode(out, q, k_cache, v_cache, args);
    require_same_dtype(q, k_cache, "attention_decode q/k_cache");
    with_element_type(q.dtype, "attention_decode", [&](auto tag) {
      onednn::attention_decode<decltype(tag)>(out, q, k_cache, v_cache, args.pos);
    });
  }

  void swiglu_fwd(const Tensor& out, const Tensor& gate_up) override {
    check_swiglu(out, gate_up);
    require_same_dtype(out, gate_up, "swiglu_fwd out/gate_up");
    with_element_type(out.dtype, "swiglu_fwd", [&](auto tag) {
      using T = decltype(tag);
      const int64_t n = out.rows(), f = out.cols();
      const T* gu = gate_up.as<T>();
      T* y = out.as<T>();
      if (avx512_) {  // AVX-512: one pass, no primitive call (decode's 1×d_ff rows)
        swiglu_rows_lanes(y, gu, n, f);
        return;
      }
      // oneDNN's eltwise runs on a contiguous fp32 copy of the gate half: on the strided half it
      // fell to a slow path, and the copy is the conversion from bf16 anyway.
      scratch_a_.resize(static_cast<size_t>(n * f));
      float* g = scratch_a_.data();
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < f; ++j) g[r * f + j] = load(gu + r * 2 * f + j);
      prims_.swish_inplace(Mat{g, memory::data_type::f32, n, f, f, 1});
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < f; ++j)
          store(y + r * f + j, g[r * f + j] * load(gu + r * 2 * f + f + j));
    });
  }

  void swiglu_bwd(const Tensor& dgate_up, const Tensor& dout, const Tensor& gate_up) override {
    check_swiglu(dout, gate_up);
    check_same_shape(dgate_up, gate_up, "swiglu_bwd dgate_up");
    require_same_dtype(dout, gate_up, "swiglu_bwd dout/gate_up");
    with_element_type(dout.dtype, "swiglu_bwd", [&](auto tag) {
      using T = decltype(tag);
      const int64_t n = dout.rows(), f = dout.cols();
      const T* gu = gate_up.as<T>();
      const T* dy = dout.as<T>();
      T* dgu = dgate_up.as<T>();
      // d(gate) = (dy · up) · silu'(gate), d(up) = dy · silu(gate); the swish primitives run on
      // contiguous fp32 [N, F] scratch (see swiglu_fwd).
      scratch_a_.resize(static_cast<size_t>(n * f));
      scratch_b_.resize(static_cast<size_t>(n * f));
      float* g = scratch_a_.data();
      float* dg = scratch_b_.data();
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < f; ++j) {
          g[r * f + j] = load(gu + r * 2 * f + j);
          dg[r * f + j] = load(dy + r * f + j) * load(gu + r * 2 * f + f + j);
        }
      const Mat gate{g, memory::data_type::f32, n, f, f, 1};
      prims_.swish_backward(Mat{dg, memory::data_type::f32, n, f, f, 1}, gate);
      prims_.swish_inplace(gate);
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < f; ++j) {
          store(dgu + r * 2 * f + j, dg[r * f + j]);
          store(dgu + r * 2 * f + f + j, load(dy + r * f + j) * g[r * f + j]);
        }
    });
  }

  void add(const Tensor& out, const Tensor& a, const Tensor& b) override {
    check_same_shape(out, a, "add a");
    check_same_shape(out, b, "add b");
    with_element_type(out.dtype, "add", [&](auto tag) {
      using T = decltype(tag);
      const int64_t n = out.numel();
      const T *pa = a.as<T>(), *pb = b.as<T>();
      T* po = out.as<T>();
#pragma omp parallel for schedule(static) if (parallel_worth(n))
      for (int64_t i = 0; i < n; ++i) store(po + i, load(pa + i) + load(pb + i));
    });
  }

  void cross_entropy_fwd_bwd(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                             const Tensor& targets, const CrossEntropyArgs& args) override {
    check_cross_entropy(losses, dlogits, logits, targets);
    const int64_t rows = logits.rows(), vocab = logits.cols();
    for (int64_t r = 0; r < rows; ++r)
      if (targets.as<int32_t>()[r] < 0 || targets.as<int32_t>()[r] >= vocab)
        throw std::out_of_range("cross_entropy: target out of range");
    // Softmax through the primitive, in fp32 (bf16 logits are widened first); the loss and the
    // one-hot from it, rounded once at the end: p - 1 from a bf16-rounded p loses the gradient
    // of a confident row.
    with_element_type(logits.dtype, "cross_entropy_fwd_bwd", [&](auto tag) {
      using T = decltype(tag);
      constexpr bool wide = std::is_same_v<T, float>;
      float* x32 = wide ? logits.as<float>() : nullptr;
      float* p32 = wide ? dlogits.as<float>() : nullptr;
      if constexpr (!wide) {
        scratch_a_.resize(static_cast<size_t>(rows * vocab));
        scratch_b_.resize(static_cast<size_t>(rows * vocab));
        x32 = scratch_a_.data();
        p32 = scratch_b_.data();
        convert_elements(x32, logits.as<T>(), rows * vocab);
      }
      prims_.run_softmax(p32, x32, memory::data_type::f32, rows, vocab);
      const std::vector<int64_t> argmax = row_argmax(x32, rows, vocab);
#pragma omp parallel for schedule(static) if (parallel_worth(rows * vocab))
      for (int64_t r = 0; r < rows; ++r) {
        const float* x = x32 + r * vocab;
        const float* p = p32 + r * vocab;
        T* d = dlogits.as<T>() + r * vocab;
        const int32_t tgt = targets.as<int32_t>()[r];
        const int64_t at = argmax[static_cast<size_t>(r)];
        losses.as<float>()[r] = log_sum_exp_from_softmax(x[at], p[at]) - x[tgt];
        for (int64_t j = 0; j < vocab; ++j)
          store(d + j, (p[j] - (j == tgt ? 1.0f : 0.0f)) * args.dloss_scale);
      }
    });
  }

  void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
             const AdamWArgs& args) override {
    check_adamw(params, grads, m, v, args);
    const int64_t n = params.numel();
    const float b1 = args.beta1, b2 = args.beta2, lr = args.lr, eps = args.eps;
    const int64_t step = host_adamw_step(args);
    const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(b1), step));
    const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(b2), step));
    const float decay = 1.0f - lr * args.weight_decay;
    float *p = params.as<float>(), *pm = m.as<float>(), *pv = v.as<float>();
    const float* g = grads.as<float>();
    // One fused pass over the flat buffers.
#pragma omp parallel for schedule(static) if (parallel_worth(n))
    for (int64_t i = 0; i < n; ++i) {
      const float mi = b1 * pm[i] + (1 - b1) * g[i];
      const float vi = b2 * pv[i] + (1 - b2) * g[i] * g[i];
      pm[i] = mi;
      pv[i] = vi;
      p[i] = p[i] * decay - lr * (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    }
  }

  void convert(const Tensor& out, const Tensor& in) override {
    check_convert(out, in);
    with_element_type(out.dtype, "convert", [&](auto to) {
      with_element_type(in.dtype, "convert", [&](auto from) {
        convert_elements(out.as<decltype(to)>(), in.as<decltype(from)>(), in.numel());
      });
    });
  }

  void synchronize() override {}  // every primitive call waits for its work
  int pace_slots() const override {
    return HostPacer::kSlots;
  }
  void stamp(int slot) override {
    pacer_.stamp(slot);
  }
  void pace(int slot, const PaceRule& rule) override {
    pacer_.pace(slot, rule);
  }

 private:
  // y = x · Wᵀ with a few rows of x (decode's linear layers): the streaming kernel of
  // onednn_small_product.h instead of oneDNN's GEMM. At fp32 only one row: llama-350m's batch-8
  // fp32 decode step ran 1.06-1.14x slower through the kernel than through oneDNN (8 fp32 rows of
  // x, 32 KiB at K = 1024, no longer stay in L1 beside the stream), batch 1 0.65-0.82x faster.
  bool takes_small_product(const Tensor& c, const Tensor& a, const Tensor& b,
                           const MatmulArgs& args) const {
    const bool runs = a.dtype == DType::f32 ? avx512_ : a.dtype == DType::bf16 && native_bf16_;
    return runs && !args.trans_a && args.trans_b && args.alpha == 1.0f && args.beta == 0.0f &&
           a.rows() <= (a.dtype == DType::bf16 ? kSmallProductMaxRows : 1) && b.dtype == a.dtype &&
           (c.dtype == a.dtype || c.dtype == DType::f32);
  }

  // y = silu(gate) · up over [n, f] rows of gate_up = [gate | up], 16 lanes at a time.
  template <class T>
  CAPBENCH_AVX512 static void swiglu_rows_lanes(T* y, const T* gu, int64_t n, int64_t f) {
    const int64_t whole = f / 16 * 16;
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
    for (int64_t r = 0; r < n; ++r) {
      const T* gate = gu + r * 2 * f;
      const T* up = gate + f;
      for (int64_t j = 0; j < whole; j += 16) {
        const __m512 g = widen16(gate + j);
        const __m512 sigmoid = _mm512_div_ps(
            _mm512_set1_ps(1.0f),
            _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        narrow16(y + r * f + j, _mm512_mul_ps(_mm512_mul_ps(g, sigmoid), widen16(up + j)));
      }
      for (int64_t j = whole; j < f; ++j) {
        const float g = load(gate + j);
        store(y + r * f + j, g / (1.0f + std::exp(-g)) * load(up + j));
      }
    }
  }

  template <class T>
  void rotate(const Tensor& out, const Tensor& in, const RopeArgs& args, float direction) {
    const int64_t batch = in.dim(0), t = in.dim(1), heads = in.dim(2), hd = in.dim(3);
    rope_.ensure(args.theta, hd, args.pos_offset + t, args.max_positions);
    const float* cs_all = rope_.cos.data() + args.pos_offset * hd / 2;
    const float* sn_all = rope_.sin.data() + args.pos_offset * hd / 2;
#pragma omp parallel for collapse(2) schedule(static) if (parallel_worth(batch * t * heads * hd))
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t p = 0; p < t; ++p)
        for (int64_t h = 0; h < heads; ++h) {
          const T* x = in.as<T>() + idx4(in, b, p, h);
          T* y = out.as<T>() + idx4(out, b, p, h);
          const float* c = cs_all + p * hd / 2;
          const float* s = sn_all + p * hd / 2;
          for (int64_t i = 0; i < hd / 2; ++i) {
            const float x0 = load(x + 2 * i), x1 = load(x + 2 * i + 1);
            const float sine = direction * s[i];
            store(y + 2 * i, x0 * c[i] - x1 * sine);
            store(y + 2 * i + 1, x0 * sine + x1 * c[i]);
          }
        }
  }

  void parallel_copy(void* dst, const void* src, size_t bytes) {
    if (dst == src || bytes == 0) return;
    const size_t chunk = std::max<size_t>(bytes / static_cast<size_t>(threads_) + 1, 1 << 16);
    const int64_t pieces = static_cast<int64_t>((bytes + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (parallel_worth(static_cast <int64_t>(bytes / 4)))
    for (int64_t i = 0; i < pieces; ++i) {
      const size_t at = static_cast<size_t>(i) * chunk;
      std::memmove(static_cast<char*>(dst) + at, static_cast<const char*>(src) + at,
                   std::min(chunk, bytes - at));
    }
  }

  Primitives prims_;
  int threads_ = 1;
  HostPacer pacer_;
  RopeTable rope_;
  // fp32 scratch that SwiGLU and cross-entropy borrow (ops run one at a time).
  std::vector<float> scratch_a_, scratch_b_;
  // avx512_bf16 (AMX CPUs have it too): bf16 dot products in hardware, which both oneDNN and
  // the backend's own kernels need. Without them oneDNN would emulate bf16, which measures the
  // emulation, not the chip.
  bool native_bf16_ = false;
  bool avx512_ = false;  // AVX-512F and BW: the backend's own kernels at fp32
};

}  // namespace

void register_onednn_backends(Registry& registry) {
  registry.add({"onednn", "cpu", "oneDNN primitives + OpenMP C++ on the CPU", false,
                [](const BackendOptions& o) -> std::unique_ptr<Backend> {
                  return std::make_unique<OnednnBackend>(o);
                }});
}

}  // namespace capbench
