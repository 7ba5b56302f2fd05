// The oneDNN backend (CPU). Matmuls — the linear layers and attention's QKᵀ, PV and their
// gradients, as strided 2-D matrices — run through oneDNN's matmul primitive; softmax forward and
// backward and the swish of SwiGLU through theirs. What oneDNN 2.6 does not have (RMSNorm, RoPE,
// masking, cross-entropy, AdamW, embedding) is plain C++ parallelised with OpenMP, the runtime
// oneDNN itself uses here. Primitives are created once per shape and cached.
//
// fp32 and bf16 (on CPUs with native bf16): loops are templated over the stored element type and
// compute in fp32; bf16 matmuls accumulate in fp32 and may write fp32 (weight gradients).
#include "backends/onednn/onednn_backend.h"

#include <omp.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "backends/bf16.h"
#include "backends/shape_checks.h"

namespace capbench {
namespace {

using dnnl::memory;

memory::data_type dnnl_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return memory::data_type::f32;
    case DType::bf16:
      return memory::data_type::bf16;
    default:
      throw std::invalid_argument(std::string("onednn: no ") + dtype_name(dtype) + " support");
  }
}
template <class T>
constexpr memory::data_type dnnl_type_of() {
  return std::is_same_v<T, float> ? memory::data_type::f32 : memory::data_type::bf16;
}

// Runs fn(T{}) with T the element type of `dtype`: float or BF16.
template <class Fn>
void with_element_type(DType dtype, const char* op, Fn&& fn) {
  if (dtype == DType::f32)
    fn(float{});
  else if (dtype == DType::bf16)
    fn(BF16{});
  else
    throw std::invalid_argument(std::string("onednn ") + op + ": no " + dtype_name(dtype) +
                                " support");
}

// A strided matrix: element (i, j) at data[i·row_stride + j·col_stride], of type dt.
struct Mat {
  void* data;
  memory::data_type dt;
  int64_t rows, cols, row_stride, col_stride;
  Mat t() const { return {data, dt, cols, rows, col_stride, row_stride}; }
};

Mat mat(const Tensor& t) {
  return {t.data, dnnl_type(t.dtype), t.rows(), t.cols(), t.cols(), 1};
}

// A strided batch of matrices: [d0, d1, rows, cols], element strides s.
struct Mat4 {
  void* data;
  memory::data_type dt;
  std::array<int64_t, 4> d, s;
  // The last two dimensions swapped.
  Mat4 t() const { return {data, dt, {d[0], d[1], d[3], d[2]}, {s[0], s[1], s[3], s[2]}}; }
};

// A contiguous [d0, d1, rows, cols] buffer of T.
template <class T>
Mat4 dense4(T* p, int64_t d0, int64_t d1, int64_t rows, int64_t cols) {
  return {p, dnnl_type_of<T>(), {d0, d1, rows, cols}, {d1 * rows * cols, rows * cols, cols, 1}};
}

// K or V of a [B, S, K, D] tensor (or cache: its first s positions) as [B, K, s, D].
Mat4 kv_heads(const Tensor& x, int64_t s) {
  const int64_t kv = x.dim(2), d = x.dim(3);
  return {x.data, dnnl_type(x.dtype), {x.dim(0), kv, s, d}, {x.dim(1) * kv * d, d, kv * d, 1}};
}

memory::desc md(const Mat& m) {
  return memory::desc({m.rows, m.cols}, m.dt, {m.row_stride, m.col_stride});
}

// Waking the OpenMP team costs tens of microseconds with the passive wait policy capbench runs
// under (measured: 70-220 µs per tiny op at decode), far more than a 1×512 row of work; below
// this many elements a loop runs on the calling thread.
constexpr int64_t kParallelWork = int64_t{1} << 15;
inline bool parallel_worth(int64_t elements) {
  return elements >= kParallelWork;
}

inline int64_t idx4(const Tensor& t, int64_t b, int64_t s, int64_t h) {
  return ((b * t.dim(1) + s) * t.dim(2) + h) * t.dim(3);
}

// dst[i] = src[i] at dst's element type.
template <class To, class From>
void convert_elements(To* dst, const From* src, int64_t n) {
#pragma omp parallel for schedule(static) if (parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) store(dst + i, load(src + i));
}

// x itself when T is float; else x rounded into `storage` (bf16 operands for the next matmul).
template <class T>
T* narrowed(std::vector<float>& x, std::vector<T>& storage) {
  if constexpr (std::is_same_v<T, float>) {
    return x.data();
  } else {
    storage.resize(x.size());
    convert_elements(storage.data(), x.data(), static_cast<int64_t>(x.size()));
    return storage.data();
  }
}

