// The attention algorithms of the oneDNN backend. Training's forward and backward run as batched
// matmuls over head-major copies, the query heads of one kv head folded into rows ([B, K, G·T, D]
// against [B, K, T, D]), so grouped-query K/V are never repeated; decode, whose context grows
// every step, as direct loops.
#include "backends/onednn/onednn_attention.h"

namespace capbench::onednn {
namespace {

// [B, T, H, D] -> [B, H, T, D] (and back): head-major, which is [B, K, G·T, D].
template <class T>
std::vector<T> to_head_major(const Tensor& x) {
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
void from_head_major(const Tensor& x, const std::vector<T>& hm) {
  const int64_t batch = x.dim(0), t = x.dim(1), heads = x.dim(2), d = x.dim(3);
#pragma omp parallel for collapse(2) schedule(static) if (parallel_worth(x.numel()))
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < t; ++i)
        std::memcpy(x.as<T>() + idx4(x, b, i, h), hm.data() + ((b * heads + h) * t + i) * d,
                    sizeof(T) * d);
}

// Scaled, masked fp32 scores [B·H·T, T] of head-major queries Q ([B, K, G·T, D]) against k.
std::vector<float> scores(Primitives& prims, const Mat4& Q, const Tensor& k, int64_t t, bool causal,
                          float scale) {
  const int64_t rows = Q.d[0] * Q.d[1] * Q.d[2];
  std::vector<float> out(static_cast<size_t>(rows * t));
  prims.gemm4(dense4(out.data(), Q.d[0], Q.d[1], Q.d[2], t), Q, kv_heads(k, t).t(), scale);
  if (causal) {
#pragma omp parallel for schedule(static) if (parallel_worth(rows * t))
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t qpos = row % t;
      for (int64_t j = qpos + 1; j < t; ++j) out[static_cast<size_t>(row * t + j)] = -INFINITY;
    }
  }
  return out;
}

}  // namespace

// Products run at T with fp32 results; scores, softmax and their gradients stay fp32, rounded
// to T only where they become the next product's operand.
template <class T>
void attention_fwd(Primitives& prims, const Tensor& out, const Tensor& lse, const Tensor& q,
                   const Tensor& k, const Tensor& v, bool causal) {
  const int64_t batch = q.dim(0), t = q.dim(1), heads = q.dim(2), d = q.dim(3);
  const int64_t kv = k.dim(2), gt = heads / kv * t, rows = batch * heads * t;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<T> qh = to_head_major<T>(q);
  std::vector<float> probs =
      scores(prims, dense4(qh.data(), batch, kv, gt, d), k, t, causal, scale);
  const std::vector<int64_t> argmax = row_argmax(probs.data(), rows, t);
  std::vector<float> row_max(static_cast<size_t>(rows));  // the softmax overwrites the scores
  for (int64_t row = 0; row < rows; ++row)
    row_max[static_cast<size_t>(row)] = probs[static_cast<size_t>(row * t + argmax[row])];
  prims.softmax(probs.data(), rows, t);
  for (int64_t row = 0; row < rows; ++row)  // [B,H,T] row order
    lse.as<float>()[row] = log_sum_exp_from_softmax(
        row_max[static_cast<size_t>(row)], probs[static_cast<size_t>(row * t + argmax[row])]);
  std::vector<T> probs_lowp;
  T* p = narrowed(probs, probs_lowp);
  std::vector<T>& oh = qh;  // the queries are no longer needed: reuse the buffer
  prims.gemm4(dense4(oh.data(), batch, kv, gt, d), dense4(p, batch, kv, gt, t), kv_heads(v, t),
              1.0f);
  from_head_major(out, oh);
}

template <class T>
void attention_bwd(Primitives& prims, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                   const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                   bool causal) {
  const int64_t batch = q.dim(0), t = q.dim(1), heads = q.dim(2), d = q.dim(3);
  const int64_t kv = k.dim(2), gt = heads / kv * t;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  // Head-major copies: [B, H, T, D] is [B, K, G·T, D], query rows of one kv head together.
  std::vector<T> qh = to_head_major<T>(q), doh = to_head_major<T>(dout);
  const Mat4 Q = dense4(qh.data(), batch, kv, gt, d), dO = dense4(doh.data(), batch, kv, gt, d);
  // Recompute the probabilities exactly as the forward did.
  std::vector<float> probs = scores(prims, Q, k, t, causal, scale);
  prims.softmax(probs.data(), batch * heads * t, t);
  std::vector<T> lowp;
  const Mat4 P = dense4(narrowed(probs, lowp), batch, kv, gt, t);
  std::vector<float> dprobs(probs.size());
  prims.gemm4(dense4(dprobs.data(), batch, kv, gt, t), dO, kv_heads(v, t).t(), 1.0f);  // dP = dO Vᵀ
  prims.gemm4(kv_heads(dv, t), P.t(), dO, 1.0f);  // dV = Pᵀ dO, summed over the group's heads
  prims.softmax_backward(dprobs.data(), probs.data(), batch * heads * t, t);  // dS, in place of dP
  const Mat4 dS = dense4(narrowed(dprobs, lowp), batch, kv, gt, t);
  std::vector<T>& dqh = doh;  // dO is no longer needed
  prims.gemm4(dense4(dqh.data(), batch, kv, gt, d), dS, kv_heads(k, t), scale);  // dQ = s·dS K
  prims.gemm4(kv_heads(dk, t), dS.t(), Q, scale);                                // dK = s·dSᵀ Q
  from_head_major(dq, dqh);
}

// The context grows by one every step, so no primitive could be cached for it: direct loops,
// one (sequence, head, query) per task, dot products over the head dimension.
template <class T>
void attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
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

template void attention_fwd<float>(Primitives&, const Tensor&, const Tensor&, const Tensor&,
                                   const Tensor&, const Tensor&, bool);
template void attention_fwd<BF16>(Primitives&, const Tensor&, const Tensor&, const Tensor&,
                                  const Tensor&, const Tensor&, bool);
template void attention_bwd<float>(Primitives&, const Tensor&, const Tensor&, const Tensor&,
                                   const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   bool);
template void attention_bwd<BF16>(Primitives&, const Tensor&, const Tensor&, const Tensor&,
                                  const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool);
template void attention_decode<float>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                      int64_t);
template void attention_decode<BF16>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                     int64_t);

}  // namespace capbench::onednn
