// The inference workload: prefill a prompt batch (time to first token), then decode one token
// per sequence per step over a preallocated KV cache. Decode inputs are fixed token ids drawn up
// front (no sampling), so no step waits on the host.
#pragma once

#include "workloads/captured_steps.h"
#include "workloads/transformer.h"
#include "workloads/workload.h"

namespace capbench {

class Inference {
 public:
  // With `shard` (tensor parallel), the model is that rank's shard of cfg.
  Inference(Backend& backend, const ModelConfig& cfg, int64_t batch, int64_t prompt,
            int64_t decode_steps, uint64_t seed, DType dtype = DType::f32,
            const TensorShard* shard = nullptr);
  // Both replay a graph per step where graphs are on (prefill; each decode position).
  Tensor prefill();             // logits [B·P, V]
  Tensor decode(int64_t step);  // step in [0, decode_steps): logits [B, V]
  // Graphs on where wanted, the backend can capture and the model's collectives can be
  // captured (Model::steps_capturable); returns whether they are on.
  bool use_graphs(bool wanted) { return captured_.enable(wanted && model_.steps_capturable()); }
  // Decode-vs-full-forward canary: prefill, one decode step, then one forward over the prompt
  // plus that token; returns the largest |difference| of the new position's logits, relative
  // to the largest |logit|.
  double kv_consistency_error();

  int64_t batch() const { return batch_; }
  int64_t prompt() const { return prompt_; }
  int64_t decode_steps() const { return decode_steps_; }
  Model& model() { return model_; }
  const Model& model() const { return model_; }
  size_t memory_bytes() const;
  // What memory_bytes() will be, from the shape alone (nothing allocated).
  static double footprint_bytes(const ModelConfig& cfg, int64_t batch, int64_t prompt,
                                int64_t decode_steps, DType dtype);

 private:
  Backend& be_;
  Model model_;
  int64_t batch_, prompt_, decode_steps_;
  InferencePass pass_;
  TensorStore store_;
  Tensor prompt_tokens_;  // [B,P]
  Tensor decode_tokens_;  // [D,B]: step-major so each step's [B,1] is contiguous
  Tensor check_tokens_;   // [B,P+1]: the prompt plus the first decode token
  Tensor next_tokens_;    // [B,1]: that first decode token alone
  CapturedSteps captured_;
};

// The inference workload: a prefill and decode_steps decode steps a repetition; series
// prefill_s and decode_step_s; prefill MFU, and decode MBU of the bytes a step must read.
const Workload& inference_workload();

}  // namespace capbench
