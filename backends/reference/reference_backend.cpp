// The oracle: plain loops, double accumulation, fp32 storage, one thread. Written for
// obviousness, not speed; every other backend is tested against it op by op.
#include "backends/reference/reference_backend.h"

#include "backends/bf16.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "backends/shape_checks.h"

namespace capbench {
namespace {

// Sequence-major [B,T,H,D] indexing.
inline int64_t at4(const Tensor& t, int64_t b, int64_t s, int64_t h, int64_t d) {
  return ((b * t.dim(1) + s) * t.dim(2) + h) * t.dim(3) + d;
}

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// The rotation angle of pair i at position pos.
double rope_angle(int64_t pos, int64_t pair, int64_t head_dim, double theta) {
  return static_cast<double>(pos) *
         std::pow(theta, -2.0 * static_cast<double>(pair) / static_cast<double>(head_dim));
}

// Rotates every (2i, 2i+1) pair of every head by +angle (direction = 1) or -angle (-1).
void rope_rotate(const Tensor& out, const Tensor& in, const RopeArgs& args, double direction) {
  const int64_t batch = in.dim(0), seq = in.dim(1), heads = in.dim(2), hd = in.dim(3);
  const float* x = in.as<float>();
  float* y = out.as<float>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < hd / 2; ++i) {
          const double a = direction * rope_angle(args.pos_offset + t, i, hd, args.theta);
          const int64_t j = at4(in, b, t, h, 2 * i);
          const double x0 = x[j], x1 = x[j + 1];
          y[j] = static_cast<float>(x0 * std::cos(a) - x1 * std::sin(a));
          y[j + 1] = static_cast<float>(x0 * std::sin(a) + x1 * std::cos(a));
        }
}

}  // namespace

ReferenceBackend::ReferenceBackend() = default;

DeviceInfo ReferenceBackend::device_info() const {
  DeviceInfo info;
  info.backend = "reference";
  info.device_kind = "cpu";
  info.name = host_cpu_name();
  info.threads = 1;
  info.library_version = "reference (plain C++, fp64 accumulation)";
  return info;
}

Support ReferenceBackend::supports(OpId op, DType dtype) const {
  if (dtype != DType::f32 && !(op == OpId::convert && dtype == DType::bf16))
    return Support::no("reference computes in fp32 storage only (bf16 through convert alone)");
  return Support::yes();
}

void* ReferenceBackend::alloc(size_t bytes) {
  return host_alloc(bytes);
}
void ReferenceBackend::free(void* ptr) {
  host_free(ptr);
}
void ReferenceBackend::copy_to_device(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
}
void ReferenceBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  std::memcpy(dst, src, bytes);
}
void ReferenceBackend::copy(void* dst, const void* src, size_t bytes) {
  std::memmove(dst, src, bytes);
}
void ReferenceBackend::fill(const Tensor& t, float value) {
  if (t.dtype == DType::i32) {
    std::fill_n(t.as<int32_t>(), t.numel(), static_cast<int32_t>(value));
  } else if (t.dtype == DType::bf16) {
    std::fill_n(t.as<BF16>(), t.numel(), float_to_bf16(value));
  } else {
    require_dtype(t, DType::f32, "fill");
    std::fill_n(t.as<float>(), t.numel(), value);
  }
}

void ReferenceBackend::embedding_fwd(const Tensor& out, const Tensor& tokens, const Tensor& table) {
  check_embedding(out, tokens, table);
  const int64_t c = table.dim(1), vocab = table.dim(0);
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    const int32_t tok = tokens.as<int32_t>()[i];
    if (tok < 0 || tok >= vocab) throw std::out_of_range("embedding_fwd: token id out of range");
    std::memcpy(out.as<float>() + i * c, table.as<float>() + tok * c, sizeof(float) * c);
  }
}

void ReferenceBackend::embedding_bwd(const Tensor& dtable, const Tensor& dout,
                                     const Tensor& tokens) {
  check_embedding(dout, tokens, dtable);
  const int64_t c = dtable.dim(1);
  for (int64_t i = 0; i < tokens.numel(); ++i) {
    const int32_t tok = tokens.as<int32_t>()[i];
    for (int64_t j = 0; j < c; ++j) dtable.as<float>()[tok * c + j] += dout.as<float>()[i * c + j];
  }
}

void ReferenceBackend::rmsnorm_fwd(const Tensor& out, const Tensor& rstd, const Tensor& in,
                                   const Tensor& weight, const RmsNormArgs& args) {
  check_rmsnorm(out, rstd, in, weight);
  const int64_t rows = in.rows(), c = in.cols();
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in.as<float>() + r * c;
    double ss = 0;
    for (int64_t j = 0; j < c; ++j) ss += static_cast<double>(x[j]) * x[j];
    const double rs = 1.0 / std::sqrt(ss / static_cast<double>(c) + args.eps);
    rstd.as<float>()[r] = static_cast<float>(rs);
    for (int64_t j = 0; j < c; ++j)
      out.as<float>()[r * c + j] = static_cast<float>(x[j] * rs * weight.as<float>()[j]);
  }
}

