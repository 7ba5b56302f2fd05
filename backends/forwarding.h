// A decorator backend: forwards everything to an inner backend, and routes every op through
// one hook with the op's cost from the cost model. The per-op profiler overrides the hook to time
// ops; the throttle overrides it to stamp and pace them.
#pragma once

#include <functional>

#include "backends/backend.h"
#include "backends/op_costs.h"

namespace capbench {

class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(Backend& inner) : inner_(inner) {}
  Backend& inner() { return inner_; }

  DeviceInfo device_info() const override { return inner_.device_info(); }
  Support supports(OpId op, DType dtype) const override { return inner_.supports(op, dtype); }

  void* alloc(size_t bytes) override { return inner_.alloc(bytes); }
  void free(void* ptr) override { inner_.free(ptr); }
  void copy_to_device(void* dst, const void* src, size_t bytes) override {
    inner_.copy_to_device(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    inner_.copy_to_host(dst, src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override { inner_.copy(dst, src, bytes); }
  void fill(const Tensor& t, float value) override { inner_.fill(t, value); }

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

  void synchronize() override { inner_.synchronize(); }
  int pace_slots() const override { return inner_.pace_slots(); }
  void stamp(int slot) override { inner_.stamp(slot); }
  void pace(int slot, const PaceRule& rule) override { inner_.pace(slot, rule); }
  Support can_capture() const override { return inner_.can_capture(); }
  void begin_capture() override { inner_.begin_capture(); }
  int end_capture() override { return inner_.end_capture(); }
  void replay(int graph) override { inner_.replay(graph); }
  void region(Region r) override { inner_.region(r); }
  void activate() override { inner_.activate(); }
  void set_pacing(bool on) override { inner_.set_pacing(on); }
  uint64_t device_peak_bytes() override { return inner_.device_peak_bytes(); }
  void reset_device_peak_bytes() override { inner_.reset_device_peak_bytes(); }

 protected:
  // Every op comes through here; `call` runs it on the inner backend. It holds copies of the
  // op's arguments, so a decorator may keep it past the op (a test's capture recorder does).
  virtual void around_op(OpId op, const OpCost& cost, const std::function<void()>& call) { call(); }

  Backend& inner_;
  // When false, ops go straight to the inner backend: no cost computed, no hook called. The
  // profiler clears it outside its profiled pass, so timed repetitions pay one branch per op.
  bool intercept_ = true;
};

}  // namespace capbench
