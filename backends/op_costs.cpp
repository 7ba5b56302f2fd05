#include "backends/op_costs.h"

#include <algorithm>
#include <cmath>

#include "backends/rates.h"

namespace capbench {
namespace {

double b(const Tensor& t) {
  return static_cast<double>(t.bytes());
}
double n(const Tensor& t) {
  return static_cast<double>(t.numel());
}

// Number of (query, key) pairs a causal attention over T queries at positions pos..pos+T-1
// visits, keys 0..own position: sum over t of (pos + t + 1).
double causal_pairs(double t_queries, double pos) {
  return t_queries * pos + t_queries * (t_queries + 1) / 2;
}

}  // namespace

namespace {

// The nearest class in log scale: by size, and by rows where both are known.
double nearest(const std::vector<ShapeRate>& classes, double size, double rows = 0) {
  const ShapeRate* best = nullptr;
  double best_distance = 0;
  for (const ShapeRate& c : classes) {
    double d = std::pow(std::log(static_cast<double>(c.size)) - std::log(size), 2);
    if (c.rows > 0 && rows > 0)
      d += std::pow(std::log(static_cast<double>(c.rows)) - std::log(rows), 2);
    if (!best || d < best_distance) best = &c, best_distance = d;
  }
  return best ? best->rate : 0;
}

}  // namespace

Rates HostRates::for_op(OpId op, const OpCost& cost) const {
  Rates r = peak;
  if (op == OpId::matmul && cost.m > 0) {
    if (cost.m <= kGemvRows) {
      if (const double rate =
              nearest(gemv, static_cast<double>(cost.k), static_cast<double>(cost.n));
          rate > 0)
        r.bytes_per_s = rate;
    } else {
      const double size = std::cbrt(static_cast<double>(cost.m) * static_cast<double>(cost.n) *
                                    static_cast<double>(cost.k));
      if (const double rate = nearest(gemm, size); rate > 0) r.flops = rate;
    }
  } else if (op != OpId::matmul && other_bytes_per_s > 0) {
    r.bytes_per_s = other_bytes_per_s;
  }
  return r;
}

Roofline roofline(const OpCost& cost, double peak_flops, double peak_bytes_per_s) {
  const double tc = peak_flops > 0 ? cost.flops / peak_flops : 0;
  const double tm = peak_bytes_per_s > 0 ? cost.bytes / peak_bytes_per_s : 0;
  return {std::max(tc, tm), tc >= tm};
}

OpCost embedding_fwd_cost(const Tensor& out, const Tensor& tokens, const Tensor&) {
  // Reads one table row per token: as many bytes as the output.
  return {0, b(tokens) + 2 * b(out)};
}

OpCost embedding_bwd_cost(const Tensor& dtable, const Tensor& dout, const Tensor& tokens) {
  // Read-modify-write of the touched rows; at most all of them.
  const double rows = std::min(n(tokens), static_cast<double>(dtable.dim(0)));
  const double row_bytes = static_cast<double>(dtable.dim(1) * dtype_size(dtable.dtype));
  return {n(dout), b(tokens) + b(dout) + 2 * rows * row_bytes};
}

OpCost rmsnorm_fwd_cost(const Tensor& out, const Tensor& rstd, const Tensor& in,
                        const Tensor& weight) {
  return {4 * n(in), b(in) + b(weight) + b(out) + b(rstd)};
}

OpCost rmsnorm_bwd_cost(const Tensor& din, const Tensor& dweight, const Tensor& dout,
                        const Tensor& in, const Tensor& weight, const Tensor& rstd) {
  // din and dweight accumulate: read and written.
  return {8 * n(in), b(dout) + b(in) + b(weight) + b(rstd) + 2 * b(din) + 2 * b(dweight)};
}

OpCost matmul_cost(const Tensor& c, const Tensor& a, const Tensor& bt, const MatmulArgs& args) {
  const double m = static_cast<double>(c.rows()), nn = static_cast<double>(c.cols());
  const double k = static_cast<double>(args.trans_a ? a.rows() : a.cols());
  const double c_bytes = (args.beta != 0.0f ? 2 : 1) * b(c);
  OpCost cost{2 * m * nn * k, b(a) + b(bt) + c_bytes};
  cost.m = c.rows();
  cost.n = c.cols();
  cost.k = args.trans_a ? a.rows() : a.cols();
  return cost;
}

OpCost rope_cost(const Tensor& out, const Tensor& in) {
  return {3 * n(in), b(in) + b(out)};
}

OpCost attention_fwd_cost(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                          const Tensor& v, const AttentionArgs& args) {
  const double batch = static_cast<double>(q.dim(0)), t = static_cast<double>(q.dim(1));
  const double heads = static_cast<double>(q.dim(2)), d = static_cast<double>(q.dim(3));
  const double pairs = args.causal ? causal_pairs(t, 0) : t * t;
  // QKᵀ and PV: 2 multiply-adds per (pair, dim).
  return {4 * batch * heads * pairs * d, b(q) + b(k) + b(v) + b(out) + b(lse)};
}

OpCost attention_bwd_cost(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                          const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                          const Tensor& lse, const AttentionArgs& args) {
  const double batch = static_cast<double>(q.dim(0)), t = static_cast<double>(q.dim(1));
  const double heads = static_cast<double>(q.dim(2)), d = static_cast<double>(q.dim(3));
  const double pairs = args.causal ? causal_pairs(t, 0) : t * t;
  // Recompute of QKᵀ plus dV, dP, dQ, dK: five products, as flash-attention's backward counts.
  return {10 * batch * heads * pairs * d,
          b(dout) + b(q) + b(k) + b(v) + b(out) + b(lse) + b(dq) + b(dk) + b(dv)};
}

OpCost kv_append_cost(const Tensor& k, const Tensor& v) {
  return {0, 2 * (b(k) + b(v))};
}

OpCost attention_decode_cost(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                             const Tensor& v_cache, const DecodeArgs& args) {
  const double batch = static_cast<double>(q.dim(0)), t = static_cast<double>(q.dim(1));
  const double heads = static_cast<double>(q.dim(2)), d = static_cast<double>(q.dim(3));
  const double kv_heads = static_cast<double>(k_cache.dim(2));
  const double ctx = static_cast<double>(args.pos) + t;  // cache positions read
  const double elt = static_cast<double>(dtype_size(k_cache.dtype));
  const double cache_read = 2 * batch * ctx * kv_heads * d * elt;
  return {4 * batch * heads * causal_pairs(t, static_cast<double>(args.pos)) * d,
          b(q) + b(out) + cache_read};
}

OpCost swiglu_fwd_cost(const Tensor& out, const Tensor& gate_up) {
  return {6 * n(out), b(gate_up) + b(out)};
}

OpCost swiglu_bwd_cost(const Tensor& dgate_up, const Tensor& dout, const Tensor& gate_up) {
  return {12 * n(dout), b(dout) + b(gate_up) + b(dgate_up)};
}

OpCost add_cost(const Tensor& out, const Tensor& a, const Tensor& bt) {
  return {n(out), b(a) + b(bt) + b(out)};
}

OpCost cross_entropy_cost(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                          const Tensor& targets) {
  return {5 * n(logits), b(logits) + b(targets) + b(losses) + b(dlogits)};
}

OpCost adamw_cost(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v) {
  // Reads params, grads and both moments; writes params and both moments.
  return {15 * n(params), 2 * b(params) + b(grads) + 2 * b(m) + 2 * b(v)};
}

OpCost convert_cost(const Tensor& out, const Tensor& in) {
  return {n(in), b(in) + b(out)};
}

}  // namespace capbench
