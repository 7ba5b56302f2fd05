// The attention algorithms of the oneDNN backend. Training's forward and backward run as batched
// matmuls over head-major copies, the query heads of one kv head folded into rows ([B, K, G·T, D]
// against [B, K, T, D]), so grouped-query K/V are never repeated; decode, whose context grows
// every step, as direct loops.
#include "backends/onednn/onednn_attention.h"

#include "backends/onednn/onednn_avx512.h"

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

namespace {

// One query row against `ctx` cached positions of one kv head: out = softmax(scale · q·Kᵀ)·V in
// fp32, the softmax's exponentials in p.
//   out, q: [d]; position j of K at k + j·stride, of V at v + j·stride; p: [ctx]
template <class T>
void attend_row(T* out, const float* q, const T* k, const T* v, int64_t stride, int64_t ctx,
                int64_t d, float scale, float* p, float* acc) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < ctx; ++j) {
    const T* kj = k + j * stride;
    float dot = 0;
    // simd: lets the compiler reassociate the sum, i.e. vectorise it.
#pragma omp simd reduction(+ : dot)
    for (int64_t x = 0; x < d; ++x) dot += q[x] * load(kj + x);
    p[j] = dot * scale;
    mx = std::max(mx, p[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < ctx; ++j) {
    p[j] = std::exp(p[j] - mx);
    sum += p[j];
  }
  std::fill_n(acc, d, 0.0f);
  for (int64_t j = 0; j < ctx; ++j) {
    const T* vj = v + j * stride;
    for (int64_t x = 0; x < d; ++x) acc[x] += p[j] * load(vj + x);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t x = 0; x < d; ++x) store(out + x, acc[x] * inv);
}

// attend_row with 16 lanes at a time, for a run of query heads of one query row over positions
// [0, n) of the cache, d a multiple of 16 up to kMaxLaneHeadDim, left unnormalised: acc[r] =
// Σ_j e_rj · v_j, total[r] = Σ_j e_rj, top[r] = max_j s_rj, with s_rj = scale · q_r·k_j and
// e_rj = exp(s_rj − top[r]); so spans of positions computed apart combine exactly (flash
// decoding). Scores go 16 positions at a time (their dot products summed across lanes together)
// and position by position across the run's kv heads, so a thread reads each position's slice of
// the cache (its kv heads side by side) once and in order: after a step's weights have streamed
// through, the cache comes from memory. Exponentials 16 lanes at a time.
//   qf, acc: [heads, d] fp32; top, total: [heads]; kv head c of the run (counted from the kv
//   head of its first query head h_begin) at position j: k + j·stride + c·d, likewise v.
//   scratch: lanes_scratch_floats(heads, n), 64-byte aligned.
constexpr int64_t kMaxLaneHeadDim = 256;
template <class T>
CAPBENCH_AVX512 void attend_span_lanes(float* acc, float* top, float* total, const float* qf,
                                       const T* k, const T* v, int64_t h_begin, int64_t heads,
                                       int64_t group, int64_t stride, int64_t n, int64_t d,
                                       float scale, float* scratch) {
  std::fill_n(acc, heads * d, 0.0f);
  std::fill_n(total, heads, 0.0f);
  std::fill_n(top, heads, -INFINITY);
  if (n <= 0) return;
  const int64_t blocks = d / 16, padded = (n + 15) / 16 * 16;
  // The run's slice of a position: from its first kv head to the end of its last.
  const int64_t first_kv = h_begin / group;
  const int64_t slice = ((h_begin + heads - 1) / group - first_kv + 1) * d;
  auto kv_offset = [&](int64_t r) { return ((h_begin + r) / group - first_kv) * d; };
  auto valid_of = [&](int64_t j0) {
    return static_cast<__mmask16>((uint32_t{1} << std::min<int64_t>(16, n - j0)) - 1);
  };
  // Ahead of position j, the slice of position j + kPrefetchAhead is requested.
  constexpr int64_t kPrefetchAhead = 8;
  auto prefetch_slice = [&](const T* base, int64_t j) {
    if (j >= n) return;
    const char* at = reinterpret_cast<const char*>(base + j * stride);
    for (int64_t byte = 0; byte < slice * static_cast<int64_t>(sizeof(T)); byte += 64)
      _mm_prefetch(at + byte, _MM_HINT_T0);
  };
  __m512* dots = reinterpret_cast<__m512*>(scratch);  // [heads, 16]: one block's dot products
  float* p = scratch + heads * 16 * 16;               // [heads, padded]: scores, exponentials
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    for (int64_t i = 0; i < 16; ++i) {
      const int64_t j = j0 + i;
      prefetch_slice(k, j + kPrefetchAhead);
      for (int64_t r = 0; r < heads; ++r) {
        __m512 dot = _mm512_setzero_ps();
        if (j < n) {
          const T* kj = k + j * stride + kv_offset(r);
          for (int64_t b = 0; b < blocks; ++b)
            dot = _mm512_fmadd_ps(_mm512_loadu_ps(qf + r * d + 16 * b), widen16(kj + 16 * b), dot);
        }
        dots[r * 16 + i] = dot;
      }
    }
    for (int64_t r = 0; r < heads; ++r)
      _mm512_mask_storeu_ps(p + r * padded + j0, valid_of(j0),
                            _mm512_mul_ps(sums_of_16(dots + r * 16), _mm512_set1_ps(scale)));
  }
  for (int64_t r = 0; r < heads; ++r) {
    float* pr = p + r * padded;
    __m512 most = _mm512_set1_ps(-INFINITY);
    for (int64_t j0 = 0; j0 < n; j0 += 16)
      most = _mm512_mask_max_ps(most, valid_of(j0), most, _mm512_loadu_ps(pr + j0));
    top[r] = lanes_max(most);
    const __m512 shift = _mm512_set1_ps(top[r]);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
      const __mmask16 valid = valid_of(j0);
      const __m512 e = _mm512_maskz_mov_ps(
          valid, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(valid, pr + j0), shift)));
      _mm512_mask_storeu_ps(pr + j0, valid, e);
      sum = _mm512_add_ps(sum, e);
    }
    total[r] = lanes_sum(sum);
  }
  for (int64_t j = 0; j < n; ++j) {
    prefetch_slice(v, j + kPrefetchAhead);
    for (int64_t r = 0; r < heads; ++r) {
      const __m512 w = _mm512_set1_ps(p[r * padded + j]);
      const T* vj = v + j * stride + kv_offset(r);
      for (int64_t b = 0; b < blocks; ++b) {
        float* a = acc + r * d + 16 * b;
        _mm512_storeu_ps(a, _mm512_fmadd_ps(w, widen16(vj + 16 * b), _mm512_loadu_ps(a)));
      }
    }
  }
}

