// A device's rates: compute (FLOP/s) and memory (bytes/s), what the throttle paces to, what the
// roofline predicts with, and what utilisations divide by; 0 means unknown. And the rates a host
// really reaches per shape of op, which the throttle paces against: a core streams a short
// matrix row at half the rate of a long one, so one best-case GEMV misjudges a model whose rows
// are short.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/backend.h"

namespace capbench {

struct OpCost;

struct Rates {
  double flops = 0;
  double bytes_per_s = 0;
};

// One shape class and the rate the host reached on it.
struct ShapeRate {
  int64_t size = 0;  // GEMV: the row length K; GEMM: the geometric mean of M, N and K
  double rate = 0;   // GEMV: weight bytes per second; GEMM: FLOP/s
  // GEMV: the matrix's rows N, the outputs (one core's OpenBLAS streams K = 512 at 12 GB/s with
  // N = 1024 and at 6 GB/s with N = 1536); 0: any.
  int64_t rows = 0;
};

struct HostRates {
  Rates peak;                    // the best GEMM and the best memory stream
  std::vector<ShapeRate> gemv;   // matmuls of at most kGemvRows rows (decode), by row length
                                 // K and matrix rows N
  std::vector<ShapeRate> gemm;   // larger matmuls, by size
  double other_bytes_per_s = 0;  // every other op (elementwise, norms): one stream rate
  double dispatch_s = 0;         // what one op costs the host beyond its work

  static constexpr int64_t kGemvRows = 16;
  // The rates an op of this cost reaches here: its shape class's (the nearest size, in log
  // scale) in the dimension that class measured, the peak in the other. The peak alone when no
  // class was measured.
  Rates for_op(OpId op, const OpCost& cost) const;
};

}  // namespace capbench
