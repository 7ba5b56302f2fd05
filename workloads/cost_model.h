// Model-level figures for MFU and MBU: the FLOPs of a training step or a forward pass, and the
// bytes a decode step must read, from the model's shape. (Per-op costs: backends/op_costs.h.)
#pragma once

#include "backends/backend.h"
#include "workloads/model_config.h"

namespace capbench {

// Model FLOPs of one training step (forward + backward, no recompute): per token
// 6·N_matmul + 6·L·q_dim·(T+1) for causal attention over T tokens (PaLM's accounting, halved for
// causality).
double train_step_model_flops(const ModelConfig& cfg, int64_t batch, int64_t seq);
// Forward FLOPs of `seq` new tokens per sequence at positions pos..pos+seq-1.
double forward_model_flops(const ModelConfig& cfg, int64_t batch, int64_t seq, int64_t pos);
// Bytes one decode step must read at least: every weight that takes part in a matmul or norm
// (the embedding table only for the B rows looked up) and the K/V cache up to ctx positions.
double decode_step_min_bytes(const ModelConfig& cfg, int64_t batch, int64_t ctx, DType weight_dtype,
                             DType cache_dtype);

}  // namespace capbench
