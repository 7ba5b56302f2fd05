#include "backends/onednn/onednn_primitives.h"

#include <unordered_map>

namespace capbench::onednn {

// C = alpha · A·B + beta · C (beta = 0: C's contents ignored): one matrix of gemm4.
void Primitives::gemm(const Mat& c, const Mat& a, const Mat& b, float alpha, float beta) {
  auto as4 = [](const Mat& m) {
    return Mat4{m.data,
                m.dt,
                {1, 1, m.rows, m.cols},
                {m.rows * m.row_stride, m.rows * m.row_stride, m.row_stride, m.col_stride}};
  };
  gemm4(as4(c), as4(a), as4(b), alpha, beta);
}

memory::desc Primitives::md4(const Mat4& m) {
  return memory::desc({m.d[0], m.d[1], m.d[2], m.d[3]}, m.dt, {m.s[0], m.s[1], m.s[2], m.s[3]});
}

// C = alpha · A·B + beta · C for each of the d0·d1 matrices; primitives cached per shape and
// element types (bf16 A and B may write an fp32 C).
void Primitives::gemm4(const Mat4& c, const Mat4& a, const Mat4& b, float alpha, float beta) {
  const MatmulKey key{a.d, b.d, a.s, b.s, c.s, alpha, beta, {a.dt, b.dt, c.dt}};
  auto it = matmuls_.find(key);
  if (it == matmuls_.end()) {
    dnnl::primitive_attr attr;
    dnnl::post_ops ops;
    if (beta != 0.0f) ops.append_sum(beta);
    attr.set_post_ops(ops);
#if DNNL_VERSION_MAJOR >= 3
    if (alpha != 1.0f) attr.set_scales_mask(DNNL_ARG_WEIGHTS, 0);
    const dnnl::matmul::primitive_desc pd(engine_, md4(a), md4(b), md4(c), attr);
#else
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md4(a), md4(b), md4(c)), attr,
                                          engine_);
#endif
    it = matmuls_.emplace(key, dnnl::matmul(pd)).first;
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(md4(a), engine_, a.data)},
                                       {DNNL_ARG_WEIGHTS, memory(md4(b), engine_, b.data)},
                                       {DNNL_ARG_DST, memory(md4(c), engine_, c.data)}};
#if DNNL_VERSION_MAJOR >= 3
  float alpha_value = alpha;
  if (alpha != 1.0f)
    args.emplace(
        DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS,
        memory({{1}, memory::data_type::f32, memory::format_tag::x}, engine_, &alpha_value));
#endif
  it->second.execute(stream_, args);
  stream_.wait();
}

memory::desc Primitives::rows_md(int64_t rows, int64_t cols, memory::data_type dt) {
  return memory::desc({rows, cols}, dt, memory::format_tag::ab);
}

// dst = softmax(src) over each row of a [rows, cols] buffer of type dt.
void Primitives::run_softmax(void* dst, void* src, memory::data_type dt, int64_t rows,
                             int64_t cols) {
  const auto key = std::make_tuple(rows, cols, dt);
  const memory::desc m = rows_md(rows, cols, dt);
  auto it = softmax_fwd_.find(key);
  if (it == softmax_fwd_.end()) {
#if DNNL_VERSION_MAJOR >= 3
    const dnnl::softmax_forward::primitive_desc pd(engine_, dnnl::prop_kind::forward_training,
                                                   dnnl::algorithm::softmax_accurate, m, m, 1);
#else
    const dnnl::softmax_forward::primitive_desc pd(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_training, m, 1), engine_);
#endif
    it = softmax_fwd_.emplace(key, dnnl::softmax_forward(pd)).first;
  }
  it->second.execute(
      stream_, {{DNNL_ARG_SRC, memory(m, engine_, src)}, {DNNL_ARG_DST, memory(m, engine_, dst)}});
  stream_.wait();
}
void Primitives::softmax(float* x, int64_t rows, int64_t cols) {
  run_softmax(x, x, memory::data_type::f32, rows, cols);
}