void ReferenceBackend::rmsnorm_bwd(const Tensor& din, const Tensor& dweight, const Tensor& dout,
                                   const Tensor& in, const Tensor& weight, const Tensor& rstd) {
  check_rmsnorm(dout, rstd, in, weight);
  check_same_shape(din, in, "rmsnorm_bwd din");
  const int64_t rows = in.rows(), c = in.cols();
  std::vector<double> dw(static_cast<size_t>(c), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in.as<float>() + r * c;
    const float* dy = dout.as<float>() + r * c;
    const double rs = rstd.as<float>()[r];
    double dot = 0;  // sum_j w_j dy_j x_j
    for (int64_t j = 0; j < c; ++j) {
      dot += static_cast<double>(weight.as<float>()[j]) * dy[j] * x[j];
      dw[static_cast<size_t>(j)] += static_cast<double>(dy[j]) * x[j] * rs;
    }
    const double k = rs * rs * rs * dot / static_cast<double>(c);
    for (int64_t j = 0; j < c; ++j) {
      const double g = rs * weight.as<float>()[j] * dy[j] - k * x[j];
      din.as<float>()[r * c + j] += static_cast<float>(g);
    }
  }
  for (int64_t j = 0; j < c; ++j) dweight.as<float>()[j] += static_cast<float>(dw[j]);
}

void ReferenceBackend::matmul(const Tensor& c, const Tensor& a, const Tensor& b,
                              const MatmulArgs& args) {
  const MatmulDims d = check_matmul(c, a, b, args);
  const float* pa = a.as<float>();
  const float* pb = b.as<float>();
  float* pc = c.as<float>();
  for (int64_t i = 0; i < d.m; ++i)
    for (int64_t j = 0; j < d.n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < d.k; ++p) {
        const double av = args.trans_a ? pa[p * d.m + i] : pa[i * d.k + p];
        const double bv = args.trans_b ? pb[j * d.k + p] : pb[p * d.n + j];
        acc += av * bv;
      }
      double r = args.alpha * acc;
      if (args.beta != 0.0f) r += static_cast<double>(args.beta) * pc[i * d.n + j];
      pc[i * d.n + j] = static_cast<float>(r);
    }
}

void ReferenceBackend::rope_fwd(const Tensor& out, const Tensor& in, const RopeArgs& args) {
  check_rope(out, in);
  rope_rotate(out, in, args, 1.0);
}

void ReferenceBackend::rope_bwd(const Tensor& din, const Tensor& dout, const RopeArgs& args) {
  check_rope(din, dout);
  rope_rotate(din, dout, args, -1.0);  // the transpose of a rotation is its inverse
}

void ReferenceBackend::attention_fwd(const Tensor& out, const Tensor& lse, const Tensor& q,
                                     const Tensor& k, const Tensor& v, const AttentionArgs& args) {
  check_attention(out, lse, q, k, v);
  const int64_t batch = q.dim(0), seq = q.dim(1), heads = q.dim(2), hd = q.dim(3);
  const int64_t group = heads / k.dim(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<double> s(static_cast<size_t>(seq)), acc(static_cast<size_t>(hd));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < seq; ++t) {
        const int64_t kh = h / group, last = args.causal ? t : seq - 1;
        double mx = -INFINITY;
        for (int64_t j = 0; j <= last; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d)
            dot += static_cast<double>(q.as<float>()[at4(q, b, t, h, d)]) *
                   k.as<float>()[at4(k, b, j, kh, d)];
          s[static_cast<size_t>(j)] = dot * scale;
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= last; ++j) sum += std::exp(s[static_cast<size_t>(j)] - mx);
        const double l = mx + std::log(sum);
        lse.as<float>()[(b * heads + h) * seq + t] = static_cast<float>(l);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j <= last; ++j) {
          const double p = std::exp(s[static_cast<size_t>(j)] - l);
          for (int64_t d = 0; d < hd; ++d)
            acc[static_cast<size_t>(d)] += p * v.as<float>()[at4(v, b, j, kh, d)];
        }
        for (int64_t d = 0; d < hd; ++d)
          out.as<float>()[at4(out, b, t, h, d)] = static_cast<float>(acc[static_cast<size_t>(d)]);
      }
}

