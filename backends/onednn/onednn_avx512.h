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

// The largest of the 16 lanes.
CAPBENCH_AVX512 inline float lanes_max(__m512 v) {
  v = _mm512_maskz_max_ps(kAllLanes, v, _mm512_maskz_shuffle_f32x4(kAllLanes, v, v, 0x4e));
  v = _mm512_maskz_max_ps(kAllLanes, v, _mm512_maskz_shuffle_f32x4(kAllLanes, v, v, 0xb1));
  v = _mm512_maskz_max_ps(kAllLanes, v, _mm512_maskz_permute_ps(kAllLanes, v, 0x4e));
  v = _mm512_maskz_max_ps(kAllLanes, v, _mm512_maskz_permute_ps(kAllLanes, v, 0xb1));
  return _mm512_cvtss_f32(v);
}

// Lane j = the sum of v[j]'s 16 lanes: 16 horizontal sums in 30 adds and shuffles instead of
// 16 × 8 (pairs, then quadruples within 128 bits, then across the four 128-bit quarters).
CAPBENCH_AVX512 inline __m512 sums_of_16(const __m512 v[16]) {
  __m512 pairs[8], quads[4];
  for (int i = 0; i < 8; ++i)  // per quarter: [x0+x2, y0+y2, x1+x3, y1+y3]
    pairs[i] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(kAllLanes, v[2 * i], v[2 * i + 1]),
                             _mm512_maskz_unpackhi_ps(kAllLanes, v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i)  // per quarter: the quarter's sums of v[4i] … v[4i+3]
    quads[i] =
        _mm512_add_ps(_mm512_maskz_shuffle_ps(kAllLanes, pairs[2 * i], pairs[2 * i + 1], 0x44),
                      _mm512_maskz_shuffle_ps(kAllLanes, pairs[2 * i], pairs[2 * i + 1], 0xee));
  // Across quarters: quarter i of the result gathers quads[i]'s four quarters.
  const __m512 lo = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAllLanes, quads[0], quads[1], 0x44),
                                  _mm512_maskz_shuffle_f32x4(kAllLanes, quads[0], quads[1], 0xee));
  const __m512 hi = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAllLanes, quads[2], quads[3], 0x44),
                                  _mm512_maskz_shuffle_f32x4(kAllLanes, quads[2], quads[3], 0xee));
  return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAllLanes, lo, hi, 0x88),
                       _mm512_maskz_shuffle_f32x4(kAllLanes, lo, hi, 0xdd));
}

// e^x per lane: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two so n·ln2 is exact), e^r by its
// Taylor series to r⁷ (truncation below 1e-8 relative), scaled by 2ⁿ. Below -87 the result
// flushes towards 0 as std::exp's does; x is held at 88 and below, so it stays finite.
CAPBENCH_AVX512 inline __m512 exp16(__m512 x) {
  x = _mm512_maskz_max_ps(kAllLanes, x, _mm512_set1_ps(-104.0f));
  x = _mm512_maskz_min_ps(kAllLanes, x, _mm512_set1_ps(88.0f));
  const __m512 n =
      _mm512_maskz_roundscale_ps(kAllLanes, _mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f)),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 poly = _mm512_set1_ps(1.0f / 5040);
  for (const float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f})
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(c));
  return _mm512_maskz_scalef_ps(kAllLanes, poly, n);
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