// d ← p ⊙ (d − rowsum(d ⊙ p)): the softmax backward, in place of the incoming gradient (fp32).
void Primitives::softmax_backward(float* d, float* p, int64_t rows, int64_t cols) {
  const auto key = std::make_pair(rows, cols);
  const memory::desc m = rows_md(rows, cols, memory::data_type::f32);
  auto it = softmax_bwd_.find(key);
  if (it == softmax_bwd_.end()) {
#if DNNL_VERSION_MAJOR >= 3
    const dnnl::softmax_forward::primitive_desc hint(engine_, dnnl::prop_kind::forward_training,
                                                     dnnl::algorithm::softmax_accurate, m, m, 1);
    const dnnl::softmax_backward::primitive_desc pd(engine_, dnnl::algorithm::softmax_accurate, m,
                                                    m, m, 1, hint);
#else
    const dnnl::softmax_forward::primitive_desc hint(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_training, m, 1), engine_);
    const dnnl::softmax_backward::primitive_desc pd(dnnl::softmax_backward::desc(m, m, 1), engine_,
                                                    hint);
#endif
    it = softmax_bwd_.emplace(key, dnnl::softmax_backward(pd)).first;
  }
  it->second.execute(stream_, {{DNNL_ARG_DST, memory(m, engine_, p)},
                               {DNNL_ARG_DIFF_DST, memory(m, engine_, d)},
                               {DNNL_ARG_DIFF_SRC, memory(m, engine_, d)}});
  stream_.wait();
}

// x ← swish(x) = x · sigmoid(x), strided.
void Primitives::swish_inplace(const Mat& x) {
  const auto key = std::make_tuple(x.rows, x.cols, x.row_stride);
  auto it = swish_fwd_.find(key);
  if (it == swish_fwd_.end()) {
#if DNNL_VERSION_MAJOR >= 3
    const dnnl::eltwise_forward::primitive_desc pd(engine_, dnnl::prop_kind::forward_training,
                                                   dnnl::algorithm::eltwise_swish, md(x), md(x),
                                                   1.0f);
#else
    const dnnl::eltwise_forward::primitive_desc pd(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training,
                                    dnnl::algorithm::eltwise_swish, md(x), 1.0f),
        engine_);
#endif
    it = swish_fwd_.emplace(key, dnnl::eltwise_forward(pd)).first;
  }
  const memory m(md(x), engine_, x.data);
  it->second.execute(stream_, {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
  stream_.wait();
}

// diff ← diff · swish'(src), in place, strided like src.
void Primitives::swish_backward(const Mat& diff, const Mat& src) {
  const auto key = std::make_tuple(src.rows, src.cols, src.row_stride, diff.row_stride);
  auto it = swish_bwd_.find(key);
  if (it == swish_bwd_.end()) {
#if DNNL_VERSION_MAJOR >= 3
    const dnnl::eltwise_forward::primitive_desc hint(engine_, dnnl::prop_kind::forward_training,
                                                     dnnl::algorithm::eltwise_swish, md(src),
                                                     md(src), 1.0f);
    const dnnl::eltwise_backward::primitive_desc pd(engine_, dnnl::algorithm::eltwise_swish,
                                                    md(diff), md(diff), md(src), 1.0f, hint);
#else
    const dnnl::eltwise_forward::primitive_desc hint(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training,
                                    dnnl::algorithm::eltwise_swish, md(src), 1.0f),
        engine_);
    const dnnl::eltwise_backward::primitive_desc pd(
        dnnl::eltwise_backward::desc(dnnl::algorithm::eltwise_swish, md(diff), md(src), 1.0f),
        engine_, hint);
#endif
    it = swish_bwd_.emplace(key, dnnl::eltwise_backward(pd)).first;
  }
  it->second.execute(stream_, {{DNNL_ARG_SRC, memory(md(src), engine_, src.data)},
                               {DNNL_ARG_DIFF_DST, memory(md(diff), engine_, diff.data)},
                               {DNNL_ARG_DIFF_SRC, memory(md(diff), engine_, diff.data)}});
  stream_.wait();
}

}  // namespace capbench::onednn
