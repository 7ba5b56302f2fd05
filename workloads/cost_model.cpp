#include "workloads/cost_model.h"

namespace capbench {

double train_step_model_flops(const ModelConfig& cfg, int64_t batch, int64_t seq) {
  const double tokens = static_cast<double>(batch * seq);
  const double per_token =
      6.0 * static_cast<double>(matmul_param_count(cfg)) +
      6.0 * static_cast<double>(cfg.n_layers * cfg.q_dim()) * static_cast<double>(seq + 1);
  return tokens * per_token;
}

double forward_model_flops(const ModelConfig& cfg, int64_t batch, int64_t seq, int64_t pos) {
  // Token t attends over pos+t+1 keys: 4·q_dim FLOPs per key (QKᵀ and PV).
  const double keys = static_cast<double>(seq) * static_cast<double>(pos) +
                      static_cast<double>(seq) * static_cast<double>(seq + 1) / 2.0;
  return static_cast<double>(batch) *
         (2.0 * static_cast<double>(matmul_param_count(cfg)) * static_cast<double>(seq) +
          4.0 * static_cast<double>(cfg.n_layers * cfg.q_dim()) * keys);
}

double decode_step_min_bytes(const ModelConfig& cfg, int64_t batch, int64_t ctx, DType weight_dtype,
                             DType cache_dtype) {
  const double norms = static_cast<double>((2 * cfg.n_layers + 1) * cfg.d_model);
  const double weights = static_cast<double>(matmul_param_count(cfg)) + norms +
                         static_cast<double>(batch * cfg.d_model);
  const double cache = 2.0 * static_cast<double>(cfg.n_layers * batch * ctx * cfg.kv_dim());
  return weights * static_cast<double>(dtype_size(weight_dtype)) +
         cache * static_cast<double>(dtype_size(cache_dtype));
}

}  // namespace capbench
