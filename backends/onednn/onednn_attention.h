// The oneDNN backend's attention: forward and backward over a training batch (causal,
// grouped-query; the forward saves each row's log-sum-exp), and decode over a KV cache. T is the
// stored element type (float or BF16); everything computes in fp32.
#pragma once

#include "backends/onednn/onednn_primitives.h"

namespace capbench::onednn {

// out [B,T,H,D], lse [B,H,T] fp32, q [B,T,H,D], k and v [B,T,K,D].
template <class T>
void attention_fwd(Primitives& prims, const Tensor& out, const Tensor& lse, const Tensor& q,
                   const Tensor& k, const Tensor& v, bool causal);
// The gradients of attention_fwd: dq like q, dk and dv like k (summed over each group's heads).
template <class T>
void attention_bwd(Primitives& prims, const Tensor& dq, const Tensor& dk, const Tensor& dv,
                   const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                   bool causal);
// How decode's threads share the work of one new token a row. heads: each thread takes whole
// rows, or a run of one row's heads (half of every position's slice of the cache when a row's
// heads are split). positions: each thread a contiguous span of the positions, all heads (one
// sequential stream per thread), the spans' partial softmaxes combined after; automatic:
// positions when there are fewer rows than threads (benchmarks/cpu_decode/decode_attention.cpp
// compares the two).
enum class DecodeSplit { automatic, heads, positions };
// New queries at positions pos.. over the cache's first pos + T positions ([B,S,K,D] each).
template <class T>
void attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                      const Tensor& v_cache, int64_t pos,
                      DecodeSplit split = DecodeSplit::automatic);

}  // namespace capbench::onednn
