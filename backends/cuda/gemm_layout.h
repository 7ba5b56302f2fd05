// Row-major C[M,N] = op(A)·op(B) as the column-major call BLAS libraries (cuBLAS) take. A
// row-major matrix read column-major is its transpose, so the call computes
// Cᵀ = op(B)ᵀ·op(A)ᵀ: B is the first operand, A the second. Plain C++, so the mapping is
// tested on machines without a GPU (tests/test_units.cpp).
#pragma once

#include <cstdint>

namespace capbench {

struct ColumnMajorGemm {
  bool trans_first, trans_second;  // op of the first operand (B) and of the second (A)
  int64_t m, n, k;                 // of the column-major product: m = N, n = M
  int64_t ld_first, ld_second, ld_c;
};

// a is stored [M,K] (or [K,M] when trans_a), b [K,N] (or [N,K] when trans_b), c [M,N].
inline ColumnMajorGemm column_major_gemm(int64_t m, int64_t n, int64_t k, bool trans_a,
                                         bool trans_b) {
  return {trans_b, trans_a, n, m, k, trans_b ? k : n, trans_a ? m : k, n};
}

}  // namespace capbench
