// The oneDNN backend (CPU). Matmuls — the linear layers and attention's QKᵀ, PV and their
// gradients, as strided 2-D matrices — run through oneDNN's matmul primitive; softmax forward and
// backward and the swish of SwiGLU through theirs. What oneDNN 2.6 does not have (RMSNorm, RoPE,
// masking, cross-entropy, AdamW, embedding) is plain C++ parallelised with OpenMP, the runtime
// oneDNN itself uses here. Primitives are created once per shape and cached.
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
#include <unordered_map>
#include <vector>

#include "backends/shape_checks.h"

namespace capbench {
namespace {

using dnnl::memory;

// A strided fp32 matrix: element (i, j) at data[i·row_stride + j·col_stride].
struct Mat {
  float* data;
  int64_t rows, cols, row_stride, col_stride;
  Mat t() const { return {data, cols, rows, col_stride, row_stride}; }
};

Mat mat(const Tensor& t) {
  return {t.as<float>(), t.rows(), t.cols(), t.cols(), 1};
}

// A strided fp32 batch of matrices: [d0, d1, rows, cols], element strides s.
struct Mat4 {
  float* data;
  std::array<int64_t, 4> d, s;
  // The last two dimensions swapped.
  Mat4 t() const { return {data, {d[0], d[1], d[3], d[2]}, {s[0], s[1], s[3], s[2]}}; }
};

// A contiguous [d0, d1, rows, cols] buffer.
Mat4 dense4(float* p, int64_t d0, int64_t d1, int64_t rows, int64_t cols) {
  return {p, {d0, d1, rows, cols}, {d1 * rows * cols, rows * cols, cols, 1}};
}

// K or V of a [B, S, K, D] tensor (or cache: its first s positions) as [B, K, s, D].
Mat4 kv_heads(const Tensor& x, int64_t s) {
  const int64_t kv = x.dim(2), d = x.dim(3);
  return {x.as<float>(), {x.dim(0), kv, s, d}, {x.dim(1) * kv * d, d, kv * d, 1}};
}

memory::desc md(const Mat& m) {
  return memory::desc({m.rows, m.cols}, memory::data_type::f32, {m.row_stride, m.col_stride});
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

class OnednnBackend final : public Backend {
 public:
  explicit OnednnBackend(const BackendOptions& options)
      : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
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
    if (dtype != DType::f32) return Support::no("the onednn backend runs fp32 only so far");
    return Support::yes();
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
    require_dtype(t, DType::f32, "fill");
    float* p = t.as<float>();
#pragma omp parallel for schedule(static) if (parallel_worth(n))
    for (int64_t i = 0; i < n; ++i) p[i] = value;
  }

  // ---- ops ----------------------------------------------------------------------------------

  void embedding_fwd(const Tensor& out, const Tensor& tokens, const Tensor& table) override {
    check_embedding(out, tokens, table);
    const int64_t c = table.dim(1), n = tokens.numel(), vocab = table.dim(0);
    for (int64_t i = 0; i < n; ++i)
      if (tokens.as<int32_t>()[i] < 0 || tokens.as<int32_t>()[i] >= vocab)
        throw std::out_of_range("embedding_fwd: token id out of range");
#pragma omp parallel for schedule(static) if (parallel_worth(n * c))
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(out.as<float>() + i * c, table.as<float>() + tokens.as<int32_t>()[i] * c,
                  sizeof(float) * c);
  }

  void embedding_bwd(const Tensor& dtable, const Tensor& dout, const Tensor& tokens) override {
    check_embedding(dout, tokens, dtable);
    const int64_t c = dtable.dim(1), n = tokens.numel();
    // Columns are split across threads, so rows hit by several tokens never race.
#pragma omp parallel for schedule(static) if (parallel_worth(n * c))
    for (int64_t j = 0; j < c; ++j)
      for (int64_t i = 0; i < n; ++i)
        dtable.as<float>()[tokens.as<int32_t>()[i] * c + j] += dout.as<float>()[i * c + j];
  }

  void rmsnorm_fwd(const Tensor& out, const Tensor& rstd, const Tensor& in, const Tensor& weight,
                   const RmsNormArgs& args) override {
    check_rmsnorm(out, rstd, in, weight);
    const int64_t rows = in.rows(), c = in.cols();
    const float* w = weight.as<float>();
#pragma omp parallel for schedule(static) if (parallel_worth(rows * c))
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = in.as<float>() + r * c;
      float* y = out.as<float>() + r * c;
      double ss = 0;
      for (int64_t j = 0; j < c; ++j) ss += static_cast<double>(x[j]) * x[j];
      const float rs = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(c) + args.eps));
      rstd.as<float>()[r] = rs;
      for (int64_t j = 0; j < c; ++j) y[j] = x[j] * rs * w[j];
    }
  }

  void rmsnorm_bwd(const Tensor& din, const Tensor& dweight, const Tensor& dout, const Tensor& in,
                   const Tensor& weight, const Tensor& rstd) override {
    check_rmsnorm(dout, rstd, in, weight);
    check_same_shape(din, in, "rmsnorm_bwd din");
    const int64_t rows = in.rows(), c = in.cols();
    const float* w = weight.as<float>();
#pragma omp parallel for schedule(static) if (parallel_worth(rows * c))
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = in.as<float>() + r * c;
      const float* dy = dout.as<float>() + r * c;
      float* dx = din.as<float>() + r * c;
      const double rs = rstd.as<float>()[r];
      double dot = 0;
      for (int64_t j = 0; j < c; ++j) dot += static_cast<double>(w[j]) * dy[j] * x[j];
      const float k = static_cast<float>(rs * rs * rs * dot / static_cast<double>(c));
      const float rsf = static_cast<float>(rs);
      for (int64_t j = 0; j < c; ++j) dx[j] += rsf * w[j] * dy[j] - k * x[j];
    }
    // Weight gradient: a reduction over rows, split by columns.
