#pragma once

#include "backends/backend.h"

namespace capbench {

class ReferenceBackend final : public Backend {
 public:
  ReferenceBackend();

  DeviceInfo device_info() const override;
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
  void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
             const AdamWArgs& args) override;
  void convert(const Tensor& out, const Tensor& in) override;

  void synchronize() override;
  int pace_slots() const override { return HostPacer::kSlots; }
  void stamp(int slot) override;
  void pace(int slot, const PaceRule& rule) override;

 private:
  HostPacer pacer_;
};

}  // namespace capbench
