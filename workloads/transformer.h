// The Llama-style decoder written once against the Backend interface, llm.c style: explicit
// forward and backward per layer, parameters / gradients / AdamW moments each in one flat buffer
// with per-layer views into it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backends/backend.h"
#include "backends/comm/communicator.h"
#include "workloads/model_config.h"

namespace capbench {

// Device allocations that live as long as the owner; hands out tensor views.
class TensorStore {
 public:
  explicit TensorStore(Backend& backend) : backend_(backend) {}
  Tensor make(DType dtype, std::initializer_list<int64_t> dims);
  Tensor make(DType dtype, const std::vector<int64_t>& dims);
  void* raw(size_t bytes);
  size_t bytes() const { return bytes_; }

 private:
  Backend& backend_;
  std::vector<DeviceBuffer> buffers_;
  size_t bytes_ = 0;
};

// A view of `data` with these dimensions (1 to 4 of them).
Tensor shaped(void* data, DType dtype, const std::vector<int64_t>& dims);

struct LayerWeights {
  Tensor attn_norm, wq, wk, wv, wo, mlp_norm, w_gate_up, w_down;
};
struct Weights {
  Tensor embedding, final_norm, head;
  std::vector<LayerWeights> layers;
};
// Views of one flat buffer of `dtype` elements (parameters, or gradients: same layout).
Weights weight_views(const ModelConfig& cfg, void* flat_base, DType dtype);

// Deterministic initial parameters: normal(0, 0.02), output projections scaled by 1/sqrt(2L),
// norm weights 1.
std::vector<float> initial_params(const ModelConfig& cfg, uint64_t seed);
// The n initial values of one parameter tensor, on `threads` threads (0: one per core); the same
// values whatever the thread count.
void init_values(const ModelConfig& cfg, const ParamSpec& spec, uint64_t seed, float* out,
                 int64_t n, int threads = 0);

// One rank's shard under tensor parallelism (model_config.h): which ranks the whole model is split
// over and which one this is, and the ranks' communicator, whose all-reduces sum the partial
// results of the split products (two per layer forward, two backward).
struct TensorShard {
  int64_t tp = 1;
  int64_t rank = 0;
  Communicator* ranks = nullptr;  // null: never summed (not for real use: tests of the layout)
};

// Parameters (+ gradients and AdamW moments when training) on a backend, at a compute dtype.
// fp32: one parameter buffer. bf16 inference: the parameters in bf16 alone. bf16 training: mixed
// precision — fp32 master parameters (what AdamW updates), a bf16 copy the ops read, refreshed
// after every update, and fp32 gradients and moments.
class Model {
 public:
  // With a shard, the model this rank holds is tensor_parallel_shard(cfg, shard->tp) (config()),
  // its parameters this rank's slices of cfg's (the same values one device would hold).
  Model(Backend& backend, const ModelConfig& cfg, uint64_t seed, bool training,
        DType dtype = DType::f32, const TensorShard* shard = nullptr);
  const ModelConfig& config() const { return cfg_; }
  Backend& backend() const { return backend_; }
  DType dtype() const { return dtype_; }
  const Weights& weights() const { return weights_; }  // at the compute dtype
  const Weights& grads() const { return grads_; }      // fp32
  Tensor params_flat() const { return params_; }  // the master copy: fp32 unless bf16 inference
  Tensor grads_flat() const { return grad_flat_; }
  Tensor m_flat() const { return m_; }
  Tensor v_flat() const { return v_; }
  std::vector<float> download(const Tensor& flat) const;
  void upload_params(const std::vector<float>& host);
  // Re-derives the compute copy from the master parameters (a no-op when they are one buffer).
  void refresh_compute_weights();
  size_t bytes() const { return store_.bytes(); }
  // Sums a partial result over the tensor-parallel ranks, in place; nothing without them.
  void sum_over_shards(const Tensor& partial) const;
  bool sharded() const { return tp_ranks_ != nullptr; }
  // Whether a device graph can hold a step: no tensor-parallel collectives, or ones queued on
  // the backend's timeline (the host's cannot be captured, and synchronise mid-step).
  bool steps_capturable() const { return !tp_ranks_ || tp_ranks_->on_backend_timeline(); }

