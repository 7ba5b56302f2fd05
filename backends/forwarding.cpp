#include "backends/forwarding.h"

namespace capbench {

void ForwardingBackend::embedding_fwd(const Tensor& out, const Tensor& tokens,
                                      const Tensor& table) {
  if (!intercept_) return inner_.embedding_fwd(out, tokens, table);
  around_op(OpId::embedding_fwd, embedding_fwd_cost(out, tokens, table),
            [=] { inner_.embedding_fwd(out, tokens, table); });
}
void ForwardingBackend::embedding_bwd(const Tensor& dtable, const Tensor& dout,
                                      const Tensor& tokens) {
  if (!intercept_) return inner_.embedding_bwd(dtable, dout, tokens);
  around_op(OpId::embedding_bwd, embedding_bwd_cost(dtable, dout, tokens),
            [=] { inner_.embedding_bwd(dtable, dout, tokens); });
}
void ForwardingBackend::rmsnorm_fwd(const Tensor& out, const Tensor& rstd, const Tensor& in,
                                    const Tensor& weight, const RmsNormArgs& args) {
  if (!intercept_) return inner_.rmsnorm_fwd(out, rstd, in, weight, args);
  around_op(OpId::rmsnorm_fwd, rmsnorm_fwd_cost(out, rstd, in, weight),
            [=] { inner_.rmsnorm_fwd(out, rstd, in, weight, args); });
}
void ForwardingBackend::rmsnorm_bwd(const Tensor& din, const Tensor& dweight, const Tensor& dout,
                                    const Tensor& in, const Tensor& weight, const Tensor& rstd) {
  if (!intercept_) return inner_.rmsnorm_bwd(din, dweight, dout, in, weight, rstd);
  around_op(OpId::rmsnorm_bwd, rmsnorm_bwd_cost(din, dweight, dout, in, weight, rstd),
            [=] { inner_.rmsnorm_bwd(din, dweight, dout, in, weight, rstd); });
}
void ForwardingBackend::matmul(const Tensor& c, const Tensor& a, const Tensor& b,
                               const MatmulArgs& args) {
  if (!intercept_) return inner_.matmul(c, a, b, args);
  around_op(OpId::matmul, matmul_cost(c, a, b, args), [=] { inner_.matmul(c, a, b, args); });
}
void ForwardingBackend::rope_fwd(const Tensor& out, const Tensor& in, const RopeArgs& args) {
  if (!intercept_) return inner_.rope_fwd(out, in, args);
  around_op(OpId::rope_fwd, rope_cost(out, in), [=] { inner_.rope_fwd(out, in, args); });
}
void ForwardingBackend::rope_bwd(const Tensor& din, const Tensor& dout, const RopeArgs& args) {
  if (!intercept_) return inner_.rope_bwd(din, dout, args);
  around_op(OpId::rope_bwd, rope_cost(din, dout), [=] { inner_.rope_bwd(din, dout, args); });
}
void ForwardingBackend::attention_fwd(const Tensor& out, const Tensor& lse, const Tensor& q,
                                      const Tensor& k, const Tensor& v, const AttentionArgs& args) {
  if (!intercept_) return inner_.attention_fwd(out, lse, q, k, v, args);
  around_op(OpId::attention_fwd, attention_fwd_cost(out, lse, q, k, v, args),
            [=] { inner_.attention_fwd(out, lse, q, k, v, args); });
}
void ForwardingBackend::attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                      const Tensor& dout, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const Tensor& out, const Tensor& lse,
                                      const AttentionArgs& args) {
  if (!intercept_) return inner_.attention_bwd(dq, dk, dv, dout, q, k, v, out, lse, args);
  around_op(OpId::attention_bwd, attention_bwd_cost(dq, dk, dv, dout, q, k, v, out, lse, args),
            [=] { inner_.attention_bwd(dq, dk, dv, dout, q, k, v, out, lse, args); });
}
void ForwardingBackend::kv_append(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k,
                                  const Tensor& v, const KvAppendArgs& args) {
  if (!intercept_) return inner_.kv_append(k_cache, v_cache, k, v, args);
  around_op(OpId::kv_append, kv_append_cost(k, v),
            [=] { inner_.kv_append(k_cache, v_cache, k, v, args); });
}
void ForwardingBackend::attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                                         const Tensor& v_cache, const DecodeArgs& args) {
  if (!intercept_) return inner_.attention_decode(out, q, k_cache, v_cache, args);
  around_op(OpId::attention_decode, attention_decode_cost(out, q, k_cache, v_cache, args),
            [=] { inner_.attention_decode(out, q, k_cache, v_cache, args); });
}
void ForwardingBackend::swiglu_fwd(const Tensor& out, const Tensor& gate_up) {
  if (!intercept_) return inner_.swiglu_fwd(out, gate_up);
  around_op(OpId::swiglu_fwd, swiglu_fwd_cost(out, gate_up),
            [=] { inner_.swiglu_fwd(out, gate_up); });
}
void ForwardingBackend::swiglu_bwd(const Tensor& dgate_up, const Tensor& dout,
                                   const Tensor& gate_up) {
  if (!intercept_) return inner_.swiglu_bwd(dgate_up, dout, gate_up);
  around_op(OpId::swiglu_bwd, swiglu_bwd_cost(dgate_up, dout, gate_up),
            [=] { inner_.swiglu_bwd(dgate_up, dout, gate_up); });
}
void ForwardingBackend::add(const Tensor& out, const Tensor& a, const Tensor& b) {
  if (!intercept_) return inner_.add(out, a, b);
  around_op(OpId::add, add_cost(out, a, b), [=] { inner_.add(out, a, b); });
}
void ForwardingBackend::cross_entropy_fwd_bwd(const Tensor& losses, const Tensor& dlogits,
                                              const Tensor& logits, const Tensor& targets,
                                              const CrossEntropyArgs& args) {
  if (!intercept_) return inner_.cross_entropy_fwd_bwd(losses, dlogits, logits, targets, args);
  around_op(OpId::cross_entropy_fwd_bwd, cross_entropy_cost(losses, dlogits, logits, targets),
            [=] { inner_.cross_entropy_fwd_bwd(losses, dlogits, logits, targets, args); });
}
void ForwardingBackend::adamw(const Tensor& params, const Tensor& grads, const Tensor& m,
                              const Tensor& v, const AdamWArgs& args) {
  if (!intercept_) return inner_.adamw(params, grads, m, v, args);
  around_op(OpId::adamw, adamw_cost(params, grads, m, v),
            [=] { inner_.adamw(params, grads, m, v, args); });
}

void ForwardingBackend::convert(const Tensor& out, const Tensor& in) {
  if (!intercept_) return inner_.convert(out, in);
  around_op(OpId::convert, convert_cost(out, in), [=] { inner_.convert(out, in); });
}

}  // namespace capbench
