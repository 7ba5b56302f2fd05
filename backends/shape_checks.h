// Shape and dtype checks every backend runs on its op arguments, so a workload bug is one clear
// exception instead of memory corruption, whichever backend runs.
#pragma once

#include <stdexcept>
#include <string>

#include "backends/backend.h"

namespace capbench {

[[noreturn]] void shape_error(const std::string& what);
void require_dtype(const Tensor& t, DType dtype, const char* what);
void check_same_shape(const Tensor& a, const Tensor& b, const char* what);
void require_same_dtype(const Tensor& a, const Tensor& b, const char* what);

struct MatmulDims {
  int64_t m, n, k;
};
MatmulDims check_matmul(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args);
void check_embedding(const Tensor& out, const Tensor& tokens, const Tensor& table);
void check_rmsnorm(const Tensor& out, const Tensor& rstd, const Tensor& in, const Tensor& weight);
void check_rope(const Tensor& out, const Tensor& in);
void check_attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                     const Tensor& v);
void check_attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                         const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                         const Tensor& lse);
void check_kv_append(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                     const KvAppendArgs& args);
void check_attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                            const Tensor& v_cache, const DecodeArgs& args);
void check_swiglu(const Tensor& out, const Tensor& gate_up);
void check_cross_entropy(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                         const Tensor& targets);
void check_convert(const Tensor& out, const Tensor& in);
void check_adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
                 const AdamWArgs& args);

}  // namespace capbench
