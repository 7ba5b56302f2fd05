#include "backends/torch/torch_common.h"

#include <cmath>
#include <stdexcept>

#include "backends/shape_checks.h"

namespace capbench {

at::ScalarType scalar_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return at::kFloat;
    case DType::bf16:
      return at::kBFloat16;
    case DType::f16:
      return at::kHalf;
    case DType::i32:
      return at::kInt;
  }
  throw std::invalid_argument("unknown dtype");
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

Support TorchBackend::supports(OpId, DType dtype) const {
  if (dtype == DType::f32 || dtype == DType::bf16) return Support::yes();
  return Support::no(std::string("the torch backend runs fp32 and bf16, not ") + dtype_name(dtype));
}

// ---- memory ---------------------------------------------------------------------------------

void* TorchBackend::alloc(size_t bytes) {
  at::Tensor t;
  try {
    t = at::empty({static_cast<int64_t>(std::max<size_t>(bytes, 1))},
                  at::TensorOptions().dtype(at::kByte).device(device_));
  } catch (const c10::OutOfMemoryError& e) {
    throw OutOfDeviceMemory(first_line(e.what()));
  }
  void* p = t.data_ptr();
  std::lock_guard<std::mutex> lock(mutex_);
  allocations_.emplace(p, std::move(t));
  return p;
}

void TorchBackend::free(void* ptr) {
  std::lock_guard<std::mutex> lock(mutex_);
  allocations_.erase(ptr);
}

void TorchBackend::release_memory() {
  std::lock_guard<std::mutex> lock(mutex_);
  allocations_.clear();
  rope_cos_ = rope_sin_ = at::Tensor();
  rope_ = RopeTable{};
}

void TorchBackend::copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  bytes_view(dst, bytes).copy_(host_bytes(const_cast<void*>(src), bytes));
}

void TorchBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  host_bytes(dst, bytes).copy_(bytes_view(const_cast<void*>(src), bytes));
}

void TorchBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  bytes_view(dst, bytes).copy_(bytes_view(const_cast<void*>(src), bytes));
}

void TorchBackend::fill(const Tensor& t, float value) {
  wrap(t).fill_(value);
}

// ---- ops --------------------------------------------------------------------------------------

void TorchBackend::embedding_fwd(const Tensor& out, const Tensor& tokens, const Tensor& table) {
  check_embedding(out, tokens, table);
  at::Tensor y = wrap2d(out);
  at::index_select_out(y, wrap(table), 0, wrap(tokens).reshape({-1}));
}

void TorchBackend::embedding_bwd(const Tensor& dtable, const Tensor& dout, const Tensor& tokens) {
  check_embedding(dout, tokens, dtable);
  require_dtype(dtable, DType::f32, "embedding_bwd dtable");
  wrap(dtable).index_add_(0, wrap(tokens).reshape({-1}), wrap2d(dout).to(at::kFloat));
}

void TorchBackend::rmsnorm_fwd(const Tensor& out, const Tensor& rstd, const Tensor& in,
                               const Tensor& weight, const RmsNormArgs& args) {
  check_rmsnorm(out, rstd, in, weight);
  const at::Tensor x = wrap2d(in).to(at::kFloat);  // statistics in fp32 at any dtype
  const at::Tensor r = (x.square().mean(-1, /*keepdim=*/true) + args.eps).rsqrt_();
  at::Tensor y = wrap2d(out);
  at::mul_out(y, x * r, wrap(weight).to(at::kFloat));
  wrap(rstd).copy_(r.squeeze(-1));
}

