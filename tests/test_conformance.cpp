// Conformance: every op of every backend of this build, forward and backward, against the
// reference backend on fresh random inputs of several shapes (odd sizes included). Outputs start
// as the same random garbage on both sides, so a backend that accumulates where it should
// overwrite (or the reverse) fails too. Each backend runs at fp32 and, where it supports it, at
// bf16: the oracle then gets the same bf16-rounded inputs in fp32 and the bf16 tolerance applies.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backends/reference/reference_backend.h"
#include "test_util.h"

namespace capbench::testing {
namespace {

struct BackendAtDtype {
  std::string backend;
  DType dtype;
};

// GoogleTest prints parameters in test names and failures: "onednn at bf16", not raw bytes.
void PrintTo(const BackendAtDtype& p, std::ostream* os) {
  *os << p.backend << " at " << dtype_name(p.dtype);
}

std::vector<BackendAtDtype> backends_at_dtypes() {
  std::vector<BackendAtDtype> out;
  for (const std::string& name : backends_under_test())
    for (DType dt : {DType::f32, DType::bf16}) out.push_back({name, dt});
  return out;
}

class Conformance : public ::testing::TestWithParam<BackendAtDtype> {
 protected:
  void SetUp() override {
    std::string why;
    test_ = make_backend_or_why(GetParam().backend, &why);
    if (!test_) GTEST_SKIP() << why;
    const Support s = test_->supports(OpId::matmul, dtype());
    if (!s.ok) GTEST_SKIP() << name() << " is not supported: " << s.reason;
  }
  DType dtype() const { return GetParam().dtype; }
  std::string name() const { return GetParam().backend + " at " + dtype_name(dtype()); }
  double tol() const { return dtype() == DType::f32 ? kTolF32 : kTolBF16; }
  Mirror make(DType dtype, std::initializer_list<int64_t> dims) {
    return Mirror(ref_, *test_, dtype, dims);
  }
  // At the compute dtype on the tested side (fp32 on the oracle's).
  Mirror random(std::initializer_list<int64_t> dims, float scale = 1.0f) {
    Mirror m(ref_, *test_, DType::f32, dtype(), dims);
    m.randomize(rng_, scale);
    return m;
  }
  // fp32 on both sides whatever the compute dtype: rstd, lse, losses, weight gradients.
  Mirror random_f32(std::initializer_list<int64_t> dims, float scale = 1.0f) {
    Mirror m = make(DType::f32, dims);
    m.randomize(rng_, scale);
    return m;
  }
  Mirror tokens(std::initializer_list<int64_t> dims, int64_t vocab) {
    Mirror m = make(DType::i32, dims);
    std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(vocab - 1));
    std::vector<int32_t> v(static_cast<size_t>(m.numel()));
    for (int32_t& x : v) x = dist(rng_);
    m.set_ints(v);
    return m;
  }
  // The test backend's contents of m against the oracle's: normalised error within tol, and the
  // oracle really wrote its output (it started as the same random garbage on both sides).
  // rms_floor: see normalized_error; raise it where the exact answer can be zero at O(1) scale.
  ::testing::AssertionResult close_to_oracle(const Mirror& m, const std::string& what,
                                             double rms_floor = 1e-3) {
    const std::vector<float> oracle = m.host_a();
    if (oracle == m.initial())
      return ::testing::AssertionFailure() << what << ": the oracle left its output untouched";
    const double err = normalized_error(m.host_b(), oracle, rms_floor);
    if (err > tol())
      return ::testing::AssertionFailure()
             << name() << " " << what << ": normalised error " << err << " above " << tol();
    return ::testing::AssertionSuccess();
  }

