// oneDNN's primitives the backend runs, created once per shape and element types and cached:
// matmul (one matrix, or a strided batch), softmax forward and backward, and swish forward and
// backward. One engine and one in-order stream; every call returns when its work is done.
#pragma once

#include <map>
#include <tuple>

#include "backends/onednn/onednn_common.h"

namespace capbench::onednn {

class Primitives {
 public:
  Primitives() : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}
  const dnnl::engine& engine() const { return engine_; }

  // C = alpha · A·B + beta · C (beta = 0: C's contents ignored): one matrix of gemm4.
  void gemm(const Mat& c, const Mat& a, const Mat& b, float alpha, float beta);
  // C = alpha · A·B + beta · C for each of the d0·d1 matrices (bf16 A and B may write an fp32 C).
  void gemm4(const Mat4& c, const Mat4& a, const Mat4& b, float alpha, float beta = 0.0f);
  // dst = softmax(src) over each row of a [rows, cols] buffer of type dt.
  void run_softmax(void* dst, void* src, memory::data_type dt, int64_t rows, int64_t cols);
  void softmax(float* x, int64_t rows, int64_t cols);
  // d <- p ⊙ (d − rowsum(d ⊙ p)): the softmax backward, in place of the incoming gradient (fp32).
  void softmax_backward(float* d, float* p, int64_t rows, int64_t cols);
  // x <- swish(x) = x · sigmoid(x), strided.
  void swish_inplace(const Mat& x);
  // diff <- diff · swish'(src), in place, strided like src.
  void swish_backward(const Mat& diff, const Mat& src);

 private:
  static memory::desc md4(const Mat4& m);
  static memory::desc rows_md(int64_t rows, int64_t cols, memory::data_type dt);

  dnnl::engine engine_;
  dnnl::stream stream_;
  using MatmulKey =
      std::tuple<std::array<int64_t, 4>, std::array<int64_t, 4>, std::array<int64_t, 4>,
                 std::array<int64_t, 4>, std::array<int64_t, 4>, float, float,
                 std::array<memory::data_type, 3>>;
  std::map<MatmulKey, dnnl::matmul> matmuls_;
  std::map<std::tuple<int64_t, int64_t, memory::data_type>, dnnl::softmax_forward> softmax_fwd_;
  std::map<std::pair<int64_t, int64_t>, dnnl::softmax_backward> softmax_bwd_;
  std::map<std::tuple<int64_t, int64_t, int64_t>, dnnl::eltwise_forward> swish_fwd_;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, dnnl::eltwise_backward> swish_bwd_;
};

}  // namespace capbench::onednn
