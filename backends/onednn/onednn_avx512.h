// AVX-512 building blocks of the oneDNN backend's own kernels (the small products of decode's
// linear layers, decode attention). They are compiled for AVX-512 whatever the build's target
// (CAPBENCH_AVX512 on each function that uses them) and called only where cpu_runs_avx512()
// found the instructions; elsewhere the backend keeps its portable loops and oneDNN's GEMM.
#pragma once

#include <immintrin.h>

#include "backends/bf16.h"

#define CAPBENCH_AVX512 __attribute__((target("avx512f,avx512bw,avx512bf16")))

namespace capbench::onednn {

// AVX-512F and BW, and with `bf16` also AVX512_BF16 (the bf16 dot-product instruction).
inline bool cpu_runs_avx512(bool bf16) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return avx512 && (!bf16 || __builtin_cpu_supports("avx512bf16"));
}

// GCC 12's unmasked forms of several intrinsics start from an undefined vector and trip
// -Wmaybe-uninitialized; their zero-masked forms with every lane selected are the same
// instructions without it.
constexpr __mmask16 kAllLanes = 0xffff;

// The 16 lanes added up, by swapping halves.
CAPBENCH_AVX512 inline float lanes_sum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(kAllLanes, v, v, 0x4e));  // 256-bit halves
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(kAllLanes, v, v, 0xb1));  // 128-bit quarters
  v = _mm512_add_ps(v, _mm512_maskz_permute_ps(kAllLanes, v, 0x4e));        // pairs within 128 bits
  v = _mm512_add_ps(v, _mm512_maskz_permute_ps(kAllLanes, v, 0xb1));        // neighbours
  return _mm512_cvtss_f32(v);
}

// 16 consecutive elements as fp32 lanes.
CAPBENCH_AVX512 inline __m512 widen16(const float* p) {
  return _mm512_loadu_ps(p);
}
CAPBENCH_AVX512 inline __m512 widen16(const BF16* p) {
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m512i wide = _mm512_maskz_cvtepu16_epi32(kAllLanes, bits);
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAllLanes, wide, 16));
}

// 16 fp32 lanes stored at T (bf16 rounded to nearest even, as capbench::store does).
CAPBENCH_AVX512 inline void narrow16(float* p, __m512 v) {
  _mm512_storeu_ps(p, v);
}
CAPBENCH_AVX512 inline void narrow16(BF16* p, __m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  for (int i = 0; i < 16; ++i) store(p + i, lanes[i]);
}

}  // namespace capbench::onednn