  ReferenceBackend ref_;
  std::unique_ptr<Backend> test_;
  std::mt19937_64 rng_{std::random_device{}()};
};

struct AttnShape {
  int64_t b, t, h, k, d;
};
const AttnShape kAttnShapes[] = {
    {1, 1, 4, 4, 8}, {2, 5, 4, 2, 6}, {1, 17, 6, 1, 10}, {3, 9, 8, 4, 16}};

TEST_P(Conformance, Matmul) {
  // m ≤ 8 with k beyond one vector and a remainder: the one-row products of decode steps, which
  // a backend may run through its own kernel (split among threads when n·k is large enough).
  const int64_t dims[][3] = {{1, 1, 1},    {7, 5, 3},       {33, 17, 65},
                             {64, 48, 96}, {1, 1000, 1063}, {8, 300, 200}};
  for (const auto& d : dims)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (float beta : {0.0f, 1.0f}) {
          const int64_t m = d[0], n = d[1], k = d[2];
          Mirror a = ta ? random({k, m}) : random({m, k});
          Mirror b = tb ? random({n, k}) : random({k, n});
          const MatmulArgs args{ta == 1, tb == 1, beta == 0.0f ? 1.0f : 0.5f, beta};
          const std::string what = "matmul " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                                   std::to_string(k) + " ta=" + std::to_string(ta) +
                                   " tb=" + std::to_string(tb) + " beta=" + std::to_string(beta);
          Mirror c = random({m, n});
          ref_.matmul(c.a(), a.a(), b.a(), args);
          test_->matmul(c.b(), a.b(), b.b(), args);
          EXPECT_TRUE(close_to_oracle(c, what));
          if (dtype() != DType::f32) {  // weight gradients: fp32 C from low-precision A, B
            Mirror c32 = random_f32({m, n});
            ref_.matmul(c32.a(), a.a(), b.a(), args);
            test_->matmul(c32.b(), a.b(), b.b(), args);
            EXPECT_TRUE(close_to_oracle(c32, what + " into fp32"));
          }
        }
}

TEST_P(Conformance, EmbeddingForwardBackward) {
  for (auto [b, t, v, c] : {std::array<int64_t, 4>{1, 1, 5, 8}, {2, 7, 11, 13}, {3, 16, 50, 32}}) {
    Mirror tok = tokens({b, t}, v);
    Mirror table = random({v, c});
    Mirror out = random({b, t, c});
    ref_.embedding_fwd(out.a(), tok.a(), table.a());
    test_->embedding_fwd(out.b(), tok.b(), table.b());
    EXPECT_TRUE(close_to_oracle(out, "embedding_fwd"));
    Mirror dout = random({b, t, c});
    Mirror dtable = random_f32({v, c});  // a weight gradient; accumulates: starts non-zero
    ref_.embedding_bwd(dtable.a(), dout.a(), tok.a());
    test_->embedding_bwd(dtable.b(), dout.b(), tok.b());
    EXPECT_TRUE(close_to_oracle(dtable, "embedding_bwd"));
  }
}

TEST_P(Conformance, RmsNormForwardBackward) {
  for (auto [n, c] : {std::array<int64_t, 2>{1, 8}, {7, 37}, {33, 64}}) {
    Mirror in = random({n, c});
    Mirror w = random({c});
    Mirror out = random({n, c});
    Mirror rstd = random_f32({n});
    ref_.rmsnorm_fwd(out.a(), rstd.a(), in.a(), w.a(), RmsNormArgs{1e-5f});
    test_->rmsnorm_fwd(out.b(), rstd.b(), in.b(), w.b(), RmsNormArgs{1e-5f});
    EXPECT_TRUE(close_to_oracle(out, "rmsnorm_fwd out"));
    EXPECT_TRUE(close_to_oracle(rstd, "rmsnorm_fwd rstd"));
    Mirror dout = random({n, c});
    Mirror din = random({n, c});  // both gradients accumulate
    Mirror dw = random_f32({c});
    ref_.rmsnorm_bwd(din.a(), dw.a(), dout.a(), in.a(), w.a(), rstd.a());
    test_->rmsnorm_bwd(din.b(), dw.b(), dout.b(), in.b(), w.b(), rstd.b());
    EXPECT_TRUE(close_to_oracle(din, "rmsnorm_bwd din"));
    EXPECT_TRUE(close_to_oracle(dw, "rmsnorm_bwd dweight"));
  }
}

TEST_P(Conformance, RopeForwardBackward) {
  for (const AttnShape& s : kAttnShapes)
    for (int64_t pos : {0, 3, 1000}) {
      const RopeArgs args{pos, 10000.0f};
      Mirror in = random({s.b, s.t, s.h, s.d});
      Mirror out = random({s.b, s.t, s.h, s.d});
      ref_.rope_fwd(out.a(), in.a(), args);
      test_->rope_fwd(out.b(), in.b(), args);
      EXPECT_TRUE(close_to_oracle(out, "rope_fwd pos " + std::to_string(pos)));
      Mirror din = random({s.b, s.t, s.h, s.d});
      ref_.rope_bwd(din.a(), out.a(), args);
      test_->rope_bwd(din.b(), out.b(), args);
      EXPECT_TRUE(close_to_oracle(din, "rope_bwd pos " + std::to_string(pos)));
    }
}

TEST_P(Conformance, AttentionForwardBackward) {
  for (const AttnShape& s : kAttnShapes) {
    const std::string shape = " b" + std::to_string(s.b) + " t" + std::to_string(s.t) + " h" +
                              std::to_string(s.h) + "/" + std::to_string(s.k) + " d" +
                              std::to_string(s.d);
    Mirror q = random({s.b, s.t, s.h, s.d});
    Mirror k = random({s.b, s.t, s.k, s.d});
    Mirror v = random({s.b, s.t, s.k, s.d});
    Mirror out = random({s.b, s.t, s.h, s.d});
    Mirror lse = random_f32({s.b, s.h, s.t});
    ref_.attention_fwd(out.a(), lse.a(), q.a(), k.a(), v.a(), AttentionArgs{});
    test_->attention_fwd(out.b(), lse.b(), q.b(), k.b(), v.b(), AttentionArgs{});
    EXPECT_TRUE(close_to_oracle(out, "attention_fwd out" + shape));
    EXPECT_TRUE(close_to_oracle(lse, "attention_fwd lse" + shape));
    Mirror dout = random({s.b, s.t, s.h, s.d});
    Mirror dq = random({s.b, s.t, s.h, s.d});
    Mirror dk = random({s.b, s.t, s.k, s.d});
    Mirror dv = random({s.b, s.t, s.k, s.d});
    // Both sides use the oracle's saved out and lse, so the backward is tested on its own.
    out.set(out.host_a());
    lse.set(lse.host_a());
    ref_.attention_bwd(dq.a(), dk.a(), dv.a(), dout.a(), q.a(), k.a(), v.a(), out.a(), lse.a(),
                       AttentionArgs{});
    test_->attention_bwd(dq.b(), dk.b(), dv.b(), dout.b(), q.b(), k.b(), v.b(), out.b(), lse.b(),
                         AttentionArgs{});
    // With one key (t = 1) the softmax is exactly 1 and dq, dk are exactly zero; the oracle gets
    // ~1e-7 from its fp32 lse. Their natural scale is O(1) (inputs are N(0, 1)), so the floor
    // is 1 there.
    EXPECT_TRUE(close_to_oracle(dq, "attention_bwd dq" + shape, 1.0));
    EXPECT_TRUE(close_to_oracle(dk, "attention_bwd dk" + shape, 1.0));
    EXPECT_TRUE(close_to_oracle(dv, "attention_bwd dv" + shape));
  }
}

TEST_P(Conformance, KvAppendAndDecode) {
  std::vector<AttnShape> shapes(std::begin(kAttnShapes), std::end(kAttnShapes));
  shapes.push_back({2, 1, 8, 2, 64});  // a decode step's shape: head dim of several vectors
  // One row with enough heads that a backend may split its positions among threads, down to
  // one or two positions (some threads then get none).
  shapes.push_back({1, 1, 16, 8, 64});
  shapes.push_back({1, 1, 512, 8, 64});
  for (const AttnShape& s : shapes)
    for (int64_t pos : {0, 1, 6, 41}) {
      const int64_t cap = pos + s.t + 2;
      Mirror kc = random({s.b, cap, s.k, s.d});
      Mirror vc = random({s.b, cap, s.k, s.d});
      Mirror k = random({s.b, s.t, s.k, s.d});
      Mirror v = random({s.b, s.t, s.k, s.d});
      ref_.kv_append(kc.a(), vc.a(), k.a(), v.a(), KvAppendArgs{pos});
      test_->kv_append(kc.b(), vc.b(), k.b(), v.b(), KvAppendArgs{pos});
      EXPECT_TRUE(close_to_oracle(kc, "kv_append k"));
      EXPECT_TRUE(close_to_oracle(vc, "kv_append v"));
      Mirror q = random({s.b, s.t, s.h, s.d});
      Mirror out = random({s.b, s.t, s.h, s.d});
      ref_.attention_decode(out.a(), q.a(), kc.a(), vc.a(), DecodeArgs{pos});
      test_->attention_decode(out.b(), q.b(), kc.b(), vc.b(), DecodeArgs{pos});
      EXPECT_TRUE(close_to_oracle(
          out, "attention_decode t" + std::to_string(s.t) + " pos " + std::to_string(pos)));
    }
}

TEST_P(Conformance, SwigluForwardBackward) {
  for (auto [n, f] : {std::array<int64_t, 2>{1, 4}, {9, 23}, {32, 176}}) {
    Mirror gu = random({n, 2 * f}, 2.0f);
    Mirror out = random({n, f});
    ref_.swiglu_fwd(out.a(), gu.a());
    test_->swiglu_fwd(out.b(), gu.b());
    EXPECT_TRUE(close_to_oracle(out, "swiglu_fwd"));
    Mirror dout = random({n, f});
    Mirror dgu = random({n, 2 * f});
    ref_.swiglu_bwd(dgu.a(), dout.a(), gu.a());
    test_->swiglu_bwd(dgu.b(), dout.b(), gu.b());
    EXPECT_TRUE(close_to_oracle(dgu, "swiglu_bwd"));
  }
}

TEST_P(Conformance, Add) {
  for (int64_t n : {1, 17, 1000}) {
    Mirror a = random({n}), b = random({n}), out = random({n});
    ref_.add(out.a(), a.a(), b.a());
    test_->add(out.b(), a.b(), b.b());
    EXPECT_TRUE(close_to_oracle(out, "add"));
  }
}

TEST_P(Conformance, CrossEntropyForwardBackward) {
  for (auto [n, v] : {std::array<int64_t, 2>{1, 3}, {13, 101}, {32, 256}}) {
    Mirror logits = random({n, v}, 3.0f);
    Mirror tgt = tokens({n}, v);
    Mirror losses = random_f32({n});
    Mirror dlogits = random({n, v});
    const CrossEntropyArgs args{1.0f / static_cast<float>(n)};
    ref_.cross_entropy_fwd_bwd(losses.a(), dlogits.a(), logits.a(), tgt.a(), args);
    test_->cross_entropy_fwd_bwd(losses.b(), dlogits.b(), logits.b(), tgt.b(), args);
    // A confident row (logits at scale 3 over a small vocab) has a loss near 0 and dlogits near
    // 0, where fp32 rounding of the log-sum-exp (1e-7 of its O(1) size) is all there is; the
    // floors are the natural scales: O(1) for a loss, 1/n spread over a row for dlogits.
    EXPECT_TRUE(close_to_oracle(losses, "cross_entropy losses", 1.0));
    EXPECT_TRUE(close_to_oracle(dlogits, "cross_entropy dlogits",
                                0.1 / static_cast<double>(n) / std::sqrt(static_cast<double>(v))));
  }
}

TEST_P(Conformance, AdamW) {
  for (int64_t n : {1, 33, 4097})
    for (int64_t step : {1, 10})
      for (bool step_on_device : {false, true}) {
        // AdamW runs on the fp32 master weights, gradients and moments at every compute dtype.
        Mirror p = random_f32({n}), g = random_f32({n}, 0.1f), m = random_f32({n}, 0.01f);
        Mirror v = make(DType::f32, {n});
        std::vector<float> vh = random_floats(rng_, n, 0.01f);
        for (float& x : vh) x = x * x;  // second moments are non-negative
        v.set(vh);
        AdamWArgs args{1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, step, Tensor{}};
        // A step count in device memory (what a replayed graph reads) overrides `step`, which is
        // set far off so that a backend reading it instead would be caught.
        Mirror counter = make(DType::f32, {1});
        counter.set({static_cast<float>(step)});
        if (step_on_device) args.step = step + 1000;
        AdamWArgs ref_args = args, test_args = args;
        if (step_on_device) ref_args.step_tensor = counter.a(), test_args.step_tensor = counter.b();
        ref_.adamw(p.a(), g.a(), m.a(), v.a(), ref_args);
        test_->adamw(p.b(), g.b(), m.b(), v.b(), test_args);
        EXPECT_TRUE(close_to_oracle(p, "adamw params"));
        EXPECT_TRUE(close_to_oracle(m, "adamw m"));
        EXPECT_TRUE(close_to_oracle(v, "adamw v"));
      }
}

TEST_P(Conformance, Convert) {
  for (int64_t n : {1, 17, 4099}) {
    // fp32 -> compute dtype -> fp32, the oracle converting too (convert is its one bf16 op).
    // Rounding to nearest even is defined to the bit, so both directions must match exactly.
    Mirror wide = random_f32({n});
    // Outputs start far from any result: random garbage at bf16 on both sides could equal the
    // converted value by chance (one element in a few hundred), which the untouched check
    // would take for an oracle that wrote nothing.
    std::vector<float> garbage = wide.initial();
    for (float& x : garbage) x += 1000.0f;
    Mirror narrow = make(dtype(), {n});
    narrow.set(garbage);
    ref_.convert(narrow.a(), wide.a());
    test_->convert(narrow.b(), wide.b());
    EXPECT_TRUE(close_to_oracle(narrow, "convert to " + std::string(dtype_name(dtype()))));
    EXPECT_EQ(narrow.host_b(), narrow.host_a());
    Mirror back = make(DType::f32, {n});
    back.set(garbage);
    ref_.convert(back.a(), narrow.a());
    test_->convert(back.b(), narrow.b());
    EXPECT_TRUE(close_to_oracle(back, "convert to fp32"));
    EXPECT_EQ(back.host_b(), back.host_a());
  }
}

TEST_P(Conformance, CapabilityQueryAnswersEveryOp) {
  // Every op must give a definite answer for fp32, with a reason whenever it says no.
  for (int op = 0; op < kOpCount; ++op)
    for (DType dt : {DType::f32, DType::bf16}) {
      const Support s = test_->supports(static_cast<OpId>(op), dt);
      if (!s.ok) {
        EXPECT_FALSE(s.reason.empty()) << op_name(static_cast<OpId>(op));
      }
      if (dt == DType::f32) {
        EXPECT_TRUE(s.ok) << op_name(static_cast<OpId>(op));
      }
    }
}

std::string backend_dtype_test_name(const ::testing::TestParamInfo<BackendAtDtype>& info) {
  return backend_test_name({info.param.backend, info.index}) + "_" + dtype_name(info.param.dtype);
}

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::ValuesIn(backends_at_dtypes()),
                         backend_dtype_test_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Conformance);

TEST(ConformanceCoverage, SomeBackendIsTestedAgainstTheOracle) {
  size_t runnable = 0;
  for (const BackendEntry& e : builtin_registry().entries()) runnable += !e.oracle;
  if (runnable == 0)
    GTEST_SKIP() << "this build has only the reference backend (libtorch not found): no "
                    "conformance to check";
  EXPECT_NE(builtin_registry().find("reference"), nullptr);
}

}  // namespace
}  // namespace capbench::testing
