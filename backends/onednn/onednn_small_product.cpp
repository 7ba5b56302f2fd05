#include "backends/onednn/onednn_small_product.h"

#include "backends/onednn/onednn_avx512.h"
#include "backends/onednn/onednn_chunk_shares.h"
#include "backends/onednn/onednn_common.h"

namespace capbench::onednn {
namespace {

// One 512-bit load of each element type and the multiply-add over it into 16 fp32 lanes.
struct Bf16Lanes {
  using Element = BF16;
  using Vec = __m512i;
  static constexpr int64_t kPerLoad = 32;
  CAPBENCH_AVX512 static Vec load(const BF16* p) { return _mm512_loadu_si512(p); }
  // The first n < kPerLoad elements, zeros after them (which add nothing to a dot product).
  CAPBENCH_AVX512 static Vec load_first(const BF16* p, int64_t n) {
    return _mm512_maskz_loadu_epi16(static_cast<__mmask32>((uint64_t{1} << n) - 1), p);
  }
  // Each fp32 lane gains x[2i]·w[2i] + x[2i+1]·w[2i+1]: pairs of consecutive k.
  CAPBENCH_AVX512 static __m512 multiply_add(__m512 acc, Vec x, Vec w) {
    return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(x), reinterpret_cast<__m512bh>(w));
  }
};

struct F32Lanes {
  using Element = float;
  using Vec = __m512;
  static constexpr int64_t kPerLoad = 16;
  CAPBENCH_AVX512 static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  CAPBENCH_AVX512 static Vec load_first(const float* p, int64_t n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  CAPBENCH_AVX512 static __m512 multiply_add(__m512 acc, Vec x, Vec w) {
    return _mm512_fmadd_ps(x, w, acc);
  }
};

// out[r, n] for r < Rows and n in [n_begin, n_end): one row of W at a time, read front to back,
// so each thread reads one sequential stream (two rows read side by side streamed at two thirds
// of the rate on the machine this was tuned on). One accumulator per row of x: splitting each
// dot product over independent accumulators, to hide the multiply-adds' latency, made decode
// steps slower, not faster (2-core EPYC, llama-350m, steps alternating between the two kernels:
// one row, 4 accumulators against 1, 3-5% slower at bf16 and fp32; two rows, 2 against 1,
// 2-3%): the loop waits on memory, not on the multiply-adds, and the rows of W in flight
// overlap their chains anyway.
//   out: [Rows, n_total]; x: [Rows, k]; w: [n_total, k]
template <class L, class Out, int Rows>
CAPBENCH_AVX512 void product_rows(Out* out, const typename L::Element* x,
                                  const typename L::Element* w, int64_t n_begin, int64_t n_end,
                                  int64_t n_total, int64_t k) {
  constexpr int64_t per = L::kPerLoad;
  const int64_t whole = k / per * per;
  for (int64_t n = n_begin; n < n_end; ++n) {
    const typename L::Element* wn = w + n * k;
    __m512 acc[Rows];
    for (int r = 0; r < Rows; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t j = 0; j < whole; j += per) {
      const typename L::Vec wv = L::load(wn + j);
      for (int r = 0; r < Rows; ++r) acc[r] = L::multiply_add(acc[r], L::load(x + r * k + j), wv);
    }
    if (whole < k) {
      const typename L::Vec wv = L::load_first(wn + whole, k - whole);
      for (int r = 0; r < Rows; ++r)
        acc[r] = L::multiply_add(acc[r], L::load_first(x + r * k + whole, k - whole), wv);
    }
    for (int r = 0; r < Rows; ++r) store(out + r * n_total + n, lanes_sum(acc[r]));
  }
}

template <class L, class Out>
void product_rows_of(int64_t rows, Out* out, const typename L::Element* x,
                     const typename L::Element* w, int64_t n_begin, int64_t n_end, int64_t n_total,
                     int64_t k) {
  static_assert(kSmallProductMaxRows == 8, "one instantiation per row count");
  using Fn = void (*)(Out*, const typename L::Element*, const typename L::Element*, int64_t,
                      int64_t, int64_t, int64_t);
  static constexpr Fn by_rows[] = {product_rows<L, Out, 1>, product_rows<L, Out, 2>,
                                   product_rows<L, Out, 3>, product_rows<L, Out, 4>,
                                   product_rows<L, Out, 5>, product_rows<L, Out, 6>,
                                   product_rows<L, Out, 7>, product_rows<L, Out, 8>};
  by_rows[rows - 1](out, x, w, n_begin, n_end, n_total, k);
}

template <class L, class Out>
void split_among_team(const Tensor& out, const Tensor& x, const Tensor& w) {
  const int64_t rows = x.rows(), k = x.cols(), n = w.dim(0);
  const int teams = parallel_worth(n * k) ? omp_get_max_threads() : 1;
  // Chunks of 32 rows: bf16 and fp32 outputs of two chunks never share a cache line, and a
  // chunk is at least 32 KiB of W for K ≥ 512 at bf16, long enough a stream to keep the
  // prefetchers ahead.
  constexpr int64_t chunk_rows = 32;
  auto share_edge = [&](int64_t i) {
    return i == teams ? n : std::min(n, n * i / teams / chunk_rows * chunk_rows);
  };
  // Equal shares alone left the faster thread idle at the end of every product (measured in a
  // decode step: a thread finished 40 µs before the other on 210 µs products, 13% of the
  // products' time), so a thread done with its share takes chunks left of another's.
  ChunkShares shares(teams);
  for (int t = 0; t < teams; ++t)
    shares.reset(t, static_cast<uint32_t>((share_edge(t + 1) - share_edge(t) + chunk_rows - 1) /
                                          chunk_rows));
#pragma omp parallel num_threads(teams)
  shares.run(omp_get_thread_num(), [&](int share, uint32_t chunk) {
    const int64_t begin = share_edge(share) + int64_t{chunk} * chunk_rows;
    product_rows_of<L, Out>(rows, out.as<Out>(), x.as<typename L::Element>(),
                            w.as<typename L::Element>(), begin,
                            std::min(begin + chunk_rows, share_edge(share + 1)), n, k);
  });
}

}  // namespace

void small_product(const Tensor& out, const Tensor& x, const Tensor& w) {
  if (x.rows() < 1 || x.rows() > kSmallProductMaxRows || w.cols() != x.cols() ||
      out.rows() != x.rows() || out.cols() != w.dim(0) || w.dtype != x.dtype)
    throw std::invalid_argument("small_product: shapes or types do not fit");
  if (x.dtype == DType::f32 && out.dtype == DType::f32)
    split_among_team<F32Lanes, float>(out, x, w);
  else if (x.dtype == DType::bf16 && out.dtype == DType::bf16)
    split_among_team<Bf16Lanes, BF16>(out, x, w);
  else if (x.dtype == DType::bf16 && out.dtype == DType::f32)
    split_among_team<Bf16Lanes, float>(out, x, w);
  else
    throw std::invalid_argument("small_product: no kernel for these element types");
}

}  // namespace capbench::onednn