void ReferenceBackend::attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                     const Tensor& dout, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const Tensor& out, const Tensor& lse,
                                     const AttentionArgs& args) {
  check_attention_bwd(dq, dk, dv, dout, q, k, v, out, lse);
  const int64_t batch = q.dim(0), seq = q.dim(1), heads = q.dim(2), hd = q.dim(3);
  const int64_t group = heads / k.dim(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<double> gq(static_cast<size_t>(dq.numel()), 0.0);
  std::vector<double> gk(static_cast<size_t>(dk.numel()), 0.0);
  std::vector<double> gv(static_cast<size_t>(dv.numel()), 0.0);
  std::vector<double> p(static_cast<size_t>(seq)), dp(static_cast<size_t>(seq));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < seq; ++t) {
        const int64_t kh = h / group, last = args.causal ? t : seq - 1;
        const double l = lse.as<float>()[(b * heads + h) * seq + t];
        double row_dot = 0;  // sum_j p_j dp_j
        for (int64_t j = 0; j <= last; ++j) {
          double s = 0, g = 0;
          for (int64_t d = 0; d < hd; ++d) {
            s += static_cast<double>(q.as<float>()[at4(q, b, t, h, d)]) *
                 k.as<float>()[at4(k, b, j, kh, d)];
            g += static_cast<double>(dout.as<float>()[at4(dout, b, t, h, d)]) *
                 v.as<float>()[at4(v, b, j, kh, d)];
          }
          p[static_cast<size_t>(j)] = std::exp(s * scale - l);
          dp[static_cast<size_t>(j)] = g;
          row_dot += p[static_cast<size_t>(j)] * g;
        }
        for (int64_t j = 0; j <= last; ++j) {
          const double pj = p[static_cast<size_t>(j)];
          const double ds = pj * (dp[static_cast<size_t>(j)] - row_dot) * scale;
          for (int64_t d = 0; d < hd; ++d) {
            gq[static_cast<size_t>(at4(q, b, t, h, d))] += ds * k.as<float>()[at4(k, b, j, kh, d)];
            gk[static_cast<size_t>(at4(k, b, j, kh, d))] += ds * q.as<float>()[at4(q, b, t, h, d)];
            gv[static_cast<size_t>(at4(v, b, j, kh, d))] +=
                pj * dout.as<float>()[at4(dout, b, t, h, d)];
          }
        }
      }
  for (size_t i = 0; i < gq.size(); ++i) dq.as<float>()[i] = static_cast<float>(gq[i]);
  for (size_t i = 0; i < gk.size(); ++i) dk.as<float>()[i] = static_cast<float>(gk[i]);
  for (size_t i = 0; i < gv.size(); ++i) dv.as<float>()[i] = static_cast<float>(gv[i]);
}

void ReferenceBackend::kv_append(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k,
                                 const Tensor& v, const KvAppendArgs& args) {
  check_kv_append(k_cache, v_cache, k, v, args);
  const int64_t batch = k.dim(0), seq = k.dim(1), row = k.dim(2) * k.dim(3);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t) {
      const int64_t dst = at4(k_cache, b, args.pos + t, 0, 0), src = at4(k, b, t, 0, 0);
      std::memcpy(k_cache.as<float>() + dst, k.as<float>() + src, sizeof(float) * row);
      std::memcpy(v_cache.as<float>() + dst, v.as<float>() + src, sizeof(float) * row);
    }
}

void ReferenceBackend::attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                                        const Tensor& v_cache, const DecodeArgs& args) {
  check_attention_decode(out, q, k_cache, v_cache, args);
  const int64_t batch = q.dim(0), seq = q.dim(1), heads = q.dim(2), hd = q.dim(3);
  const int64_t group = heads / k_cache.dim(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const int64_t ctx = args.pos + seq;
  std::vector<double> s(static_cast<size_t>(ctx)), acc(static_cast<size_t>(hd));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < seq; ++t) {
        const int64_t kh = h / group, last = args.pos + t;
        double mx = -INFINITY;
        for (int64_t j = 0; j <= last; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d)
            dot += static_cast<double>(q.as<float>()[at4(q, b, t, h, d)]) *
                   k_cache.as<float>()[at4(k_cache, b, j, kh, d)];
          s[static_cast<size_t>(j)] = dot * scale;
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= last; ++j) sum += std::exp(s[static_cast<size_t>(j)] - mx);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j <= last; ++j) {
          const double pj = std::exp(s[static_cast<size_t>(j)] - mx) / sum;
          for (int64_t d = 0; d < hd; ++d)
            acc[static_cast<size_t>(d)] += pj * v_cache.as<float>()[at4(v_cache, b, j, kh, d)];
        }
        for (int64_t d = 0; d < hd; ++d)
          out.as<float>()[at4(out, b, t, h, d)] = static_cast<float>(acc[static_cast<size_t>(d)]);
      }
}

