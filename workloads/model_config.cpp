#include "workloads/model_config.h"

#include "harness/json_access.h"

namespace capbench {

std::vector<ParamSpec> param_specs(const ModelConfig& cfg) {
  std::vector<ParamSpec> specs;
  int64_t offset = 0;
  auto push = [&](std::string name, std::vector<int64_t> shape, ParamSpec::Init init) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    specs.push_back({std::move(name), std::move(shape), offset, init});
    offset += n;
  };
  using I = ParamSpec::Init;
  const int64_t c = cfg.d_model;
  push("embedding", {cfg.vocab, c}, I::normal);
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    push(p + "attn_norm", {c}, I::ones);
    push(p + "wq", {cfg.q_dim(), c}, I::normal);
    push(p + "wk", {cfg.kv_dim(), c}, I::normal);
    push(p + "wv", {cfg.kv_dim(), c}, I::normal);
    push(p + "wo", {c, cfg.q_dim()}, I::normal_scaled);
    push(p + "mlp_norm", {c}, I::ones);
    push(p + "w_gate_up", {2 * cfg.d_ff, c}, I::normal);
    push(p + "w_down", {c, cfg.d_ff}, I::normal_scaled);
  }
  push("final_norm", {c}, I::ones);
  push("head", {cfg.vocab, c}, I::normal);
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

ModelConfig load_model_config(const std::string& name_or_path, const std::string& config_dir) {
  const std::string file = config_file_path(name_or_path, config_dir, "models");
  const json doc = load_json_file(file);
  const JsonView root = JsonView(doc, file).object();
  ModelConfig cfg;
  cfg.name = root.get_string("name", name_or_path);
  // Bounds above any published model, so that no size arithmetic can overflow.
  cfg.d_model = root.at("d_model").as_int_in(1, kMaxModelDim);
  cfg.n_layers = root.at("n_layers").as_int_in(1, kMaxLayers);
  cfg.n_heads = root.at("n_heads").as_int_in(1, kMaxHeads);
  cfg.n_kv_heads = root.at("n_kv_heads").as_int_in(1, kMaxHeads);
  cfg.d_ff = root.at("d_ff").as_int_in(1, kMaxFfnDim);
  cfg.vocab = root.at("vocab").as_int_in(1, kMaxVocab);
  cfg.max_seq = root.at("max_seq").as_int_in(1, kMaxSeq);
  if (root.has("rope_theta")) cfg.rope_theta = root.at("rope_theta").as_number_in(1e-3, 1e12);
  if (root.has("norm_eps")) cfg.norm_eps = root.at("norm_eps").as_number_in(1e-30, 1.0);
  if (cfg.d_model % cfg.n_heads != 0)
    root.at("n_heads").fail("a divisor of d_model (" + std::to_string(cfg.d_model) + "), got " +
                            std::to_string(cfg.n_heads));
  if (cfg.n_heads % cfg.n_kv_heads != 0)
    root.at("n_kv_heads")
        .fail("a divisor of n_heads (" + std::to_string(cfg.n_heads) + "), got " +
              std::to_string(cfg.n_kv_heads));
  if (cfg.head_dim() % 2 != 0)
    root.at("n_heads").fail("a head dimension d_model/n_heads that is even (RoPE rotates pairs)");
  return cfg;
}

}  // namespace capbench
