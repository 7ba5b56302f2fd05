// Shared by the oneDNN backend's files: element types, strided matrices in oneDNN's terms, and
// the small parallel loops the op entry points and the attention algorithms both use. Only
// backends/onednn/ includes it: oneDNN's headers stay there.
#pragma once

#include <omp.h>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/backend.h"
#include "backends/bf16.h"

namespace capbench::onednn {

using dnnl::memory;

inline memory::data_type dnnl_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return memory::data_type::f32;
    case DType::bf16:
      return memory::data_type::bf16;
    default:
      throw std::invalid_argument(std::string("onednn: no ") + dtype_name(dtype) + " support");
  }
}
template <class T>
constexpr memory::data_type dnnl_type_of() {
  return std::is_same_v<T, float> ? memory::data_type::f32 : memory::data_type::bf16;
}

// Runs fn(T{}) with T the element type of `dtype`: float or BF16.
template <class Fn>
void with_element_type(DType dtype, const char* op, Fn&& fn) {
  if (dtype == DType::f32)
    fn(float{});
  else if (dtype == DType::bf16)
    fn(BF16{});
  else
    throw std::invalid_argument(std::string("onednn ") + op + ": no " + dtype_name(dtype) +
                                " support");
}

// A strided matrix: element (i, j) at data[i·row_stride + j·col_stride], of type dt.
struct Mat {
  void* data;
  memory::data_type dt;
  int64_t rows, cols, row_stride, col_stride;
  Mat t() const { return {data, dt, cols, rows, col_stride, row_stride}; }
};

inline Mat mat(const Tensor& t) {
  return {t.data, dnnl_type(t.dtype), t.rows(), t.cols(), t.cols(), 1};
}

// A strided batch of matrices: [d0, d1, rows, cols], element strides s.
struct Mat4 {
  void* data;
  memory::data_type dt;
  std::array<int64_t, 4> d, s;
  // The last two dimensions swapped.
  Mat4 t() const { return {data, dt, {d[0], d[1], d[3], d[2]}, {s[0], s[1], s[3], s[2]}}; }
};

// A contiguous [d0, d1, rows, cols] buffer of T.
template <class T>
Mat4 dense4(T* p, int64_t d0, int64_t d1, int64_t rows, int64_t cols) {
  return {p, dnnl_type_of<T>(), {d0, d1, rows, cols}, {d1 * rows * cols, rows * cols, cols, 1}};
}

// K or V of a [B, S, K, D] tensor (or cache: its first s positions) as [B, K, s, D].
inline Mat4 kv_heads(const Tensor& x, int64_t s) {
  const int64_t kv = x.dim(2), d = x.dim(3);
  return {x.data, dnnl_type(x.dtype), {x.dim(0), kv, s, d}, {x.dim(1) * kv * d, d, kv * d, 1}};
}

inline memory::desc md(const Mat& m) {
  return memory::desc({m.rows, m.cols}, m.dt, {m.row_stride, m.col_stride});
}

// Waking the OpenMP team costs tens of microseconds with the passive wait policy capbench runs
// under (measured: 70-220 µs per tiny op at decode), far more than a 1×512 row of work; below
// this many elements a loop runs on the calling thread.
constexpr int64_t kParallelWork = int64_t{1} << 15;
inline bool parallel_worth(int64_t elements) {
  return elements >= kParallelWork;
}

inline int64_t idx4(const Tensor& t, int64_t b, int64_t s, int64_t h) {
  return ((b * t.dim(1) + s) * t.dim(2) + h) * t.dim(3);
}

// dst[i] = src[i] at dst's element type.
template <class To, class From>
void convert_elements(To* dst, const From* src, int64_t n) {
#pragma omp parallel for schedule(static) if (parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) store(dst + i, load(src + i));
}

// x itself when T is float; else x rounded into `storage` (bf16 operands for the next matmul).
template <class T>
T* narrowed(std::vector<float>& x, std::vector<T>& storage) {
  if constexpr (std::is_same_v<T, float>) {
    return x.data();
  } else {
    storage.resize(x.size());
    convert_elements(storage.data(), x.data(), static_cast<int64_t>(x.size()));
    return storage.data();
  }
}

// Index of each row's largest element in a [rows, cols] buffer.
inline std::vector<int64_t> row_argmax(const float* x, int64_t rows, int64_t cols) {
  std::vector<int64_t> out(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    int64_t best = 0;
    for (int64_t j = 1; j < cols; ++j)
      if (row[j] > row[best]) best = j;
    out[static_cast<size_t>(r)] = best;
  }
  return out;
}

// log Σ exp(x) of a row from its largest element x_max and the softmax there, p_max:
// p_max = exp(x_max - lse), so lse = x_max - log(p_max). One log per row instead of an exp per
// element; p_max >= 1/cols, so the log is well conditioned.
inline float log_sum_exp_from_softmax(float x_max, float p_max) {
  return x_max - std::log(p_max);
}

}  // namespace capbench::onednn