void ReferenceBackend::swiglu_fwd(const Tensor& out, const Tensor& gate_up) {
  check_swiglu(out, gate_up);
  const int64_t rows = out.rows(), f = out.cols();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < f; ++j) {
      const double g = gate_up.as<float>()[r * 2 * f + j];
      const double u = gate_up.as<float>()[r * 2 * f + f + j];
      out.as<float>()[r * f + j] = static_cast<float>(g * sigmoid(g) * u);
    }
}

void ReferenceBackend::swiglu_bwd(const Tensor& dgate_up, const Tensor& dout,
                                  const Tensor& gate_up) {
  check_swiglu(dout, gate_up);
  check_same_shape(dgate_up, gate_up, "swiglu_bwd dgate_up");
  const int64_t rows = dout.rows(), f = dout.cols();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < f; ++j) {
      const double g = gate_up.as<float>()[r * 2 * f + j];
      const double u = gate_up.as<float>()[r * 2 * f + f + j];
      const double dy = dout.as<float>()[r * f + j];
      const double sg = sigmoid(g);
      dgate_up.as<float>()[r * 2 * f + j] = static_cast<float>(dy * u * sg * (1 + g * (1 - sg)));
      dgate_up.as<float>()[r * 2 * f + f + j] = static_cast<float>(dy * g * sg);
    }
}

void ReferenceBackend::add(const Tensor& out, const Tensor& a, const Tensor& b) {
  check_same_shape(out, a, "add a");
  check_same_shape(out, b, "add b");
  for (int64_t i = 0; i < out.numel(); ++i)
    out.as<float>()[i] =
        static_cast<float>(static_cast<double>(a.as<float>()[i]) + b.as<float>()[i]);
}

void ReferenceBackend::cross_entropy_fwd_bwd(const Tensor& losses, const Tensor& dlogits,
                                             const Tensor& logits, const Tensor& targets,
                                             const CrossEntropyArgs& args) {
  check_cross_entropy(losses, dlogits, logits, targets);
  const int64_t rows = logits.rows(), vocab = logits.cols();
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits.as<float>() + r * vocab;
    const int32_t tgt = targets.as<int32_t>()[r];
    if (tgt < 0 || tgt >= vocab) throw std::out_of_range("cross_entropy: target out of range");
    double mx = -INFINITY;
    for (int64_t j = 0; j < vocab; ++j) mx = std::max(mx, static_cast<double>(x[j]));
    double sum = 0;
    for (int64_t j = 0; j < vocab; ++j) sum += std::exp(x[j] - mx);
    const double l = mx + std::log(sum);
    losses.as<float>()[r] = static_cast<float>(l - x[tgt]);
    for (int64_t j = 0; j < vocab; ++j) {
      const double p = std::exp(x[j] - l) - (j == tgt ? 1.0 : 0.0);
      dlogits.as<float>()[r * vocab + j] = static_cast<float>(p * args.dloss_scale);
    }
  }
}

void ReferenceBackend::convert(const Tensor& out, const Tensor& in) {
  check_convert(out, in);
  for (int64_t i = 0; i < in.numel(); ++i) {
    const float x = in.dtype == DType::f32 ? in.as<float>()[i] : load(in.as<BF16>() + i);
    if (out.dtype == DType::f32)
      out.as<float>()[i] = x;
    else
      store(out.as<BF16>() + i, x);
  }
}

void ReferenceBackend::adamw(const Tensor& params, const Tensor& grads, const Tensor& m,
                             const Tensor& v, const AdamWArgs& args) {
  check_adamw(params, grads, m, v, args);
  const int64_t step = host_adamw_step(args);
  const double bc1 = 1.0 - std::pow(static_cast<double>(args.beta1), step);
  const double bc2 = 1.0 - std::pow(static_cast<double>(args.beta2), step);
  for (int64_t i = 0; i < params.numel(); ++i) {
    const double g = grads.as<float>()[i];
    const double mi = args.beta1 * static_cast<double>(m.as<float>()[i]) + (1 - args.beta1) * g;
    const double vi = args.beta2 * static_cast<double>(v.as<float>()[i]) + (1 - args.beta2) * g * g;
    m.as<float>()[i] = static_cast<float>(mi);
    v.as<float>()[i] = static_cast<float>(vi);
    const double p = params.as<float>()[i];
    const double update = (mi / bc1) / (std::sqrt(vi / bc2) + args.eps) + args.weight_decay * p;
    params.as<float>()[i] = static_cast<float>(p - args.lr * update);
  }
}

void ReferenceBackend::synchronize() {}
void ReferenceBackend::stamp(int slot) {
  pacer_.stamp(slot);
}
void ReferenceBackend::pace(int slot, const PaceRule& rule) {
  pacer_.pace(slot, rule);
}

}  // namespace capbench
