#include "workloads/model_config.h"

#include <fmt/format.h>

namespace capbench {

std::vector<ParamSpec> param_specs(const ModelConfig& cfg) {
  std::vector<ParamSpec> specs;
  int64_t offset = 0;
  using I = ParamSpec::Init;
  using R = ParamSpec::Role;
  auto push = [&](std::string name, std::vector<int64_t> shape, I init, R role) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    specs.push_back({std::move(name), std::move(shape), offset, init, role});
    offset += n;
  };
  const int64_t c = cfg.d_model;
  push("embedding", {cfg.vocab, c}, I::normal, R::embedding);
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    push(p + "attn_norm", {c}, I::ones, R::attn_norm);
    push(p + "wq", {cfg.q_dim(), c}, I::normal, R::wq);
    push(p + "wk", {cfg.kv_dim(), c}, I::normal, R::wk);
    push(p + "wv", {cfg.kv_dim(), c}, I::normal, R::wv);
    push(p + "wo", {c, cfg.q_dim()}, I::normal_scaled, R::wo);
    push(p + "mlp_norm", {c}, I::ones, R::mlp_norm);
    push(p + "w_gate_up", {2 * cfg.d_ff, c}, I::normal, R::w_gate_up);
    push(p + "w_down", {c, cfg.d_ff}, I::normal_scaled, R::w_down);
  }
  push("final_norm", {c}, I::ones, R::final_norm);
  push("head", {cfg.vocab, c}, I::normal, R::head);
  return specs;
}

int64_t param_count(const ModelConfig& cfg) {
  const int64_t c = cfg.d_model;
  const int64_t per_layer = 2 * c + cfg.q_dim() * c * 2 + cfg.kv_dim() * c * 2 + 3 * cfg.d_ff * c;
  return 2 * cfg.vocab * c + cfg.n_layers * per_layer + c;
}

int64_t matmul_param_count(const ModelConfig& cfg) {
  const int64_t c = cfg.d_model;
  return cfg.n_layers * (cfg.q_dim() * c * 2 + cfg.kv_dim() * c * 2 + 3 * cfg.d_ff * c) +
         cfg.vocab * c;
}

std::string tensor_parallel_problem(const ModelConfig& cfg, int64_t tp) {
  if (tp < 1) return fmt::format("tp must be at least 1, got {}", tp);
  if (cfg.n_heads % tp != 0)
    return fmt::format("tp {} does not divide the {} attention heads of model {}", tp, cfg.n_heads,
                       cfg.name);
  if (cfg.n_kv_heads % tp != 0 && tp % cfg.n_kv_heads != 0)
    return fmt::format("tp {} neither divides nor is a multiple of the {} kv heads of model {}", tp,
                       cfg.n_kv_heads, cfg.name);
  if (cfg.d_ff % tp != 0)
    return fmt::format("tp {} does not divide the d_ff {} of model {}", tp, cfg.d_ff, cfg.name);
  return "";
}

ModelConfig tensor_parallel_shard(const ModelConfig& cfg, int64_t tp) {
  ModelConfig shard = cfg;
  if (tp <= 1) return shard;
  shard.head_dim_fixed = cfg.head_dim();
  shard.n_heads = cfg.n_heads / tp;
  shard.n_kv_heads = kv_heads_replicated(cfg, tp) ? 1 : cfg.n_kv_heads / tp;
  shard.d_ff = cfg.d_ff / tp;
  return shard;
}

int64_t shard_first_kv_head(const ModelConfig& cfg, int64_t tp, int64_t rank) {
  if (kv_heads_replicated(cfg, tp)) return rank / (tp / cfg.n_kv_heads);
  return rank * (cfg.n_kv_heads / tp);
}

}  // namespace capbench
