// The rotary embedding's angle table, cos and sin of p · theta^(-2i/D) for positions p and
// pairs i < D/2, computed once and kept by the backends that rotate from a table (angles per
// call cost a pow, a cos and a sin per pair and position: ~12 ms of a 128-token llama-350m
// prefill on two cores).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace capbench {

struct RopeTable {
  float theta = 0;
  int64_t head_dim = 0, positions = 0;
  std::vector<float> cos, sin;  // [positions, head_dim / 2] each

  // Covers positions [0, end) at (theta, head_dim) afterwards; returns whether it was rebuilt,
  // then for max(wanted, end, twice the old size) positions, so it seldom grows again.
  bool ensure(float theta_, int64_t head_dim_, int64_t end, int64_t wanted) {
    if (theta == theta_ && head_dim == head_dim_ && positions >= end) return false;
    const int64_t n = std::max({wanted, end, 2 * positions}), half = head_dim_ / 2;
    cos.assign(static_cast<size_t>(n * half), 0.0f);
    sin.assign(cos.size(), 0.0f);
    for (int64_t p = 0; p < n; ++p)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(p) * std::pow(static_cast<double>(theta_),
                                                               -2.0 * static_cast<double>(i) /
                                                                   static_cast<double>(head_dim_));
        cos[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(angle));
        sin[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(angle));
      }
    theta = theta_;
    head_dim = head_dim_;
    positions = n;
    return true;
  }
};

}  // namespace capbench
