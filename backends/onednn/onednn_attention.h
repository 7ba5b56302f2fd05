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
// New queries at positions pos.. over the cache's first pos + T positions ([B,S,K,D] each).
template <class T>
void attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                      const Tensor& v_cache, int64_t pos);

}  // namespace capbench::onednn