// Index of each row's largest element in a [rows, cols] buffer.
std::vector<int64_t> row_argmax(const float* x, int64_t rows, int64_t cols) {
  std::vector<int64_t> out(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    int64_t best = 0;
    for (int64_t j = 1; j < cols; ++j)
      if (row[j] > row[best]) best = j;
    out[static_cast<size_t>(r)] = best;
  }
  return out;
}

// log Σ exp(x) of a row from its largest element x_max and the softmax there, p_max:
// p_max = exp(x_max - lse), so lse = x_max - log(p_max). One log per row instead of an exp per
// element; p_max >= 1/cols, so the log is well conditioned.
inline float log_sum_exp_from_softmax(float x_max, float p_max) {
  return x_max - std::log(p_max);
}

// avx512_bf16 (or AMX): bf16 dot products in hardware. Without them oneDNN would emulate bf16,
// which measures the emulation, not the chip.
bool cpu_has_native_bf16() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") != 0;
}

class OnednnBackend final : public Backend {
 public:
  explicit OnednnBackend(const BackendOptions& options)
      : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_), native_bf16_(cpu_has_native_bf16()) {
    threads_ = options.threads > 0 ? options.threads
                                   : static_cast<int>(std::thread::hardware_concurrency());
    omp_set_num_threads(threads_);
  }

  DeviceInfo device_info() const override {
    DeviceInfo info;
    info.backend = "onednn";
    info.device_kind = "cpu";
    info.name = host_cpu_name();
    info.threads = threads_;
    const dnnl_version_t* v = dnnl_version();
    info.library_version = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) +
                           "." + std::to_string(v->patch);
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

  void* alloc(size_t bytes) override {
    void* p = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void free(void* ptr) override { std::free(ptr); }
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
    const Mat A = args.trans_a ? mat(a).t() : mat(a);
    const Mat B = args.trans_b ? mat(b).t() : mat(b);
    gemm(mat(c), A, B, args.alpha, args.beta);
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
      attention_forward<decltype(tag)>(out, lse, q, k, v, args.causal);
    });
  }

  void attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                     const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                     const Tensor& lse, const AttentionArgs& args) override {
    check_attention_bwd(dq, dk, dv, dout, q, k, v, out, lse);
    with_element_type(q.dtype, "attention_bwd", [&](auto tag) {
      attention_backward<decltype(tag)>(dq, dk, dv, dout, q, k, v, args.causal);
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
      decode_attention<decltype(tag)>(out, q, k_cache, v_cache, args.pos);
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
      // oneDNN's eltwise runs on a contiguous fp32 copy of the gate half: on the strided half it
      // fell to a slow path, and the copy is the conversion from bf16 anyway.
      scratch_a_.resize(static_cast<size_t>(n * f));
      float* g = scratch_a_.data();
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < f; ++j) g[r * f + j] = load(gu + r * 2 * f + j);
      swish_inplace(Mat{g, memory::data_type::f32, n, f, f, 1});
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
      swish_backward(Mat{dg, memory::data_type::f32, n, f, f, 1}, gate);
      swish_inplace(gate);
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
      run_softmax(p32, x32, memory::data_type::f32, rows, vocab);
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

  void synchronize() override {
    stream_.wait();
  }
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
  // [B, T, H, D] -> [B, H, T, D] (and back): head-major, which is [B, K, G·T, D].
  template <class T>
  static std::vector<T> to_head_major(const Tensor& x) {
    const int64_t batch = x.dim(0), t = x.dim(1), heads = x.dim(2), d = x.dim(3);
    std::vector<T> out(static_cast<size_t>(x.numel()));
#pragma omp parallel for collapse(2) schedule(static) if (parallel_worth(x.numel()))
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < t; ++i)
          std::memcpy(out.data() + ((b * heads + h) * t + i) * d, x.as<T>() + idx4(x, b, i, h),
                      sizeof(T) * d);
    return out;
  }
  template <class T>
  static void from_head_major(const Tensor& x, const std::vector<T>& hm) {
    const int64_t batch = x.dim(0), t = x.dim(1), heads = x.dim(2), d = x.dim(3);
#pragma omp parallel for collapse(2) schedule(static) if (parallel_worth(x.numel()))
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < t; ++i)
          std::memcpy(x.as<T>() + idx4(x, b, i, h), hm.data() + ((b * heads + h) * t + i) * d,
                      sizeof(T) * d);
  }

  // Scaled, masked fp32 scores [B·H·T, T] of head-major queries Q ([B, K, G·T, D]) against k.
  std::vector<float> scores(const Mat4& Q, const Tensor& k, int64_t t, bool causal, float scale) {
    const int64_t rows = Q.d[0] * Q.d[1] * Q.d[2];
    std::vector<float> out(static_cast<size_t>(rows * t));
    gemm4(dense4(out.data(), Q.d[0], Q.d[1], Q.d[2], t), Q, kv_heads(k, t).t(), scale);
    if (causal) {
#pragma omp parallel for schedule(static) if (parallel_worth(rows * t))
      for (int64_t row = 0; row < rows; ++row) {
        const int64_t qpos = row % t;
        for (int64_t j = qpos + 1; j < t; ++j) out[static_cast<size_t>(row * t + j)] = -INFINITY;
      }
    }
    return out;
  }

  // Products run at T with fp32 results; scores, softmax and their gradients stay fp32, rounded
  // to T only where they become the next product's operand.
  template <class T>
  void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                         const Tensor& v, bool causal) {
    const int64_t batch = q.dim(0), t = q.dim(1), heads = q.dim(2), d = q.dim(3);
    const int64_t kv = k.dim(2), gt = heads / kv * t, rows = batch * heads * t;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    std::vector<T> qh = to_head_major<T>(q);
    std::vector<float> probs = scores(dense4(qh.data(), batch, kv, gt, d), k, t, causal, scale);
    const std::vector<int64_t> argmax = row_argmax(probs.data(), rows, t);
    std::vector<float> row_max(static_cast<size_t>(rows));  // the softmax overwrites the scores
    for (int64_t row = 0; row < rows; ++row)
      row_max[static_cast<size_t>(row)] = probs[static_cast<size_t>(row * t + argmax[row])];
    softmax(probs.data(), rows, t);
    for (int64_t row = 0; row < rows; ++row)  // [B,H,T] row order
      lse.as<float>()[row] = log_sum_exp_from_softmax(
          row_max[static_cast<size_t>(row)], probs[static_cast<size_t>(row * t + argmax[row])]);
    std::vector<T> probs_lowp;
    T* p = narrowed(probs, probs_lowp);
    std::vector<T>& oh = qh;  // the queries are no longer needed: reuse the buffer
    gemm4(dense4(oh.data(), batch, kv, gt, d), dense4(p, batch, kv, gt, t), kv_heads(v, t), 1.0f);
    from_head_major(out, oh);
  }

  template <class T>
  void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                          const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
    const int64_t batch = q.dim(0), t = q.dim(1), heads = q.dim(2), d = q.dim(3);
    const int64_t kv = k.dim(2), gt = heads / kv * t;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    // Head-major copies: [B, H, T, D] is [B, K, G·T, D], query rows of one kv head together.
    std::vector<T> qh = to_head_major<T>(q), doh = to_head_major<T>(dout);
    const Mat4 Q = dense4(qh.data(), batch, kv, gt, d), dO = dense4(doh.data(), batch, kv, gt, d);
    // Recompute the probabilities exactly as the forward did.
    std::vector<float> probs = scores(Q, k, t, causal, scale);
    softmax(probs.data(), batch * heads * t, t);
    std::vector<T> lowp;
    const Mat4 P = dense4(narrowed(probs, lowp), batch, kv, gt, t);
    std::vector<float> dprobs(probs.size());
    gemm4(dense4(dprobs.data(), batch, kv, gt, t), dO, kv_heads(v, t).t(), 1.0f);  // dP = dO Vᵀ
    gemm4(kv_heads(dv, t), P.t(), dO, 1.0f);  // dV = Pᵀ dO, summed over the group's heads
    softmax_backward(dprobs.data(), probs.data(), batch * heads * t, t);  // dS, in place of dP
    const Mat4 dS = dense4(narrowed(dprobs, lowp), batch, kv, gt, t);
    std::vector<T>& dqh = doh;  // dO is no longer needed
    gemm4(dense4(dqh.data(), batch, kv, gt, d), dS, kv_heads(k, t), scale);  // dQ = s·dS K
    gemm4(kv_heads(dk, t), dS.t(), Q, scale);                                // dK = s·dSᵀ Q
    from_head_major(dq, dqh);
  }

  // The context grows by one every step, so no primitive could be cached for it: direct loops,
  // one (sequence, head, query) per task, dot products over the head dimension.
  template <class T>
  void decode_attention(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                        const Tensor& v_cache, int64_t pos) {
    const int64_t batch = q.dim(0), t = q.dim(1), heads = q.dim(2), d = q.dim(3);
    const int64_t group = heads / k_cache.dim(2), ctx = pos + t;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
#pragma omp parallel if (parallel_worth(batch * heads * t * ctx * d))
    {
      std::vector<float> p(static_cast<size_t>(ctx)), acc(static_cast<size_t>(d)),
          qf(static_cast<size_t>(d));
#pragma omp for collapse(3) schedule(static)
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t i = 0; i < t; ++i) {
            const int64_t kh = h / group, last = pos + i;
            const T* qv = q.as<T>() + idx4(q, b, i, h);
            for (int64_t x = 0; x < d; ++x) qf[static_cast<size_t>(x)] = load(qv + x);
            float mx = -INFINITY;
            for (int64_t j = 0; j <= last; ++j) {
              const T* kv = k_cache.as<T>() + idx4(k_cache, b, j, kh);
              float dot = 0;
              // simd: lets the compiler reassociate the sum, i.e. vectorise it.
#pragma omp simd reduction(+ : dot)
              for (int64_t x = 0; x < d; ++x) dot += qf[static_cast<size_t>(x)] * load(kv + x);
              p[static_cast<size_t>(j)] = dot * scale;
              mx = std::max(mx, p[static_cast<size_t>(j)]);
            }
            double sum = 0;
            for (int64_t j = 0; j <= last; ++j) {
              p[static_cast<size_t>(j)] = std::exp(p[static_cast<size_t>(j)] - mx);
              sum += p[static_cast<size_t>(j)];
            }
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t j = 0; j <= last; ++j) {
              const T* vv = v_cache.as<T>() + idx4(v_cache, b, j, kh);
              const float w = p[static_cast<size_t>(j)];
              for (int64_t x = 0; x < d; ++x) acc[static_cast<size_t>(x)] += w * load(vv + x);
            }
            T* o = out.as<T>() + idx4(out, b, i, h);
            const float inv = static_cast<float>(1.0 / sum);
            for (int64_t x = 0; x < d; ++x) store(o + x, acc[static_cast<size_t>(x)] * inv);
          }
    }
  }

  template <class T>
  void rotate(const Tensor& out, const Tensor& in, const RopeArgs& args, float direction) {
    const int64_t batch = in.dim(0), t = in.dim(1), heads = in.dim(2), hd = in.dim(3);
    std::vector<float> cs(static_cast<size_t>(t * hd / 2)), sn(cs.size());
    for (int64_t p = 0; p < t; ++p)
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double a = static_cast<double>(args.pos_offset + p) *
                         std::pow(static_cast<double>(args.theta),
                                  -2.0 * static_cast<double>(i) / static_cast<double>(hd));
        cs[static_cast<size_t>(p * hd / 2 + i)] = static_cast<float>(std::cos(a));
        sn[static_cast<size_t>(p * hd / 2 + i)] = static_cast<float>(direction * std::sin(a));
      }