// Floats of attend_span_lanes' scratch for `heads` heads over n positions.
inline size_t lanes_scratch_floats(int64_t heads, int64_t n) {
  return static_cast<size_t>(heads * (16 * 16 + (n + 15) / 16 * 16));
}

// q [heads, d] at T into fp32.
template <class T>
CAPBENCH_AVX512 void widen_heads(float* qf, const T* q, int64_t heads, int64_t d) {
  for (int64_t x = 0; x < heads * d; x += 16) _mm512_storeu_ps(qf + x, widen16(q + x));
}

// out [heads, d] = acc / total per head.
template <class T>
CAPBENCH_AVX512 void normalised(T* out, const float* acc, const float* total, int64_t heads,
                                int64_t d) {
  for (int64_t r = 0; r < heads; ++r) {
    const __m512 inv = _mm512_set1_ps(1.0f / total[r]);
    for (int64_t x = 0; x < d; x += 16)
      narrow16(out + r * d + x, _mm512_mul_ps(_mm512_loadu_ps(acc + r * d + x), inv));
  }
}

// 64-byte lines of fp32 scratch (the dot products are stored as whole vectors).
struct alignas(64) Line {
  float lanes[16];
};
// At least `floats` of this thread's own scratch, 64-byte aligned, kept from call to call: a
// decode step calls attention once a layer, and allocating and clearing it each time was a
// measurable share of a call whose cache is warm. Two buffers: a thread's working scratch, and
// the spans' partial results that the calling thread holds for the whole team.
enum class Scratch { own, partials };
float* thread_scratch(size_t floats, Scratch which) {
  static thread_local std::vector<Line> lines[2];
  std::vector<Line>& mine = lines[static_cast<int>(which)];
  if (mine.size() * 16 < floats) mine.resize((floats + 15) / 16);
  return mine.data()->lanes;
}

}  // namespace

