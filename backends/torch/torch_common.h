// The libtorch backend's shared half: every op as ATen calls, for whichever device the tensors
// are on. torch_cpu.cpp adds what only the CPU has (threads, OpenBLAS, host pacing) and
// torch_cuda.cpp what only a GPU has (cuBLAS, flash attention, fused AdamW, CUDA graphs, green
// contexts, device pacing), each overriding the ops it runs its own way. Tensor views are
// wrapped as ATen tensors without copies or ownership; device memory comes from ATen's allocator
// (the caching allocator on CUDA).
//
// Attention is written as explicit matmuls with grouped-query heads folded into the query rows
// ([B, K, G·T, D] against [B, K, S, D]), so K/V are never repeated in memory.
//
// Only backends/torch/ and the communicator's c10d engines (backends/comm/) include this header:
// ATen's headers are slow to compile.
#pragma once

#include <ATen/ATen.h>

#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "backends/backend.h"
#include "backends/rope_table.h"

namespace capbench {

at::ScalarType scalar_type(DType dtype);
// ATen's messages append a C++ backtrace after the first line; a run's reason keeps the line.
std::string first_line(const std::string& text);

class TorchBackend : public Backend {
 public:
  explicit TorchBackend(at::Device device) : device_(device) {}

  Support supports(OpId op, DType dtype) const override;

  void* alloc(size_t bytes) override;
  void free(void* ptr) override;
  void copy_to_device(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void fill(const Tensor& t, float value) override;

  void embedding_fwd(const Tensor& out, const Tensor& tokens, const Tensor& table) override;
  void embedding_bwd(const Tensor& dtable, const Tensor& dout, const Tensor& tokens) override;
  void rmsnorm_fwd(const Tensor& out, const Tensor& rstd, const Tensor& in, const Tensor& weight,
                   const RmsNormArgs& args) override;
  void rmsnorm_bwd(const Tensor& din, const Tensor& dweight, const Tensor& dout, const Tensor& in,
                   const Tensor& weight, const Tensor& rstd) override;
  void matmul(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args) override;
  void rope_fwd(const Tensor& out, const Tensor& in, const RopeArgs& args) override;
  void rope_bwd(const Tensor& din, const Tensor& dout, const RopeArgs& args) override;
  void attention_fwd(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                     const Tensor& v, const AttentionArgs& args) override;
  void attention_bwd(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                     const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                     const Tensor& lse, const AttentionArgs& args) override;
  void kv_append(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                 const KvAppendArgs& args) override;
  void attention_decode(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                        const Tensor& v_cache, const DecodeArgs& args) override;
  void swiglu_fwd(const Tensor& out, const Tensor& gate_up) override;
  void swiglu_bwd(const Tensor& dgate_up, const Tensor& dout, const Tensor& gate_up) override;
  void add(const Tensor& out, const Tensor& a, const Tensor& b) override;
  void cross_entropy_fwd_bwd(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                             const Tensor& targets, const CrossEntropyArgs& args) override;
  // Bias corrections from `step` (a number): the caller knows the step on the host.
  void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
             const AdamWArgs& args) override;
  void convert(const Tensor& out, const Tensor& in) override;

 protected:
  // Grouped-query geometry: K kv heads, G = H/K query heads per kv head, T queries, S keys.
  struct Grouped {
    int64_t b, t, h, kv, group, d, s;
    double scale;
    Grouped(const Tensor& q, const Tensor& k);
    // [B,T,H,D] -> [B,K,G·T,D], rows ordered (g, t): head h = k·G + g.
    at::Tensor fold(const at::Tensor& x) const;
    // [B,K,G·T,D] -> [B,T,H,D]
    at::Tensor unfold(const at::Tensor& x) const;
  };
  static at::Tensor heads_first(const at::Tensor& x);

  // A view of a tensor on this backend's device, told the device rather than asking the driver
  // which device the pointer is on (one query per op and tensor otherwise).
  at::Tensor wrap(const Tensor& t) const;
  at::Tensor wrap2d(const Tensor& t) const;
  at::Tensor bytes_view(void* p, size_t n) const;
  static at::Tensor host_bytes(void* p, size_t n);

  // Frees every allocation and cached table now (a device backend does, before its streams go).
  void release_memory();

  // AdamW's moments and the weight decay, before the bias-corrected update.
  static void adamw_moments(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m,
                            const at::Tensor& v, const AdamWArgs& args);

  at::Device device_;

 private:
  // Q·Kᵀ in fp32: scores rounded to bf16 before the exponential put a 2^-9 relative error on
  // every probability (the backward's recomputed P then disagrees with the forward's lse).
  static at::Tensor scores_fp32(const at::Tensor& q, const at::Tensor& kt);
  // True where query row (g, t) at position pos+t must not see key j: j > pos + t.
  at::Tensor causal_mask(const Grouped& g, int64_t pos, int64_t keys) const;
  // Rotation by +angle (direction 1) or -angle (-1) of each (2i, 2i+1) pair.
  void rotate(const Tensor& out, const Tensor& in, const RopeArgs& args, double direction);
  // cos and sin of positions pos..pos+t-1; the cached tables cover `positions` at least.
  std::pair<at::Tensor, at::Tensor> rope_tables(int64_t pos, int64_t t, int64_t hd, float theta,
                                                int64_t positions);

  std::mutex mutex_;
  std::unordered_map<void*, at::Tensor> allocations_;
  RopeTable rope_;                  // on the host
  at::Tensor rope_cos_, rope_sin_;  // rope_'s tables on the device
};

}  // namespace capbench
