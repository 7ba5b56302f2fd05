// bfloat16 storage: the top 16 bits of an fp32. Conversions round to nearest even and keep NaN a
// NaN; shared by the backends' CPU loops, the workloads' uploads and the tests.
#pragma once

#include <cstdint>
#include <cstring>

namespace capbench {

// A distinct type (not a bare uint16_t), so templates over the element type can tell it apart.
struct BF16 {
  uint16_t bits;
};

inline float bf16_to_float(BF16 x) {
  const uint32_t u = static_cast<uint32_t>(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline BF16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return BF16{static_cast<uint16_t>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return BF16{static_cast<uint16_t>(u >> 16)};
}

// Element access for loops templated over float and BF16: compute in fp32, store at T.
inline float load(const float* p) {
  return *p;
}
inline float load(const BF16* p) {
  return bf16_to_float(*p);
}
inline void store(float* p, float x) {
  *p = x;
}
inline void store(BF16* p, float x) {
  *p = float_to_bf16(x);
}

}  // namespace capbench