void TorchBackend::rmsnorm_bwd(const Tensor& din, const Tensor& dweight, const Tensor& dout,
                               const Tensor& in, const Tensor& weight, const Tensor& rstd) {
  check_rmsnorm(dout, rstd, in, weight);
  check_same_shape(din, in, "rmsnorm_bwd din");
  require_dtype(dweight, DType::f32, "rmsnorm_bwd dweight");
  const at::Tensor x = wrap2d(in).to(at::kFloat), dy = wrap2d(dout).to(at::kFloat);
  const at::Tensor r = wrap(rstd).unsqueeze(-1);
  const at::Tensor wdy = dy * wrap(weight).to(at::kFloat);
  const at::Tensor dot = (wdy * x).sum(-1, /*keepdim=*/true);
  const double inv_c = 1.0 / static_cast<double>(in.cols());
  wrap2d(din).add_(wdy * r - x * (r * r * r * dot * inv_c));
  wrap(dweight).add_((dy * x * r).sum(0));
}

void TorchBackend::matmul(const Tensor& c, const Tensor& a, const Tensor& b,
                          const MatmulArgs& args) {
  check_matmul(c, a, b, args);
  at::Tensor A = wrap2d(a), B = wrap2d(b);
  if (args.trans_a) A = A.t();
  if (args.trans_b) B = B.t();
  at::Tensor C = wrap2d(c);
  if (c.dtype != a.dtype || (args.beta != 0.0f && c.dtype != DType::f32)) {
    // Results that accumulate (fp32 weight gradients from bf16 A, B; beta·C + product at
    // bf16) must round once: a product rounded to bf16 before the sum loses the result where
    // beta·C and the product nearly cancel (measured: 2-5% on a one-element C). ATen 1.13 has
    // no mm with a wider output, so the operands are widened. (cuBLAS computes in fp32 and
    // rounds once: the CUDA path calls it directly, cublas_bf16_gemm.)
    const at::Tensor product = at::mm(A.to(at::kFloat), B.to(at::kFloat));
    if (args.beta == 0.0f)
      C.copy_(product.mul_(args.alpha));
    else
      C.copy_(C.to(at::kFloat).mul_(args.beta).add_(product, args.alpha));
  } else if (args.beta == 0.0f && args.alpha == 1.0f && device_.is_cpu() && c.dtype == DType::f32 &&
             !args.trans_a && args.trans_b && a.rows() == 1) {
    // A decode step's one-row product at fp32: ATen 1.13's mv streams W [N, K] at ~28 GB/s on
    // two cores where mm with a one-row A reached ~9 (benchmarks/cpu_decode/aten_gemv.py).
    at::Tensor y = C.select(0, 0);
    at::mv_out(y, wrap2d(b), A.select(0, 0));
  } else if (args.beta == 0.0f) {
    at::mm_out(C, A, B);
    if (args.alpha != 1.0f) C.mul_(args.alpha);
  } else {
    C.addmm_(A, B, args.beta, args.alpha);
  }
}

void TorchBackend::rope_fwd(const Tensor& out, const Tensor& in, const RopeArgs& args) {
  check_rope(out, in);
  rotate(out, in, args, 1.0);
}

void TorchBackend::rope_bwd(const Tensor& din, const Tensor& dout, const RopeArgs& args) {
  check_rope(din, dout);
  rotate(din, dout, args, -1.0);
}

void TorchBackend::attention_fwd(const Tensor& out, const Tensor& lse, const Tensor& q,
                                 const Tensor& k, const Tensor& v, const AttentionArgs& args) {
  check_attention(out, lse, q, k, v);
  Grouped g(q, k);
  const at::Tensor qg = g.fold(wrap(q)), kt = heads_first(wrap(k)), vt = heads_first(wrap(v));
  // Scores and softmax in fp32 at any dtype; the P·V product at the inputs' dtype.
  at::Tensor scores = scores_fp32(qg, kt).mul_(g.scale);
  if (args.causal) scores.masked_fill_(causal_mask(g, 0, g.s), -INFINITY);
  const at::Tensor l = scores.logsumexp(-1, /*keepdim=*/true);
  const at::Tensor o = at::matmul((scores - l).exp_().to(qg.scalar_type()), vt);
  wrap(out).copy_(g.unfold(o));
  wrap(lse).copy_(l.reshape({g.b, g.h, g.t}));
}