#pragma omp parallel for collapse(2) schedule(static) if (parallel_worth(batch * t * heads * hd))
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t p = 0; p < t; ++p)
        for (int64_t h = 0; h < heads; ++h) {
          const T* x = in.as<T>() + idx4(in, b, p, h);
          T* y = out.as<T>() + idx4(out, b, p, h);
          const float* c = cs.data() + p * hd / 2;
          const float* s = sn.data() + p * hd / 2;
          for (int64_t i = 0; i < hd / 2; ++i) {
            const float x0 = load(x + 2 * i), x1 = load(x + 2 * i + 1);
            store(y + 2 * i, x0 * c[i] - x1 * s[i]);
            store(y + 2 * i + 1, x0 * s[i] + x1 * c[i]);
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

  // ---- primitives, cached per shape -----------------------------------------------------------

  // C = alpha · A·B + beta · C (beta = 0: C's contents ignored): one matrix of gemm4.
  void gemm(const Mat& c, const Mat& a, const Mat& b, float alpha, float beta) {
    auto as4 = [](const Mat& m) {
      return Mat4{m.data,
                  m.dt,
                  {1, 1, m.rows, m.cols},
                  {m.rows * m.row_stride, m.rows * m.row_stride, m.row_stride, m.col_stride}};
    };
    gemm4(as4(c), as4(a), as4(b), alpha, beta);
  }

  static memory::desc md4(const Mat4& m) {
    return memory::desc({m.d[0], m.d[1], m.d[2], m.d[3]}, m.dt, {m.s[0], m.s[1], m.s[2], m.s[3]});
  }

  // C = alpha · A·B + beta · C for each of the d0·d1 matrices; primitives cached per shape and
  // element types (bf16 A and B may write an fp32 C).
  void gemm4(const Mat4& c, const Mat4& a, const Mat4& b, float alpha, float beta = 0.0f) {
    const MatmulKey key{a.d, b.d, a.s, b.s, c.s, alpha, beta, {a.dt, b.dt, c.dt}};
    auto it = matmuls_.find(key);
    if (it == matmuls_.end()) {
      dnnl::primitive_attr attr;
      dnnl::post_ops ops;
      if (beta != 0.0f) ops.append_sum(beta);
      attr.set_post_ops(ops);
#if DNNL_VERSION_MAJOR >= 3
      if (alpha != 1.0f) attr.set_scales_mask(DNNL_ARG_WEIGHTS, 0);
      const dnnl::matmul::primitive_desc pd(engine_, md4(a), md4(b), md4(c), attr);
#else
      if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md4(a), md4(b), md4(c)), attr,
                                            engine_);
#endif
      it = matmuls_.emplace(key, dnnl::matmul(pd)).first;
    }
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(md4(a), engine_, a.data)},
                                         {DNNL_ARG_WEIGHTS, memory(md4(b), engine_, b.data)},
                                         {DNNL_ARG_DST, memory(md4(c), engine_, c.data)}};
