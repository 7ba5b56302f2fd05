// Declarations of the libtorch >= 2.1 ops the torch:cuda path calls, as PyTorch's generated
// ATen/Functions.h declares them, so that the syntax check (check.sh) can compile that path
// against Debian's libtorch 1.13 headers, which predate them. Never linked.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/SymInt.h>
#include <c10/util/Optional.h>
#include <tuple>

namespace at {
std::tuple<Tensor, Tensor, Tensor, Tensor, c10::SymInt, c10::SymInt, Tensor, Tensor, Tensor>
_scaled_dot_product_flash_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    double dropout_p = 0.0, bool is_causal = false,
                                    bool return_debug_mask = false,
                                    c10::optional<double> scale = c10::nullopt);
std::tuple<Tensor, Tensor, Tensor> _scaled_dot_product_flash_attention_backward(
    const Tensor& grad_out, const Tensor& query, const Tensor& key, const Tensor& value,
    const Tensor& out, const Tensor& logsumexp, const Tensor& cum_seq_q, const Tensor& cum_seq_k,
    int64_t max_q, int64_t max_k, double dropout_p, bool is_causal, const Tensor& philox_seed,
    const Tensor& philox_offset, c10::optional<double> scale = c10::nullopt);
void _fused_adamw_(TensorList self, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                   TensorList max_exp_avg_sqs, TensorList state_steps, double lr, double beta1,
                   double beta2, double weight_decay, double eps, bool amsgrad, bool maximize,
                   const c10::optional<Tensor>& grad_scale = {},
                   const c10::optional<Tensor>& found_inf = {});
}  // namespace at