#pragma omp parallel for schedule(static) if (parallel_worth(rows * c))
    for (int64_t j = 0; j < c; ++j) {
      double acc = 0;
      for (int64_t r = 0; r < rows; ++r)
        acc += static_cast<double>(dout.as<float>()[r * c + j]) * in.as<float>()[r * c + j] *
               rstd.as<float>()[r];
      dweight.as<float>()[j] += static_cast<float>(acc);
    }
  }

  void matmul(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args) override {
    check_matmul(c, a, b, args);
    const Mat A = args.trans_a ? mat(a).t() : mat(a);
    const Mat B = args.trans_b ? mat(b).t() : mat(b);
    gemm(mat(c), A, B, args.alpha, args.beta);
  }

  void rope_fwd(const Tensor& out, const Tensor& in, const RopeArgs& args) override {
    check_rope(out, in);
    rotate(out, in, args, 1.0f);
  }
  void rope_bwd(const Tensor& din, const Tensor& dout, const RopeArgs& args) override {
    check_rope(din, dout);
    rotate(din, dout, args, -1.0f);
  }

  void attention_fwd(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                     const Tensor& v, const AttentionArgs& args) override {
    check_attention(out, lse, q, k, v);
    attention_forward(out, &lse, q, k, v, 0, args.causal);
  }

  void attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                     const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                     const Tensor& lse, const AttentionArgs& args) override {
    check_attention_bwd(dq, dk, dv, dout, q, k, v, out, lse);
    const int64_t batch = q.dim(0), t = q.dim(1), heads = q.dim(2), d = q.dim(3);
    const int64_t kv = k.dim(2), gt = heads / kv * t;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    // Head-major copies: [B, H, T, D] is [B, K, G·T, D], query rows of one kv head together.
    std::vector<float> qh = to_head_major(q), doh = to_head_major(dout);
    const Mat4 Q = dense4(qh.data(), batch, kv, gt, d), dO = dense4(doh.data(), batch, kv, gt, d);
    // Recompute the probabilities exactly as the forward did.
    std::vector<float> probs = scores(Q, k, t, 0, args.causal, scale);
    softmax(probs.data(), batch * heads * t, t);
    const Mat4 P = dense4(probs.data(), batch, kv, gt, t);
    std::vector<float> dprobs(probs.size());
    const Mat4 dP = dense4(dprobs.data(), batch, kv, gt, t);
    gemm4(dP, dO, kv_heads(v, t).t(), 1.0f);  // dP = dO Vᵀ
    gemm4(kv_heads(dv, t), P.t(), dO, 1.0f);  // dV = Pᵀ dO, summed over the group's heads
    softmax_backward(dprobs.data(), probs.data(), batch * heads * t, t);  // dS, in place of dP
    std::vector<float> dqh(qh.size());
    gemm4(dense4(dqh.data(), batch, kv, gt, d), dP, kv_heads(k, t), scale);  // dQ = s·dS K
    gemm4(kv_heads(dk, t), dP.t(), Q, scale);                                // dK = s·dSᵀ Q
    from_head_major(dq, dqh);
  }

  void kv_append(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                 const KvAppendArgs& args) override {
    check_kv_append(k_cache, v_cache, k, v, args);
    const int64_t row = k.dim(2) * k.dim(3);
    for (int64_t b = 0; b < k.dim(0); ++b)
      for (int64_t s = 0; s < k.dim(1); ++s) {
        std::memcpy(k_cache.as<float>() + idx4(k_cache, b, args.pos + s, 0),
                    k.as<float>() + idx4(k, b, s, 0), sizeof(float) * row);
        std::memcpy(v_cache.as<float>() + idx4(v_cache, b, args.pos + s, 0),
                    v.as<float>() + idx4(v, b, s, 0), sizeof(float) * row);
      }
  }

  void attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                        const Tensor& v_cache, const DecodeArgs& args) override {
    check_attention_decode(out, q, k_cache, v_cache, args);
    // The context grows by one every step, so no primitive could be cached for it: direct
    // loops, one (sequence, head, query) per task, dot products over the head dimension.
    const int64_t batch = q.dim(0), t = q.dim(1), heads = q.dim(2), d = q.dim(3);
    const int64_t group = heads / k_cache.dim(2), ctx = args.pos + t;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
#pragma omp parallel if (parallel_worth(batch * heads * t * ctx * d))
    {
      std::vector<float> p(static_cast<size_t>(ctx)), acc(static_cast<size_t>(d));
#pragma omp for collapse(3) schedule(static)
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t i = 0; i < t; ++i) {
            const int64_t kh = h / group, last = args.pos + i;
            const float* qv = q.as<float>() + idx4(q, b, i, h);
            float mx = -INFINITY;
            for (int64_t j = 0; j <= last; ++j) {
              const float* kv = k_cache.as<float>() + idx4(k_cache, b, j, kh);
              float dot = 0;
              for (int64_t x = 0; x < d; ++x) dot += qv[x] * kv[x];
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
              const float* vv = v_cache.as<float>() + idx4(v_cache, b, j, kh);
              const float w = p[static_cast<size_t>(j)];
              for (int64_t x = 0; x < d; ++x) acc[static_cast<size_t>(x)] += w * vv[x];
            }
            float* o = out.as<float>() + idx4(out, b, i, h);
            const float inv = static_cast<float>(1.0 / sum);
            for (int64_t x = 0; x < d; ++x) o[x] = acc[static_cast<size_t>(x)] * inv;
          }
    }
  }

  void swiglu_fwd(const Tensor& out, const Tensor& gate_up) override {
    check_swiglu(out, gate_up);
    const int64_t n = out.rows(), f = out.cols();
    const float* gu = gate_up.as<float>();
    float* y = out.as<float>();
    // oneDNN's eltwise writes in its source's layout: copy the gate half out, swish in place.
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
    for (int64_t r = 0; r < n; ++r) std::memcpy(y + r * f, gu + r * 2 * f, sizeof(float) * f);
    swish_inplace(mat(out));
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < f; ++j) y[r * f + j] *= gu[r * 2 * f + f + j];
  }

  void swiglu_bwd(const Tensor& dgate_up, const Tensor& dout, const Tensor& gate_up) override {
    check_swiglu(dout, gate_up);
    check_same_shape(dgate_up, gate_up, "swiglu_bwd dgate_up");
    const int64_t n = dout.rows(), f = dout.cols();
    const float* gu = gate_up.as<float>();
    const float* dy = dout.as<float>();
    float* dgu = dgate_up.as<float>();
    // d(gate) = (dy · up) · silu'(gate), d(up) = dy · silu(gate). The swish primitives run on
    // contiguous [N, F] scratch: on the strided halves of gate_up oneDNN fell to a slow path
    // (196 ms of an 840 ms train step).
    gate_scratch_.resize(static_cast<size_t>(n * f));
    diff_scratch_.resize(static_cast<size_t>(n * f));
    float* g = gate_scratch_.data();
    float* dg = diff_scratch_.data();
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < f; ++j) {
        g[r * f + j] = gu[r * 2 * f + j];
        dg[r * f + j] = dy[r * f + j] * gu[r * 2 * f + f + j];
      }
    const Mat gate{g, n, f, f, 1}, diff{dg, n, f, f, 1};
    swish_backward(diff, gate);
    swish_inplace(gate);