#if DNNL_VERSION_MAJOR >= 3
    float alpha_value = alpha;
    if (alpha != 1.0f)
      args.emplace(
          DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS,
          memory({{1}, memory::data_type::f32, memory::format_tag::x}, engine_, &alpha_value));
#endif
    it->second.execute(stream_, args);
    stream_.wait();
  }

  static memory::desc rows_md(int64_t rows, int64_t cols, memory::data_type dt) {
    return memory::desc({rows, cols}, dt, memory::format_tag::ab);
  }

  // dst = softmax(src) over each row of a [rows, cols] buffer of type dt.
  void run_softmax(void* dst, void* src, memory::data_type dt, int64_t rows, int64_t cols) {
    const auto key = std::make_tuple(rows, cols, dt);
    const memory::desc m = rows_md(rows, cols, dt);
    auto it = softmax_fwd_.find(key);
    if (it == softmax_fwd_.end()) {
#if DNNL_VERSION_MAJOR >= 3
      const dnnl::softmax_forward::primitive_desc pd(engine_, dnnl::prop_kind::forward_training,
                                                     dnnl::algorithm::softmax_accurate, m, m, 1);
#else
      const dnnl::softmax_forward::primitive_desc pd(
          dnnl::softmax_forward::desc(dnnl::prop_kind::forward_training, m, 1), engine_);
#endif
      it = softmax_fwd_.emplace(key, dnnl::softmax_forward(pd)).first;
    }
    it->second.execute(stream_, {{DNNL_ARG_SRC, memory(m, engine_, src)},
                                 {DNNL_ARG_DST, memory(m, engine_, dst)}});
    stream_.wait();
  }
  void softmax(float* x, int64_t rows, int64_t cols) {
    run_softmax(x, x, memory::data_type::f32, rows, cols);
  }

  // d ← p ⊙ (d − rowsum(d ⊙ p)): the softmax backward, in place of the incoming gradient (fp32).
  void softmax_backward(float* d, float* p, int64_t rows, int64_t cols) {
    const auto key = std::make_pair(rows, cols);
    const memory::desc m = rows_md(rows, cols, memory::data_type::f32);
    auto it = softmax_bwd_.find(key);
    if (it == softmax_bwd_.end()) {
#if DNNL_VERSION_MAJOR >= 3
      const dnnl::softmax_forward::primitive_desc hint(engine_, dnnl::prop_kind::forward_training,
                                                       dnnl::algorithm::softmax_accurate, m, m, 1);
      const dnnl::softmax_backward::primitive_desc pd(engine_, dnnl::algorithm::softmax_accurate, m,
                                                      m, m, 1, hint);
#else
      const dnnl::softmax_forward::primitive_desc hint(
          dnnl::softmax_forward::desc(dnnl::prop_kind::forward_training, m, 1), engine_);
      const dnnl::softmax_backward::primitive_desc pd(dnnl::softmax_backward::desc(m, m, 1),
                                                      engine_, hint);
#endif
      it = softmax_bwd_.emplace(key, dnnl::softmax_backward(pd)).first;
    }
    it->second.execute(stream_, {{DNNL_ARG_DST, memory(m, engine_, p)},
                                 {DNNL_ARG_DIFF_DST, memory(m, engine_, d)},
                                 {DNNL_ARG_DIFF_SRC, memory(m, engine_, d)}});
    stream_.wait();
  }

  // x ← swish(x) = x · sigmoid(x), strided.
  void swish_inplace(const Mat& x) {
    const auto key = std::make_tuple(x.rows, x.cols, x.row_stride);
    auto it = swish_fwd_.find(key);
    if (it == swish_fwd_.end()) {
#if DNNL_VERSION_MAJOR >= 3
      const dnnl::eltwise_forward::primitive_desc pd(engine_, dnnl::prop_kind::forward_training,
                                                     dnnl::algorithm::eltwise_swish, md(x), md(x),
                                                     1.0f);
#else
      const dnnl::eltwise_forward::primitive_desc pd(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training,
                                      dnnl::algorithm::eltwise_swish, md(x), 1.0f),
          engine_);
#endif
      it = swish_fwd_.emplace(key, dnnl::eltwise_forward(pd)).first;
    }
    const memory m(md(x), engine_, x.data);
    it->second.execute(stream_, {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
    stream_.wait();
  }

  // diff ← diff · swish'(src), in place, strided like src.
  void swish_backward(const Mat& diff, const Mat& src) {
    const auto key = std::make_tuple(src.rows, src.cols, src.row_stride, diff.row_stride);
    auto it = swish_bwd_.find(key);
    if (it == swish_bwd_.end()) {
#if DNNL_VERSION_MAJOR >= 3
      const dnnl::eltwise_forward::primitive_desc hint(engine_, dnnl::prop_kind::forward_training,
                                                       dnnl::algorithm::eltwise_swish, md(src),
                                                       md(src), 1.0f);
      const dnnl::eltwise_backward::primitive_desc pd(engine_, dnnl::algorithm::eltwise_swish,
                                                      md(diff), md(diff), md(src), 1.0f, hint);
#else
      const dnnl::eltwise_forward::primitive_desc hint(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training,
                                      dnnl::algorithm::eltwise_swish, md(src), 1.0f),
          engine_);
      const dnnl::eltwise_backward::primitive_desc pd(
          dnnl::eltwise_backward::desc(dnnl::algorithm::eltwise_swish, md(diff), md(src), 1.0f),
          engine_, hint);
#endif
      it = swish_bwd_.emplace(key, dnnl::eltwise_backward(pd)).first;
    }
    it->second.execute(stream_, {{DNNL_ARG_SRC, memory(md(src), engine_, src.data)},
                                 {DNNL_ARG_DIFF_DST, memory(md(diff), engine_, diff.data)},
                                 {DNNL_ARG_DIFF_SRC, memory(md(diff), engine_, diff.data)}});
    stream_.wait();
  }

  dnnl::engine engine_;
  dnnl::stream stream_;
  int threads_ = 1;
  HostPacer pacer_;
  // fp32 scratch that SwiGLU and cross-entropy borrow (ops run one at a time).
  std::vector<float> scratch_a_, scratch_b_;
  bool native_bf16_ = false;
  using MatmulKey =
      std::tuple<std::array<int64_t, 4>, std::array<int64_t, 4>, std::array<int64_t, 4>,
                 std::array<int64_t, 4>, std::array<int64_t, 4>, float, float,
                 std::array<memory::data_type, 3>>;
  std::map<MatmulKey, dnnl::matmul> matmuls_;
  std::map<std::tuple<int64_t, int64_t, memory::data_type>, dnnl::softmax_forward> softmax_fwd_;
  std::map<std::pair<int64_t, int64_t>, dnnl::softmax_backward> softmax_bwd_;
  std::map<std::tuple<int64_t, int64_t, int64_t>, dnnl::eltwise_forward> swish_fwd_;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, dnnl::eltwise_backward> swish_bwd_;
};

}  // namespace

void register_onednn_backends(Registry& registry) {
  registry.add({"onednn", "cpu", "oneDNN primitives + OpenMP C++ on the CPU", false,
                [](const BackendOptions& o) -> std::unique_ptr<Backend> {
                  return std::make_unique<OnednnBackend>(o);
                }});
}

}  // namespace capbench