// The context grows by one every step, so no primitive could be cached for it: direct loops over
// the cache, 16 lanes at a time where the CPU and the head dim allow, else portable ones. The
// threads split one token's positions (DecodeSplit::positions) when there are fewer rows than
// threads: at llama-350m's shape (16 heads, 8 kv heads, 145 positions), with the cache coming
// from memory as in a step, a call took 0.61-0.86x the time of splitting the heads at bf16 and
// 0.54x at fp32; warm, 1.04-1.06x and 0.98x (benchmarks/cpu_decode/decode_attention.cpp).
template <class T>
void attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                      const Tensor& v_cache, int64_t pos, DecodeSplit split) {
  const int64_t batch = q.dim(0), t = q.dim(1), heads = q.dim(2), d = q.dim(3);
  const int64_t group = heads / k_cache.dim(2), ctx = pos + t;
  const int64_t stride = k_cache.dim(2) * d;  // elements from one position to the next
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  static const bool avx512 = cpu_runs_avx512(false);
  const bool parallel = parallel_worth(batch * heads * t * ctx * d);
  const bool lanes = avx512 && d % 16 == 0 && d <= kMaxLaneHeadDim;
  const bool split_positions = split == DecodeSplit::positions ||
                               (split == DecodeSplit::automatic && batch < omp_get_max_threads());
  if (lanes && t == 1 && parallel && omp_get_max_threads() > 1 && split_positions) {
    // One new token a row: the threads split the positions, each reading a contiguous span of
    // the cache (every kv head of a position side by side, positions in order: one sequential
    // stream per thread, where splitting the heads gave each thread half of every position's
    // slice), and the spans' partial softmaxes combine per head.
    const int64_t team = omp_get_max_threads(), spans = batch * team * heads;
    // Each span's partial result per (row, head): acc [d], then top and total.
    float* acc = thread_scratch(static_cast<size_t>(spans * (d + 2)), Scratch::partials);
    float* tops = acc + spans * d;
    float* totals = tops + spans;
    auto part = [&](int64_t b, int64_t w) { return (b * team + w) * heads; };
#pragma omp parallel num_threads(team)
    {
      const int64_t me = omp_get_thread_num(), n = omp_get_num_threads();
      const int64_t from = ctx * me / n, to = ctx * (me + 1) / n;
      const int64_t at_scratch = (heads * d + 15) / 16 * 16;
      float* qf = thread_scratch(
          static_cast<size_t>(at_scratch) + lanes_scratch_floats(heads, to - from), Scratch::own);
      for (int64_t b = 0; b < batch; ++b) {
        widen_heads(qf, q.as<T>() + idx4(q, b, 0, 0), heads, d);
        attend_span_lanes(acc + part(b, me) * d, tops + part(b, me), totals + part(b, me), qf,
                          k_cache.as<T>() + idx4(k_cache, b, from, 0),
                          v_cache.as<T>() + idx4(v_cache, b, from, 0), 0, heads, group, stride,
                          to - from, d, scale, qf + at_scratch);
      }
#pragma omp barrier
      // Each thread combines a share of the (row, head) pairs: the spans' sums rescaled to the
      // largest score.
      const int64_t pairs = batch * heads;
      for (int64_t pair = pairs * me / n; pair < pairs * (me + 1) / n; ++pair) {
        const int64_t b = pair / heads, h = pair % heads;
        float most = -INFINITY;
        for (int64_t w = 0; w < n; ++w)
          if (totals[part(b, w) + h] > 0) most = std::max(most, tops[part(b, w) + h]);
        float sum = 0;
        float* merged = qf;  // [d]: this thread's query is no longer needed
        std::fill_n(merged, d, 0.0f);
        for (int64_t w = 0; w < n; ++w) {
          const int64_t at = part(b, w) + h;
          if (!(totals[at] > 0)) continue;  // a span of no positions
          const float weight = std::exp(tops[at] - most);
          sum += weight * totals[at];
          const float* a = acc + at * d;
          for (int64_t x = 0; x < d; ++x) merged[x] += weight * a[x];
        }
        normalised(out.as<T>() + idx4(out, b, 0, h), merged, &sum, 1, d);
      }
    }
    return;
  }
  if (lanes) {
    // The query heads of all rows, (b, i, h) flattened, in one contiguous share per thread
    // that keeps each kv head's group together; a share's heads of one row are one run.
    const int64_t total = batch * t * heads;
#pragma omp parallel if (parallel)
    {
      const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
      auto edge = [&](int64_t w) { return w == team ? total : total * w / team / group * group; };
      const int64_t first = edge(me), last = edge(me + 1);
      // [heads, d] query and [heads, d] output, [heads] top and total, then the scratch.
      const int64_t at_scratch = (heads * (2 * d + 2) + 15) / 16 * 16;
      float* qf = thread_scratch(static_cast<size_t>(at_scratch) + lanes_scratch_floats(heads, ctx),
                                 Scratch::own);
      float* acc = qf + heads * d;
      float* top = acc + heads * d;
      float* sums = top + heads;
      for (int64_t f = first; f < last;) {
        const int64_t row = f / heads, h = f % heads, run = std::min(last - f, heads - h);
        const int64_t b = row / t, i = row % t;
        widen_heads(qf, q.as<T>() + idx4(q, b, i, h), run, d);
        attend_span_lanes(acc, top, sums, qf, k_cache.as<T>() + idx4(k_cache, b, 0, h / group),
                          v_cache.as<T>() + idx4(v_cache, b, 0, h / group), h, run, group, stride,
                          pos + i + 1, d, scale, qf + at_scratch);
        normalised(out.as<T>() + idx4(out, b, i, h), acc, sums, run, d);
        f += run;
      }
    }
    return;
  }
#pragma omp parallel if (parallel)
  {
    std::vector<float> p(static_cast<size_t>(ctx)), acc(static_cast<size_t>(d)),
        qf(static_cast<size_t>(d));
#pragma omp for collapse(3) schedule(static)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < t; ++i) {
          const int64_t kh = h / group, seen = pos + i + 1;  // causal: positions 0 .. pos + i
          const T* qv = q.as<T>() + idx4(q, b, i, h);
          for (int64_t x = 0; x < d; ++x) qf[static_cast<size_t>(x)] = load(qv + x);
          attend_row(out.as<T>() + idx4(out, b, i, h), qf.data(),
                     k_cache.as<T>() + idx4(k_cache, b, 0, kh),
                     v_cache.as<T>() + idx4(v_cache, b, 0, kh), stride, seen, d, scale, p.data(),
                     acc.data());
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
                                      int64_t, DecodeSplit);
template void attention_decode<BF16>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                     int64_t, DecodeSplit);

}  // namespace capbench::onednn
