// The training workload: forward, loss, backward, AdamW over the flat buffers.
#pragma once

#include <memory>

#include "workloads/captured_steps.h"
#include "workloads/data_parallel.h"
#include "workloads/transformer.h"
#include "workloads/workload.h"

namespace capbench {

// A learnable synthetic stream: each sequence starts at a random token and continues with
// next = (5·prev + 17) mod V, so a model can drive the loss down within a few steps.
// tokens and targets are [B·T] each; targets are tokens shifted by one.
void synthetic_batch(const ModelConfig& cfg, int64_t batch, int64_t seq, uint64_t seed,
                     std::vector<int32_t>* tokens, std::vector<int32_t>* targets);

class TrainStep {
 public:
  // With `comm` (data parallel over its ranks): this rank's `batch` sequences are its share
  // of a global batch of world·batch, and gradients are all-reduced in buckets during the
  // backward pass.
  // With `shard` (tensor parallel), the model is that rank's shard of cfg, and
  // every rank of the shard trains the same sequences.
  TrainStep(Backend& backend, const ModelConfig& cfg, int64_t batch, int64_t seq, uint64_t seed,
            AdamWArgs optimizer = {}, DType dtype = DType::f32, Communicator* comm = nullptr,
            const ParallelSpec& parallel = {}, const TensorShard* shard = nullptr);
  // One whole step, queued on the backend with no host synchronisation; a replayed graph where
  // graphs are on.
  void run();
  // Graphs on where wanted, the backend can capture and the model's collectives can be
  // captured (Model::steps_capturable); returns whether they are on.
  bool use_graphs(bool wanted) { return captured_.enable(wanted && model_.steps_capturable()); }
  int64_t steps_taken();  // AdamW's step count, read from the device
  // Of the last step's forward, over the global batch.
  double loss();
  // Data parallel: the gradient synchronisation (null for one rank).
  const GradientSync* gradient_sync() const { return sync_.get(); }
  Model& model() { return model_; }
  const Model& model() const { return model_; }
  TrainingPass& pass() { return pass_; }
  int64_t tokens_per_step() const { return pass_.batch() * pass_.seq(); }
  size_t memory_bytes() const {
    return model_.bytes() + pass_.activation_bytes() + counters_.bytes();
  }
  // What memory_bytes() will be, from the shape alone (nothing allocated).
  static double footprint_bytes(const ModelConfig& cfg, int64_t batch, int64_t seq, DType dtype);

 private:
  Model model_;
  TrainingPass pass_;
  AdamWArgs optimizer_;
  // AdamW's step count lives on the device, advanced inside the step, so a replay advances it.
  TensorStore counters_;
  Tensor step_count_, one_;  // [1] f32 each
  CapturedSteps captured_;
  Communicator* comm_ = nullptr;
  std::unique_ptr<GradientSync> sync_;
};

// The train_step workload: one step a repetition; series step_s; MFU of the model FLOPs.
const Workload& train_step_workload();

}  // namespace capbench
