// A Llama-style decoder's shape: RMSNorm, RoPE, grouped-query attention, SwiGLU MLP, untied
// embedding and head.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace capbench {

// Bounds on a model's sizes (well above any published model's), checked on load: with them, no
// size product in the workloads or the cost model can overflow 64 bits.
constexpr int64_t kMaxModelDim = int64_t{1} << 16;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxFfnDim = int64_t{1} << 20;
constexpr int64_t kMaxVocab = int64_t{1} << 22;
constexpr int64_t kMaxSeq = int64_t{1} << 20;
// A run's batch (sequences per step), likewise.
constexpr int64_t kMaxBatch = int64_t{1} << 16;

struct ModelConfig {
  std::string name;
  int64_t d_model = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t d_ff = 0;
  int64_t vocab = 0;
  int64_t max_seq = 0;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;

  // A tensor-parallel shard keeps the whole model's head size with fewer heads.
  int64_t head_dim_fixed = 0;

  int64_t head_dim() const { return head_dim_fixed > 0 ? head_dim_fixed : d_model / n_heads; }
  int64_t q_dim() const { return n_heads * head_dim(); }
  int64_t kv_dim() const { return n_kv_heads * head_dim(); }
};

// One parameter tensor of the flat buffer, in layout order.
struct ParamSpec {
  // Which weight of the model it is (a layer's are the same role in every layer).
  enum class Role {
    embedding,
    attn_norm,
    wq,
    wk,
    wv,
    wo,
    mlp_norm,
    w_gate_up,
    w_down,
    final_norm,
    head
  };
  std::string name;  // "layers.3.wq"
  std::vector<int64_t> shape;
  int64_t offset = 0;  // elements from the start of the flat buffer
  enum class Init { ones, normal, normal_scaled } init = Init::normal;
  Role role = Role::embedding;
};

// Every parameter in flat-buffer order: embedding, per layer (attn_norm, wq, wk, wv, wo,
// mlp_norm, w_gate_up, w_down), final_norm, head.
std::vector<ParamSpec> param_specs(const ModelConfig& cfg);
int64_t param_count(const ModelConfig& cfg);
// Parameters that take part in matmuls (all but the embedding table): the N of 6·N·tokens.
int64_t matmul_param_count(const ModelConfig& cfg);

// Tensor parallelism, Megatron-style, over `tp` ranks: rank r holds query heads
// r·H/tp .. (r+1)·H/tp, the kv heads they read (split when tp divides the kv heads, else the one
// kv head its query heads share, replicated on tp / kv ranks), and d_ff / tp of the MLP; the
// embedding, the norms and the head are whole on every rank.
// What makes `tp` unusable for this model ("" when it is usable).
std::string tensor_parallel_problem(const ModelConfig& cfg, int64_t tp);
// The model each rank runs: the same d_model, layers and vocabulary, fewer heads and d_ff.
ModelConfig tensor_parallel_shard(const ModelConfig& cfg, int64_t tp);
// The first kv head of the whole model that rank `rank` holds.
int64_t shard_first_kv_head(const ModelConfig& cfg, int64_t tp, int64_t rank);
// Whether ranks hold copies of one kv head (tp above the kv heads).
inline bool kv_heads_replicated(const ModelConfig& cfg, int64_t tp) {
  return tp > cfg.n_kv_heads;
}

}  // namespace capbench
