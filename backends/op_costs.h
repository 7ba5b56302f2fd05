// The cost of an op call: its FLOPs and the minimum bytes it must move (each input read once,
// each output written once, at its dtype). One function per op, taking the op's own arguments,
// so the throttle, the roofline prediction and the per-op report all call the same formulas
// (the model-level figures, FLOPs per step and bytes per decode step, are the workloads').
// Multiply-add counts as 2 FLOPs; elementwise work counts its arithmetic roughly, since those ops
// are bound by bytes.
#pragma once

#include "backends/backend.h"

namespace capbench {

struct OpCost {
  double flops = 0;
  double bytes = 0;
  // A matmul's C[m, n] += A[m, k]·B[k, n]: the shape class whose host rate paces it
  // (backends/rates.h). Zeros for other ops.
  int64_t m = 0, n = 0, k = 0;
  OpCost& operator+=(const OpCost& o) {
    flops += o.flops;
    bytes += o.bytes;
    return *this;
  }
};

// Time the op needs on a machine with these peak rates, and which rate binds it.
struct Roofline {
  double seconds = 0;
  bool compute_bound = false;
};
Roofline roofline(const OpCost& cost, double peak_flops, double peak_bytes_per_s);

OpCost embedding_fwd_cost(const Tensor& out, const Tensor& tokens, const Tensor& table);
OpCost embedding_bwd_cost(const Tensor& dtable, const Tensor& dout, const Tensor& tokens);
OpCost rmsnorm_fwd_cost(const Tensor& out, const Tensor& rstd, const Tensor& in,
                        const Tensor& weight);
OpCost rmsnorm_bwd_cost(const Tensor& din, const Tensor& dweight, const Tensor& dout,
                        const Tensor& in, const Tensor& weight, const Tensor& rstd);
OpCost matmul_cost(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args);
OpCost rope_cost(const Tensor& out, const Tensor& in);
OpCost attention_fwd_cost(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                          const Tensor& v, const AttentionArgs& args);
OpCost attention_bwd_cost(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                          const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                          const Tensor& lse, const AttentionArgs& args);
OpCost kv_append_cost(const Tensor& k, const Tensor& v);
OpCost attention_decode_cost(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                             const Tensor& v_cache, const DecodeArgs& args);
OpCost swiglu_fwd_cost(const Tensor& out, const Tensor& gate_up);
OpCost swiglu_bwd_cost(const Tensor& dgate_up, const Tensor& dout, const Tensor& gate_up);
OpCost add_cost(const Tensor& out, const Tensor& a, const Tensor& b);
OpCost cross_entropy_cost(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                          const Tensor& targets);
OpCost adamw_cost(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v);
OpCost convert_cost(const Tensor& out, const Tensor& in);

}  // namespace capbench