 private:
  Backend& backend_;
  Communicator* tp_ranks_ = nullptr;
  ModelConfig cfg_;
  DType dtype_;
  TensorStore store_;
  Tensor params_, compute_, grad_flat_, m_, v_;  // compute_: the bf16 copy, in mixed precision
  Weights weights_, grads_;
};

// Activations of one layer for N = B·T rows. Training keeps one per layer (saved for backward);
// inference reuses one for every layer.
struct LayerActs {
  Tensor ln1, rstd1, q_lin, k_lin, q, k, v, att, lse, o, mid, ln2, rstd2, gate_up, h, m;
};

// One activation tensor of a layer: which member of LayerActs, its dtype and shape.
struct ActivationSpec {
  Tensor LayerActs::*member;
  DType dtype;
  std::vector<int64_t> dims;
};
// The activations of one layer for `batch` sequences of `seq` tokens (N = B·T rows), at the
// compute dtype (rstd and lse in fp32): the one table that training's per-layer allocation,
// inference's scratch and its per-call views, and the footprint estimates all read.
std::vector<ActivationSpec> layer_activation_specs(const ModelConfig& cfg, int64_t batch,
                                                   int64_t seq, DType dtype);
// One layer's activations as one block in the table's order, each at a 64-byte boundary
// (layer_block_bytes in all): allocated, or laid out from `block`, which must hold them.
size_t layer_block_bytes(const std::vector<ActivationSpec>& table);
LayerActs make_layer_acts(TensorStore& store, const std::vector<ActivationSpec>& table);
LayerActs layer_acts_at(void* block, const std::vector<ActivationSpec>& table);
// Bytes of one layer's activations (the table above, summed).
double layer_activation_bytes(const ModelConfig& cfg, int64_t batch, int64_t seq, DType dtype);

// Bytes each part allocates, from the model's shape alone: what a run checks against the
// device's (or the emulated chip's) memory before it allocates anything. Doubles, so that no
// shape can overflow them.
double model_bytes(const ModelConfig& cfg, bool training, DType dtype);
double training_pass_bytes(const ModelConfig& cfg, int64_t batch, int64_t seq, DType dtype);
double inference_pass_bytes(const ModelConfig& cfg, int64_t batch, int64_t max_new_tokens,
                            int64_t capacity, DType dtype);

// Per-layer KV cache, [B, S, K, D] each.
struct KvCache {
  std::vector<Tensor> k, v;
  int64_t capacity = 0;
};

// The (K, N) of every weight a forward pass multiplies one row by, W[N,K]: what a decode
// step streams, so that emulation can measure each shape's host rate (layer_forward's and the
// head's matmuls; keep the two in step).
std::vector<std::pair<int64_t, int64_t>> one_row_product_shapes(const ModelConfig& cfg);

// One decoder layer forward: out = in + attn(norm(in)); out += mlp(norm(out)).
// Tokens sit at positions pos .. pos+T-1. Without a cache (training) attention runs over the new
// tokens alone; with one, the new k/v are appended first, and attention runs with the prefill
// kernel when pos == 0 and over the cache otherwise.
// Under tensor parallelism the output projection's and the MLP down projection's partial results
// are summed over the ranks (model.sum_over_shards).
void layer_forward(const Model& model, const LayerWeights& w, const LayerActs& a,
                   const Tensor& in /*[N,C]*/, const Tensor& out /*[N,C]*/, int64_t batch,
                   int64_t seq, int64_t pos, KvCache* cache, int64_t layer);

// Training: forward with saved activations, fused loss, explicit backward.
class TrainingPass {
 public:
  TrainingPass(Model& model, int64_t batch, int64_t seq);
  // tokens and targets: [B·T] each, host memory.
  void set_batch(const std::vector<int32_t>& tokens, const std::vector<int32_t>& targets);
  void forward();  // logits, per-row losses and dlogits
  // Zeroes the gradients, then fills them; `ready(from)`, where given, each time every gradient
  // from flat element `from` to the end is final (after the head, each layer, the embedding).
  void backward(const std::function<void(int64_t from)>& ready = {});
  // The loss's gradient is divided by `ranks` besides the row count: data-parallel ranks whose
  // gradients are summed then hold the gradient of the mean over the global batch.
  void set_gradient_ranks(int64_t ranks) { gradient_ranks_ = ranks; }
  // The flat offset from which on every gradient is final before the embedding's backward.
  int64_t layers_offset() const {
    return layer_offsets_.empty() ? final_norm_offset_ : layer_offsets_[0];
  }
  void optimizer_step(const AdamWArgs& args);
  // AdamW over the parameters [begin, end) of the flat buffers alone; refresh_weights() after
  // the last range re-derives the compute copy (mixed precision).
  void optimizer_step(const AdamWArgs& args, int64_t begin, int64_t end);
  void refresh_weights();
  double mean_loss();  // copies the losses to the host: a synchronisation
  Tensor logits() const { return logits_; }
  size_t activation_bytes() const { return store_.bytes(); }
  int64_t batch() const { return batch_; }
  int64_t seq() const { return seq_; }

 private:
  Model& model_;
  Backend& be_;
  int64_t batch_, seq_;
  int64_t gradient_ranks_ = 1;
  std::vector<int64_t> layer_offsets_;  // flat offset of each layer's first parameter
  int64_t final_norm_offset_ = 0;
  TensorStore store_;
  Tensor tokens_, targets_;
  std::vector<Tensor> resid_;  // L+1 of [N,C]
  std::vector<LayerActs> acts_;
  Tensor lnf_, rstdf_, logits_, dlogits_, losses_;
  // Backward scratch, shared by all layers.
  Tensor dresid_, dln_, datt_, dq_, dk_, dv_, dq_lin_, dk_lin_, dh_, dgate_up_;
};

// Inference: prefill then decode steps over a preallocated KV cache.
class InferencePass {
 public:
  // Rows per call at most batch · max_new_tokens; cache capacity `capacity` tokens.
  InferencePass(Model& model, int64_t batch, int64_t max_new_tokens, int64_t capacity);
  // tokens: device [B,T] i32 at positions pos..pos+T-1; returns logits [B·T, V].
  Tensor forward(const Tensor& tokens, int64_t pos);
  size_t activation_bytes() const { return store_.bytes(); }
  const KvCache& cache() const { return cache_; }

 private:
  LayerActs views(int64_t rows, int64_t seq) const;
  Model& model_;
  Backend& be_;
  int64_t batch_, max_rows_;
  TensorStore store_;
  KvCache cache_;
  // One layer's activations for the largest call, laid out per call for the call's row count.
  void* scratch_ = nullptr;
  Tensor resid_a_, resid_b_, lnf_, rstdf_, logits_;
};

}  // namespace capbench
