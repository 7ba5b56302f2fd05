// Products of a few rows by a weight matrix, y = x · Wᵀ with x [rows ≤ 8, K] and W [N, K]: the
// decode step's linear layers. Every weight is read once a step, so the step runs at the rate
// the CPU streams W; oneDNN 2.x's jit GEMM reached about half the machine's read stream on these
// shapes (bf16 at one row), and a kernel that walks the rows of W in memory order, one row at a
// time per thread with its dot products in registers, reaches the read stream itself. The
// weights stay in their plain [N, K] layout: the bf16 dot-product instruction (vdpbf16ps) takes
// pairs of consecutive k, which a row of W already is, so nothing is reordered and the same
// buffer serves the prefill's GEMM.
#pragma once

#include "backends/backend.h"

namespace capbench::onednn {

// The most rows of x one small product takes; more rows go to oneDNN's GEMM.
constexpr int64_t kSmallProductMaxRows = 8;

// out[r, n] = Σ_k x[r, k] · w[n, k], accumulated in fp32.
//   out: [rows, N] at x's dtype or fp32; x: [rows, K]; w: [N, K] at x's dtype; all contiguous,
//   rows ≤ kSmallProductMaxRows. The rows of W are split among the OpenMP team, a thread done
//   with its share taking chunks left of another's (onednn_chunk_shares.h). Only where
//   cpu_runs_avx512 (onednn_avx512.h) holds, with AVX512_BF16 for bf16.
void small_product(const Tensor& out, const Tensor& x, const Tensor& w);

}  // namespace capbench::onednn