void TorchBackend::attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                 const Tensor& dout, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& out, const Tensor& lse,
                                 const AttentionArgs& args) {
  check_attention_bwd(dq, dk, dv, dout, q, k, v, out, lse);
  Grouped g(q, k);
  const at::Tensor qg = g.fold(wrap(q)), dog = g.fold(wrap(dout));
  const at::Tensor kt = heads_first(wrap(k)), vt = heads_first(wrap(v));
  at::Tensor scores = scores_fp32(qg, kt).mul_(g.scale);
  if (args.causal) scores.masked_fill_(causal_mask(g, 0, g.s), -INFINITY);
  const at::Tensor l = wrap(lse).reshape({g.b, g.kv, g.group * g.t, 1});
  const at::Tensor p = (scores - l).exp_();
  const at::Tensor dp = at::matmul(dog, vt.transpose(-1, -2)).to(at::kFloat);
  const at::ScalarType dt = qg.scalar_type();
  const at::Tensor ds = (p * (dp - (p * dp).sum(-1, /*keepdim=*/true)) * g.scale).to(dt);
  wrap(dv).copy_(at::matmul(p.to(dt).transpose(-1, -2), dog).permute({0, 2, 1, 3}));
  wrap(dq).copy_(g.unfold(at::matmul(ds, kt)));
  wrap(dk).copy_(at::matmul(ds.transpose(-1, -2), qg).permute({0, 2, 1, 3}));
}

void TorchBackend::kv_append(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k,
                             const Tensor& v, const KvAppendArgs& args) {
  check_kv_append(k_cache, v_cache, k, v, args);
  wrap(k_cache).narrow(1, args.pos, k.dim(1)).copy_(wrap(k));
  wrap(v_cache).narrow(1, args.pos, v.dim(1)).copy_(wrap(v));
}

void TorchBackend::attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                                    const Tensor& v_cache, const DecodeArgs& args) {
  check_attention_decode(out, q, k_cache, v_cache, args);
  Grouped g(q, k_cache);
  const int64_t ctx = args.pos + g.t;
  // Queries folded per kv head ([B,K,G·T,D]) against that head's cache rows, read in place
  // ([S,K,D]-strided): grouped-query models need no repeated K/V.
  const at::Tensor qg = g.fold(wrap(q));
  const at::Tensor kt = heads_first(wrap(k_cache).narrow(1, 0, ctx));
  const at::Tensor vt = heads_first(wrap(v_cache).narrow(1, 0, ctx));
  at::Tensor scores = scores_fp32(qg, kt).mul_(g.scale);
  if (g.t > 1) scores.masked_fill_(causal_mask(g, args.pos, ctx), -INFINITY);
  // Probabilities times V in fp32, rounded once into out: probabilities rounded to bf16 first put
  // the output ~1% (normalised) off the fp32 result over a few dozen positions.
  wrap(out).copy_(g.unfold(at::matmul(scores.softmax(-1), vt.to(at::kFloat))));
}

void TorchBackend::swiglu_fwd(const Tensor& out, const Tensor& gate_up) {
  check_swiglu(out, gate_up);
  const int64_t f = out.cols();
  const at::Tensor gu = wrap2d(gate_up).to(at::kFloat);  // fp32 inside at any dtype
  at::Tensor y = wrap2d(out);
  at::mul_out(y, at::silu(gu.narrow(1, 0, f)), gu.narrow(1, f, f));
}

void TorchBackend::swiglu_bwd(const Tensor& dgate_up, const Tensor& dout, const Tensor& gate_up) {
  check_swiglu(dout, gate_up);
  check_same_shape(dgate_up, gate_up, "swiglu_bwd dgate_up");
  const int64_t f = dout.cols();
  const at::Tensor gu = wrap2d(gate_up).to(at::kFloat), dy = wrap2d(dout).to(at::kFloat);
  const at::Tensor dgu = wrap2d(dgate_up);
  const at::Tensor g = gu.narrow(1, 0, f), u = gu.narrow(1, f, f);
  const at::Tensor sg = at::sigmoid(g);
  at::Tensor dg = dgu.narrow(1, 0, f), du = dgu.narrow(1, f, f);
  at::mul_out(du, dy, g * sg);
  at::mul_out(dg, dy * u, sg * (1 + g * (1 - sg)));
}