#pragma omp parallel for schedule(static) if (parallel_worth(n * f))
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < f; ++j) {
        dgu[r * 2 * f + j] = dg[r * f + j];
        dgu[r * 2 * f + f + j] = dy[r * f + j] * g[r * f + j];
      }
  }

  void add(const Tensor& out, const Tensor& a, const Tensor& b) override {
    check_same_shape(out, a, "add a");
    check_same_shape(out, b, "add b");
    const int64_t n = out.numel();
    const float *pa = a.as<float>(), *pb = b.as<float>();
    float* po = out.as<float>();
#pragma omp parallel for schedule(static) if (parallel_worth(n))
    for (int64_t i = 0; i < n; ++i) po[i] = pa[i] + pb[i];
  }

  void cross_entropy_fwd_bwd(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                             const Tensor& targets, const CrossEntropyArgs& args) override {
    check_cross_entropy(losses, dlogits, logits, targets);
    const int64_t rows = logits.rows(), vocab = logits.cols();
    for (int64_t r = 0; r < rows; ++r)
      if (targets.as<int32_t>()[r] < 0 || targets.as<int32_t>()[r] >= vocab)
        throw std::out_of_range("cross_entropy: target out of range");
    // dlogits = softmax(logits) through the primitive, then the loss and the one-hot from it.
    run_softmax(dlogits.as<float>(), logits.as<float>(), rows, vocab);
#pragma omp parallel for schedule(static) if (parallel_worth(rows * vocab))
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = logits.as<float>() + r * vocab;
      float* d = dlogits.as<float>() + r * vocab;
      const int32_t tgt = targets.as<int32_t>()[r];
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < vocab; ++j) mx = std::max(mx, static_cast<double>(x[j]));
      for (int64_t j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(x[j]) - mx);
      losses.as<float>()[r] = static_cast<float>(mx + std::log(sum) - x[tgt]);
      d[tgt] -= 1.0f;
      for (int64_t j = 0; j < vocab; ++j) d[j] *= args.dloss_scale;
    }
  }

  void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
             const AdamWArgs& args) override {
    check_adamw(params, grads, m, v);
    const int64_t n = params.numel();
    const float b1 = args.beta1, b2 = args.beta2, lr = args.lr, eps = args.eps;
    const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(b1), args.step));
    const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(b2), args.step));
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
  // [B,T,H,D] head h of sequence b as a [T, D] matrix.
  static Mat head(const Tensor& x, int64_t b, int64_t h) {
    return {x.as<float>() + idx4(x, b, 0, h), x.dim(1), x.dim(3), x.dim(2) * x.dim(3), 1};
  }

  // [B, T, H, D] -> [B, H, T, D] (and back): head-major, which is [B, K, G·T, D].
  static std::vector<float> to_head_major(const Tensor& x) {
    const int64_t batch = x.dim(0), t = x.dim(1), heads = x.dim(2), d = x.dim(3);
    std::vector<float> out(static_cast<size_t>(x.numel()));
#pragma omp parallel for collapse(2) schedule(static) if (parallel_worth(x.numel()))
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < t; ++i)
          std::memcpy(out.data() + ((b * heads + h) * t + i) * d, x.as<float>() + idx4(x, b, i, h),
                      sizeof(float) * d);
    return out;
  }
  static void from_head_major(const Tensor& x, const std::vector<float>& hm) {
    const int64_t batch = x.dim(0), t = x.dim(1), heads = x.dim(2), d = x.dim(3);
#pragma omp parallel for collapse(2) schedule(static) if (parallel_worth(x.numel()))
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < t; ++i)
          std::memcpy(x.as<float>() + idx4(x, b, i, h), hm.data() + ((b * heads + h) * t + i) * d,
                      sizeof(float) * d);
  }

  // Scaled, masked scores [B·H·T, s] of head-major queries Q ([B, K, G·T, D]) against the first
  // s positions of k; query t sits at position pos + t.
  std::vector<float> scores(const Mat4& Q, const Tensor& k, int64_t t, int64_t pos, bool causal,
                            float scale) {
    const int64_t s = pos + t, rows = Q.d[0] * Q.d[1] * Q.d[2];
    std::vector<float> out(static_cast<size_t>(rows * s));
    gemm4(dense4(out.data(), Q.d[0], Q.d[1], Q.d[2], s), Q, kv_heads(k, s).t(), scale);
    if (causal) {
#pragma omp parallel for schedule(static) if (parallel_worth(rows * s))
      for (int64_t row = 0; row < rows; ++row) {
        const int64_t qpos = pos + row % t;
        for (int64_t j = qpos + 1; j < s; ++j) out[static_cast<size_t>(row * s + j)] = -INFINITY;
      }
    }
    return out;
  }

  void attention_forward(const Tensor& out, const Tensor* lse, const Tensor& q, const Tensor& k,
                         const Tensor& v, int64_t pos, bool causal) {
    const int64_t batch = q.dim(0), t = q.dim(1), heads = q.dim(2), d = q.dim(3), s = pos + t;
    const int64_t kv = k.dim(2), gt = heads / kv * t, rows = batch * heads * t;
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    std::vector<float> qh = to_head_major(q);
    std::vector<float> probs =
        scores(dense4(qh.data(), batch, kv, gt, d), k, t, pos, causal, scale);
    if (lse) {
#pragma omp parallel for schedule(static) if (parallel_worth(rows * s))
      for (int64_t row = 0; row < rows; ++row) {
        const float* x = probs.data() + row * s;
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < s; ++j) mx = std::max(mx, static_cast<double>(x[j]));
        for (int64_t j = 0; j < s; ++j) sum += std::exp(static_cast<double>(x[j]) - mx);
        lse->as<float>()[row] = static_cast<float>(mx + std::log(sum));  // [B,H,T] row order
      }
    }
    softmax(probs.data(), rows, s);
    std::vector<float>& oh = qh;  // the queries are no longer needed: reuse the buffer
    gemm4(dense4(oh.data(), batch, kv, gt, d), dense4(probs.data(), batch, kv, gt, s),
          kv_heads(v, s), 1.0f);
    from_head_major(out, oh);
  }

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
          const float* x = in.as<float>() + idx4(in, b, p, h);
          float* y = out.as<float>() + idx4(out, b, p, h);
          const float* c = cs.data() + p * hd / 2;
          const float* s = sn.data() + p * hd / 2;
          for (int64_t i = 0; i < hd / 2; ++i) {
            const float x0 = x[2 * i], x1 = x[2 * i + 1];
            y[2 * i] = x0 * c[i] - x1 * s[i];
            y[2 * i + 1] = x0 * s[i] + x1 * c[i];
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
                  {1, 1, m.rows, m.cols},
                  {m.rows * m.row_stride, m.rows * m.row_stride, m.row_stride, m.col_stride}};
    };
    gemm4(as4(c), as4(a), as4(b), alpha, beta);
  }

  static memory::desc md4(const Mat4& m) {
    return memory::desc({m.d[0], m.d[1], m.d[2], m.d[3]}, memory::data_type::f32,
                        {m.s[0], m.s[1], m.s[2], m.s[3]});
  }

  // C = alpha · A·B + beta · C for each of the d0·d1 matrices; primitives cached per shape.
  void gemm4(const Mat4& c, const Mat4& a, const Mat4& b, float alpha, float beta = 0.0f) {
    const MatmulKey key{a.d, b.d, a.s, b.s, c.s, alpha, beta};
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

  static memory::desc rows_md(int64_t rows, int64_t cols) {
    return memory::desc({rows, cols}, memory::data_type::f32, memory::format_tag::ab);
  }

  // dst = softmax(src) over each row of a [rows, cols] buffer.
  void run_softmax(float* dst, float* src, int64_t rows, int64_t cols) {
    const auto key = std::make_pair(rows, cols);
    auto it = softmax_fwd_.find(key);
    if (it == softmax_fwd_.end()) {
#if DNNL_VERSION_MAJOR >= 3
      const dnnl::softmax_forward::primitive_desc pd(engine_, dnnl::prop_kind::forward_training,
                                                     dnnl::algorithm::softmax_accurate,
                                                     rows_md(rows, cols), rows_md(rows, cols), 1);
#else
      const dnnl::softmax_forward::primitive_desc pd(
          dnnl::softmax_forward::desc(dnnl::prop_kind::forward_training, rows_md(rows, cols), 1),
          engine_);
#endif
      it = softmax_fwd_.emplace(key, dnnl::softmax_forward(pd)).first;
    }
    it->second.execute(stream_, {{DNNL_ARG_SRC, memory(rows_md(rows, cols), engine_, src)},
                                 {DNNL_ARG_DST, memory(rows_md(rows, cols), engine_, dst)}});
    stream_.wait();
  }
  void softmax(float* x, int64_t rows, int64_t cols) {
    run_softmax(x, x, rows, cols);
  }

  // d ← p ⊙ (d − rowsum(d ⊙ p)): the softmax backward, in place of the incoming gradient.
  void softmax_backward(float* d, float* p, int64_t rows, int64_t cols) {
    const auto key = std::make_pair(rows, cols);
    auto it = softmax_bwd_.find(key);
    if (it == softmax_bwd_.end()) {
      const memory::desc m = rows_md(rows, cols);
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
    const memory::desc m = rows_md(rows, cols);
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
  std::vector<float> gate_scratch_, diff_scratch_;
  using MatmulKey =
      std::tuple<std::array<int64_t, 4>, std::array<int64_t, 4>, std::array<int64_t, 4>,
                 std::array<int64_t, 4>, std::array<int64_t, 4>, float, float>;
  std::map<MatmulKey, dnnl::matmul> matmuls_;
  std::map<std::pair<int64_t, int64_t>, dnnl::softmax_forward> softmax_fwd_;
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
