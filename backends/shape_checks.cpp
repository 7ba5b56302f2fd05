#include "backends/shape_checks.h"

namespace capbench {

void shape_error(const std::string& what) {
  throw std::invalid_argument(what);
}

void require_dtype(const Tensor& t, DType dtype, const char* what) {
  if (t.dtype != dtype)
    shape_error(std::string(what) + ": expected " + dtype_name(dtype) + ", got " +
                dtype_name(t.dtype));
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* what) {
  if (a.rank != b.rank || a.numel() != b.numel() || a.shape != b.shape)
    shape_error(std::string(what) + ": shape " + a.shape_string() + " vs " + b.shape_string());
  require_same_dtype(a, b, what);
}

void require_same_dtype(const Tensor& a, const Tensor& b, const char* what) {
  if (a.dtype != b.dtype)
    shape_error(std::string(what) + ": dtypes " + dtype_name(a.dtype) + " and " +
                dtype_name(b.dtype) + " differ");
}

void check_convert(const Tensor& out, const Tensor& in) {
  if (out.numel() != in.numel())
    shape_error("convert: out" + out.shape_string() + " and in" + in.shape_string() +
                " differ in element count");
  for (const Tensor* t : {&out, &in})
    if (t->dtype != DType::f32 && t->dtype != DType::bf16)
      shape_error(std::string("convert: fp32 and bf16 only, got ") + dtype_name(t->dtype));
}

MatmulDims check_matmul(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args) {
  const int64_t m = c.rows(), n = c.cols();
  const int64_t am = args.trans_a ? a.cols() : a.rows(), k = args.trans_a ? a.rows() : a.cols();
  const int64_t bk = args.trans_b ? b.cols() : b.rows(), bn = args.trans_b ? b.rows() : b.cols();
  if (am != m || bn != n || bk != k)
    shape_error("matmul: C" + c.shape_string() + " = op(A" + a.shape_string() + ") op(B" +
                b.shape_string() + ") with trans_a=" + std::to_string(args.trans_a) +
                " trans_b=" + std::to_string(args.trans_b) + " does not fit");
  require_same_dtype(a, b, "matmul A/B");
  if (c.dtype != a.dtype && c.dtype != DType::f32)
    shape_error(std::string("matmul: C must be at A's dtype or fp32, got ") + dtype_name(c.dtype) +
                " with " + dtype_name(a.dtype) + " inputs");
  return {m, n, k};
}

void check_embedding(const Tensor& out, const Tensor& tokens, const Tensor& table) {
  require_dtype(tokens, DType::i32, "embedding tokens");
  if (out.rows() != tokens.numel() || out.cols() != table.dim(1) || table.rank != 2)
    shape_error("embedding: out" + out.shape_string() + " tokens" + tokens.shape_string() +
                " table" + table.shape_string());
}

void check_rmsnorm(const Tensor& out, const Tensor& rstd, const Tensor& in, const Tensor& weight) {
  check_same_shape(out, in, "rmsnorm out/in");
  require_dtype(rstd, DType::f32, "rmsnorm rstd");
  if (rstd.numel() != in.rows() || weight.numel() != in.cols())
    shape_error("rmsnorm: in" + in.shape_string() + " rstd" + rstd.shape_string() + " weight" +
                weight.shape_string());
}

void check_rope(const Tensor& out, const Tensor& in) {
  check_same_shape(out, in, "rope");
  if (in.rank != 4 || in.dim(3) % 2 != 0)
    shape_error("rope: expected [B,T,H,D] with even D, got " + in.shape_string());
}

static void check_gqa(const Tensor& q, const Tensor& k, const char* what) {
  if (q.rank != 4 || k.rank != 4 || q.dim(0) != k.dim(0) || q.dim(3) != k.dim(3) || k.dim(2) == 0 ||
      q.dim(2) % k.dim(2) != 0)
    shape_error(std::string(what) + ": q" + q.shape_string() + " k" + k.shape_string() +
                " (need [B,T,H,D], [B,S,K,D] with H a multiple of K)");
}

void check_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                     const Tensor& v) {
  check_gqa(q, k, "attention");
  check_same_shape(k, v, "attention k/v");
  check_same_shape(out, q, "attention out/q");
  require_dtype(lse, DType::f32, "attention lse");
  if (k.dim(1) != q.dim(1) || lse.numel() != q.dim(0) * q.dim(2) * q.dim(1))
    shape_error("attention: q" + q.shape_string() + " k" + k.shape_string() + " lse" +
                lse.shape_string());
}

void check_attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                         const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                         const Tensor& lse) {
  check_attention(out, lse, q, k, v);
  check_same_shape(dq, q, "attention_bwd dq");
  check_same_shape(dk, k, "attention_bwd dk");
  check_same_shape(dv, v, "attention_bwd dv");
  check_same_shape(dout, out, "attention_bwd dout");
}

void check_kv_append(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                     const KvAppendArgs& args) {
  check_same_shape(k_cache, v_cache, "kv_append caches");
  check_same_shape(k, v, "kv_append k/v");
  if (k.rank != 4 || k_cache.rank != 4 || k.dim(0) != k_cache.dim(0) ||
      k.dim(2) != k_cache.dim(2) || k.dim(3) != k_cache.dim(3) || args.pos < 0 ||
      args.pos + k.dim(1) > k_cache.dim(1))
    shape_error("kv_append: k" + k.shape_string() + " at pos " + std::to_string(args.pos) +
                " into cache" + k_cache.shape_string());
}

void check_attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                            const Tensor& v_cache, const DecodeArgs& args) {
  check_gqa(q, k_cache, "attention_decode");
  check_same_shape(k_cache, v_cache, "attention_decode caches");
  check_same_shape(out, q, "attention_decode out/q");
  if (args.pos < 0 || args.pos + q.dim(1) > k_cache.dim(1))
    shape_error("attention_decode: " + std::to_string(q.dim(1)) + " tokens at pos " +
                std::to_string(args.pos) + " exceed cache" + k_cache.shape_string());
}

void check_swiglu(const Tensor& out, const Tensor& gate_up) {
  if (gate_up.rows() != out.rows() || gate_up.cols() != 2 * out.cols())
    shape_error("swiglu: out" + out.shape_string() + " gate_up" + gate_up.shape_string() +
                " (need [N,F] and [N,2F])");
}

void check_cross_entropy(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                         const Tensor& targets) {
  check_same_shape(dlogits, logits, "cross_entropy dlogits");
  require_dtype(targets, DType::i32, "cross_entropy targets");
  require_dtype(losses, DType::f32, "cross_entropy losses");
  if (targets.numel() != logits.rows() || losses.numel() != logits.rows())
    shape_error("cross_entropy: logits" + logits.shape_string() + " targets" +
                targets.shape_string() + " losses" + losses.shape_string());
}

void check_adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
                 const AdamWArgs& args) {
  require_dtype(params, DType::f32, "adamw params");
  require_dtype(grads, DType::f32, "adamw grads");
  require_dtype(m, DType::f32, "adamw m");
  require_dtype(v, DType::f32, "adamw v");
  if (grads.numel() != params.numel() || m.numel() != params.numel() || v.numel() != params.numel())
    shape_error("adamw: flat buffers differ in length");
  if (args.step_tensor.data) {
    require_dtype(args.step_tensor, DType::f32, "adamw step_tensor");
    if (args.step_tensor.numel() != 1) shape_error("adamw: step_tensor must hold one value");
  } else if (args.step < 1) {
    shape_error("adamw: step is 1-based");
  }
}

}  // namespace capbench