void TorchBackend::add(const Tensor& out, const Tensor& a, const Tensor& b) {
  check_same_shape(out, a, "add a");
  check_same_shape(out, b, "add b");
  at::Tensor y = wrap(out);
  at::add_out(y, wrap(a), wrap(b));
}

void TorchBackend::cross_entropy_fwd_bwd(const Tensor& losses, const Tensor& dlogits,
                                         const Tensor& logits, const Tensor& targets,
                                         const CrossEntropyArgs& args) {
  check_cross_entropy(losses, dlogits, logits, targets);
  const at::Tensor x = wrap2d(logits).to(at::kFloat);
  const at::Tensor tgt = wrap(targets).to(at::kLong).unsqueeze(1);
  const at::Tensor l = x.logsumexp(-1, /*keepdim=*/true);
  wrap(losses).copy_((l - x.gather(1, tgt)).squeeze(1));
  // In fp32, rounded once at the end: p - 1 from a bf16-rounded p loses a confident row.
  at::Tensor d = logits.dtype == DType::f32 ? wrap2d(dlogits) : at::empty_like(x);
  at::exp_out(d, x - l);
  d.scatter_add_(1, tgt, at::full({x.size(0), 1}, -1.0f, x.options()));
  d.mul_(args.dloss_scale);
  if (logits.dtype != DType::f32) wrap2d(dlogits).copy_(d);
}

void TorchBackend::adamw_moments(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m,
                                 const at::Tensor& v, const AdamWArgs& args) {
  m.mul_(args.beta1).add_(g, 1.0 - args.beta1);
  v.mul_(args.beta2).addcmul_(g, g, 1.0 - args.beta2);
  p.mul_(1.0 - static_cast<double>(args.lr) * args.weight_decay);
}

void TorchBackend::adamw(const Tensor& params, const Tensor& grads, const Tensor& m,
                         const Tensor& v, const AdamWArgs& args) {
  check_adamw(params, grads, m, v, args);
  const at::Tensor p = wrap(params), mt = wrap(m), vt = wrap(v);
  adamw_moments(p, wrap(grads), mt, vt, args);
  // The step is known on the host: the number, or step_tensor's value in host memory.
  const int64_t step = host_adamw_step(args);
  const double bc1 = 1.0 - std::pow(static_cast<double>(args.beta1), step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(args.beta2), step);
  const at::Tensor denom = (vt / bc2).sqrt_().add_(args.eps);
  p.addcdiv_(mt, denom, -static_cast<double>(args.lr) / bc1);
}

void TorchBackend::convert(const Tensor& out, const Tensor& in) {
  check_convert(out, in);
  wrap(out).view({-1}).copy_(wrap(in).view({-1}));
}

// ---- helpers ----------------------------------------------------------------------------------

TorchBackend::Grouped::Grouped(const Tensor& q, const Tensor& k)
    : b(q.dim(0)),
      t(q.dim(1)),
      h(q.dim(2)),
      kv(k.dim(2)),
      group(q.dim(2) / k.dim(2)),
      d(q.dim(3)),
      s(k.dim(1)),
      scale(1.0 / std::sqrt(static_cast<double>(q.dim(3)))) {}

at::Tensor TorchBackend::Grouped::fold(const at::Tensor& x) const {
  return x.view({b, t, kv, group, d}).permute({0, 2, 3, 1, 4}).reshape({b, kv, group * t, d});
}

at::Tensor TorchBackend::Grouped::unfold(const at::Tensor& x) const {
  return x.view({b, kv, group, t, d}).permute({0, 3, 1, 2, 4}).reshape({b, t, h, d});
}

at::Tensor TorchBackend::heads_first(const at::Tensor& x) {
  return x.permute({0, 2, 1, 3});
}

at::Tensor TorchBackend::scores_fp32(const at::Tensor& q, const at::Tensor& kt) {
  return at::matmul(q.to(at::kFloat), kt.to(at::kFloat).transpose(-1, -2));
}

at::Tensor TorchBackend::causal_mask(const Grouped& g, int64_t pos, int64_t keys) const {
  const auto opts = at::TensorOptions().dtype(at::kLong).device(device_);
  const at::Tensor qpos = at::arange(g.t, opts).add_(pos).repeat({g.group}).unsqueeze(1);
  return at::arange(keys, opts).unsqueeze(0) > qpos;
}

// Angles are computed in double on the host, as the reference does, then cached per position
// range.
void TorchBackend::rotate(const Tensor& out, const Tensor& in, const RopeArgs& args,
                          double direction) {
  const int64_t t = in.dim(1), hd = in.dim(3);
  const auto [cos, sin] = rope_tables(args.pos_offset, t, hd, args.theta,
                                      std::max(args.max_positions, args.pos_offset + t));
  const at::Tensor x = wrap(in).view({in.dim(0), t, in.dim(2), hd / 2, 2});
  const at::Tensor x0 = x.select(-1, 0), x1 = x.select(-1, 1);
  const at::Tensor c = cos.view({1, t, 1, hd / 2}), s = sin.view({1, t, 1, hd / 2}) * direction;
  const at::Tensor y = wrap(out).view({in.dim(0), t, in.dim(2), hd / 2, 2});
  at::Tensor y0 = y.select(-1, 0), y1 = y.select(-1, 1);
  at::sub_out(y0, x0 * c, x1 * s);
  at::add_out(y1, x0 * s, x1 * c);
}

std::pair<at::Tensor, at::Tensor> TorchBackend::rope_tables(int64_t pos, int64_t t, int64_t hd,
                                                            float theta, int64_t positions) {
  // Sized for every position asked for at once (the model's max_seq): built before the first
  // capture, it never has to grow inside one.
  if (rope_.ensure(theta, hd, pos + t, positions) || !rope_cos_.defined()) {
    const auto host = at::TensorOptions().dtype(at::kFloat);
    rope_cos_ = at::from_blob(rope_.cos.data(), {rope_.positions, hd / 2}, host).to(device_);
    rope_sin_ = at::from_blob(rope_.sin.data(), {rope_.positions, hd / 2}, host).to(device_);
    if (device_.is_cpu()) rope_cos_ = rope_cos_.clone(), rope_sin_ = rope_sin_.clone();
  }
  return {rope_cos_.narrow(0, pos, t), rope_sin_.narrow(0, pos, t)};
}
at::Tensor TorchBackend::wrap(const Tensor& t) const {
  return at::for_blob(t.data, at::IntArrayRef(t.shape.data(), static_cast<size_t>(t.rank)))
      .options(at::TensorOptions().dtype(scalar_type(t.dtype)).device(device_))
      .target_device(device_)
      .make_tensor();
}

at::Tensor TorchBackend::wrap2d(const Tensor& t) const {
  return wrap(t.reshaped({t.rows(), t.cols()}));
}

at::Tensor TorchBackend::bytes_view(void* p, size_t n) const {
  const int64_t size = static_cast<int64_t>(n);
  return at::for_blob(p, at::IntArrayRef(&size, 1))
      .options(at::TensorOptions().dtype(at::kByte).device(device_))
      .target_device(device_)
      .make_tensor();
}

at::Tensor TorchBackend::host_bytes(void* p, size_t n) {
  return at::from_blob(p, {static_cast<int64_t>(n)}, at::TensorOptions().dtype(at::kByte));
}

}  // namespace capbench
