// Small pieces: statistics, the cost model, the parameter layout, host pacing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "backends/cuda/gemm_layout.h"
#include "backends/onednn/onednn_chunk_shares.h"
#include "backends/op_costs.h"
#include "backends/reference/reference_backend.h"
#include "harness/statistics.h"
#include "harness/suite.h"
#include "workloads/cost_model.h"
#include "workloads/inference.h"
#include "workloads/train_step.h"
#include "workloads/transformer.h"

namespace capbench {
namespace {

// The cuBLAS call of torch:cuda's bf16 matmul, checked without a GPU: a column-major GEMM with
// BLAS's semantics, given column_major_gemm's arguments, must give the row-major product.
TEST(GemmLayout, ColumnMajorCallGivesTheRowMajorProduct) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> dist(-1, 1);
  const int64_t m = 3, n = 5, k = 4;
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true}) {
      std::vector<double> a(m * k), b(k * n);
      for (double& x : a) x = dist(rng);
      for (double& x : b) x = dist(rng);
      // Row-major op(A)[i,p] and op(B)[p,j] as stored.
      auto at = [&](int64_t i, int64_t p) { return trans_a ? a[p * m + i] : a[i * k + p]; };
      auto bt = [&](int64_t p, int64_t j) { return trans_b ? b[j * k + p] : b[p * n + j]; };
      const ColumnMajorGemm g = column_major_gemm(m, n, k, trans_a, trans_b);
      // BLAS: C[i + j·ldc] = Σ_p op(X)[i,p]·op(Y)[p,j], X[r,c] = X[r + c·ld] column-major.
      auto col = [](const std::vector<double>& x, int64_t ld, bool trans, int64_t r, int64_t c) {
        return trans ? x[c + r * ld] : x[r + c * ld];
      };
      std::vector<double> c(m * n, 0.0);
      for (int64_t i = 0; i < g.m; ++i)
        for (int64_t j = 0; j < g.n; ++j)
          for (int64_t p = 0; p < g.k; ++p)
            c[i + j * g.ld_c] +=
                col(b, g.ld_first, g.trans_first, i, p) * col(a, g.ld_second, g.trans_second, p, j);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double expected = 0;
          for (int64_t p = 0; p < k; ++p) expected += at(i, p) * bt(p, j);
          EXPECT_NEAR(c[i * n + j], expected, 1e-12)
              << "trans_a " << trans_a << " trans_b " << trans_b << " at " << i << "," << j;
        }
    }
}

// Shares of 37, 0, 5 and 120 chunks (as many as `team`), worked through by a thread per share
// but `missing` (-1: none), thread 0 sleeping at every chunk when `slow_first`: "" when every
// chunk was taken exactly once, else the first that was not.
std::string chunks_not_taken_once(int team, int missing, bool slow_first) {
  const std::vector<uint32_t> chunks = {37, 0, 5, 120};
  onednn::ChunkShares shares(team);
  std::vector<std::vector<std::atomic<int>>> taken;
  for (int s = 0; s < team; ++s) {
    shares.reset(s, chunks[static_cast<size_t>(s)]);
    taken.emplace_back(chunks[static_cast<size_t>(s)]);
  }
  std::vector<std::thread> threads;
  for (int own = 0; own < team; ++own)
    if (own != missing)
      threads.emplace_back([&, own] {
        shares.run(own, [&](int share, uint32_t chunk) {
          taken[static_cast<size_t>(share)][chunk]++;
          if (slow_first && own == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
        });
      });
  for (std::thread& t : threads) t.join();
  for (int s = 0; s < team; ++s)
    for (uint32_t c = 0; c < chunks[static_cast<size_t>(s)]; ++c)
      if (const int n = taken[static_cast<size_t>(s)][c].load(); n != 1)
        return "share " + std::to_string(s) + ", chunk " + std::to_string(c) + " taken " +
               std::to_string(n) + " times";
  return "";
}

// The one-row products' work split: whoever takes a chunk, every chunk of every share is taken
// exactly once, also when threads run at different speeds and steal from each other (thread 0
// slow, so the others come to steal its chunks).
TEST(ChunkShares, EveryChunkIsTakenOnceByItsOwnerOrAThief) {
  for (int team : {1, 2, 3, 4})
    EXPECT_EQ(chunks_not_taken_once(team, -1, true), "") << "team " << team;
}

// A team the runtime started short (fewer threads than shares): the threads that did start take
// the shares of those that did not, whichever of them is missing.
TEST(ChunkShares, SharesOfThreadsNeverStartedAreTakenByTheOthers) {
  for (int team : {2, 4})
    for (int missing = 0; missing < team; ++missing)
      EXPECT_EQ(chunks_not_taken_once(team, missing, false), "")
          << "team " << team << ", thread " << missing << " never started";
}

TEST(ChunkShares, TheOwnerTakesFromTheFrontAThiefFromTheBack) {
  onednn::ChunkShares shares(2);
  shares.reset(0, 4);
  shares.reset(1, 0);
  uint32_t chunk = 99;
  ASSERT_TRUE(shares.take_front(0, &chunk));
  EXPECT_EQ(chunk, 0u);
  ASSERT_TRUE(shares.take_back(0, &chunk));
  EXPECT_EQ(chunk, 3u);
  ASSERT_TRUE(shares.take_back(0, &chunk));
  EXPECT_EQ(chunk, 2u);
  ASSERT_TRUE(shares.take_front(0, &chunk));
  EXPECT_EQ(chunk, 1u);
  EXPECT_FALSE(shares.take_front(0, &chunk));
  EXPECT_FALSE(shares.take_back(0, &chunk));
  EXPECT_FALSE(shares.take_back(1, &chunk));
}

TEST(Statistics, PercentilesInterpolateLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], q) with its default linear interpolation.
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(percentile(v, 99), 3.97);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4.0);
}

TEST(Statistics, SummaryUsesSampleStandardDeviation) {
  const Stats s = summarize({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(s.n, 8);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_DOUBLE_EQ(s.median, 4.5);
  EXPECT_NEAR(s.stdev, std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_NEAR(s.cv, std::sqrt(32.0 / 7.0) / 5.0, 1e-12);
  EXPECT_DOUBLE_EQ(s.min, 2.0);
  EXPECT_DOUBLE_EQ(s.max, 9.0);
}

TEST(Statistics, VerdictNamesEachReason) {
  const Stats noisy = summarize({1.0, 2.0, 1.0});
  const Validity v = judge(noisy, 3, ValidityRules{5, 0.1});
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.reasons.size(), 2u);  // too few repetitions, median too uncertain
  EXPECT_TRUE(judge(summarize({1.0, 1.01, 0.99, 1.0, 1.0}), 5, ValidityRules{5, 0.1}).valid);
}

// The order statistics of the distribution-free interval: the textbook ranks (2, 9) for 10
// samples and (40, 61) for 100; below 6 samples, the whole range.
TEST(Statistics, MedianIntervalUsesBinomialOrderStatistics) {
  std::vector<double> ten, hundred;
  for (int i = 1; i <= 10; ++i) ten.push_back(i);
  for (int i = 1; i <= 100; ++i) hundred.push_back(101 - i);  // order must not matter
  const Stats a = summarize(ten), b = summarize(hundred), c = summarize({3, 1, 2, 5, 4});
  EXPECT_DOUBLE_EQ(a.median_ci_low, 2);
  EXPECT_DOUBLE_EQ(a.median_ci_high, 9);
  EXPECT_DOUBLE_EQ(b.median_ci_low, 40);
  EXPECT_DOUBLE_EQ(b.median_ci_high, 61);
  EXPECT_DOUBLE_EQ(c.median_ci_low, 1);
  EXPECT_DOUBLE_EQ(c.median_ci_high, 5);
}

// What the verdict is for: a steady series with a few preempted repetitions is valid (its
// outliers counted), one whose typical value splits in two is not, whatever its CV says.
TEST(Statistics, PreemptedStepsAreOutliersWhileASplitSeriesIsNotValid) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> jitter(0, 0.01);
  std::vector<double> steady, split;
  for (int i = 0; i < 160; ++i) steady.push_back(2e-3 * (1 + jitter(rng)));
  for (double spike : {40e-3, 124e-3, 60e-3}) steady.push_back(spike);  // CV far above 1
  for (int i = 0; i < 40; ++i) split.push_back((i % 2 ? 1.0 : 1.3) * (1 + jitter(rng)));
  const Stats s = summarize(steady), t = summarize(split);
  EXPECT_GT(s.cv, 1.0);
  EXPECT_EQ(s.outliers, 3);
  EXPECT_TRUE(judge(s, 5, ValidityRules{5, 0.05}).valid);
  EXPECT_LT(t.cv, 0.15);
  EXPECT_FALSE(judge(t, 40, ValidityRules{5, 0.05}).valid);
}

ModelConfig toy() {
  ModelConfig c;
  c.d_model = 8;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.d_ff = 12;
  c.vocab = 10;
  c.max_seq = 16;
  return c;
}

TEST(ParamLayout, SpecsTileTheFlatBufferExactly) {
  const ModelConfig cfg = toy();
  int64_t expected_offset = 0;
  for (const ParamSpec& s : param_specs(cfg)) {
    EXPECT_EQ(s.offset, expected_offset) << s.name;
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    expected_offset += n;
  }
  EXPECT_EQ(expected_offset, param_count(cfg));
  // Hand count: 2·V·C + L·(2C + 2·C·C + 2·C·kv + 3·F·C) + C, kv = 2 heads × 2 dims.
  EXPECT_EQ(param_count(cfg), 2 * 10 * 8 + 3 * (16 + 128 + 64 + 288) + 8);
  EXPECT_EQ(matmul_param_count(cfg), 3 * (128 + 64 + 288) + 80);
}

TEST(ParamLayout, InitialValuesAreDeterministicAndScaled) {
  const ModelConfig cfg = toy();
  const std::vector<float> a = initial_params(cfg, 5), b = initial_params(cfg, 5);
  const std::vector<float> c = initial_params(cfg, 6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  const ParamSpec norm = param_specs(cfg)[1];  // layers.0.attn_norm
  EXPECT_EQ(norm.name, "layers.0.attn_norm");
  EXPECT_EQ(a[static_cast<size_t>(norm.offset)], 1.0f);
  double ss = 0;
  for (int64_t i = 0; i < 80; ++i) ss += a[static_cast<size_t>(i)] * a[static_cast<size_t>(i)];
  EXPECT_NEAR(std::sqrt(ss / 80), 0.02, 0.006);  // embedding std 0.02
}

// The footprint a run checks before it allocates is what the workload then allocates, to the
// byte: a table that drifts from the allocation would let an over-large run through.
TEST(Footprint, EstimateEqualsWhatTheWorkloadAllocates) {
  ReferenceBackend be;
  ModelConfig cfg = toy();
  cfg.n_kv_heads = 1;  // grouped-query: kv_dim differs from q_dim
  for (DType dtype : {DType::f32, DType::bf16}) {
    TrainStep train(be, cfg, 2, 5, 1, AdamWArgs{}, dtype);
    EXPECT_EQ(TrainStep::footprint_bytes(cfg, 2, 5, dtype),
              static_cast<double>(train.memory_bytes()))
        << dtype_name(dtype);
    for (int64_t decode : {0, 3}) {
      Inference infer(be, cfg, 3, 4, decode, 1, dtype);
      EXPECT_EQ(Inference::footprint_bytes(cfg, 3, 4, decode, dtype),
                static_cast<double>(infer.memory_bytes()))
          << dtype_name(dtype) << " decode " << decode;
    }
  }
}

// Initialisation runs on many threads (a 7B model's would take minutes on one) and gives the
// same values whatever their number: each value depends on its index and the seed alone.
TEST(ParamLayout, InitialValuesDoNotDependOnTheThreadCount) {
  ModelConfig cfg = toy();
  cfg.d_model = 512;  // wq of 512 x 512: more than one chunk per thread
  cfg.n_heads = 8;
  const std::vector<ParamSpec> specs = param_specs(cfg);
  const ParamSpec& wq = specs.at(2);
  ASSERT_EQ(wq.name, "layers.0.wq");
  const int64_t n = 512 * 512;
  std::vector<float> one(static_cast<size_t>(n)), three(one.size()), all(one.size());
  init_values(cfg, wq, 9, one.data(), n, 1);
  init_values(cfg, wq, 9, three.data(), n, 3);
  init_values(cfg, wq, 9, all.data(), n, 0);
  EXPECT_EQ(one, three);
  EXPECT_EQ(one, all);
  const std::vector<float> whole = initial_params(cfg, 9);
  EXPECT_TRUE(std::equal(one.begin(), one.end(), whole.begin() + wq.offset));
  // Zero mean and the initialiser's standard deviation (0.02 for wq), close to normal: about
  // two thirds within one standard deviation (a normal: 68.3%).
  double sum = 0, sum_sq = 0, within = 0;
  const double sd = 0.02;
  for (float v : one) {
    sum += v;
    sum_sq += static_cast<double>(v) * v;
    within += std::abs(v) < sd;
  }
  EXPECT_NEAR(sum / static_cast<double>(n), 0.0, 0.01 * sd);
  EXPECT_NEAR(std::sqrt(sum_sq / static_cast<double>(n)), sd, 0.01 * sd);
  EXPECT_NEAR(within / static_cast<double>(n), 0.67, 0.015);
}

TEST(CostModel, MatmulCountsTwoFlopsPerMultiplyAdd) {
  const Tensor c(nullptr, DType::f32, {6, 5}), a(nullptr, DType::f32, {7, 6}),
      b(nullptr, DType::f32, {5, 7});
  const OpCost cost = matmul_cost(c, a, b, MatmulArgs{true, true, 1, 0});
  EXPECT_DOUBLE_EQ(cost.flops, 2.0 * 6 * 5 * 7);
  EXPECT_DOUBLE_EQ(cost.bytes, 4.0 * (42 + 35 + 30));
  const OpCost acc = matmul_cost(c, a, b, MatmulArgs{true, true, 1, 1});
  EXPECT_DOUBLE_EQ(acc.bytes, 4.0 * (42 + 35 + 60));  // C read and written
}

TEST(CostModel, CausalAttentionVisitsHalfThePairs) {
  const Tensor q(nullptr, DType::f32, {2, 8, 4, 16}), k(nullptr, DType::f32, {2, 8, 2, 16});
  const Tensor lse(nullptr, DType::f32, {2, 4, 8});
  const OpCost causal = attention_fwd_cost(q, lse, q, k, k, AttentionArgs{true});
  const OpCost full = attention_fwd_cost(q, lse, q, k, k, AttentionArgs{false});
  EXPECT_DOUBLE_EQ(causal.flops, 4.0 * 2 * 4 * (8 * 9 / 2) * 16);
  EXPECT_DOUBLE_EQ(full.flops, 4.0 * 2 * 4 * 64 * 16);
  // Decoding one token at position 8 reads 9 cache positions.
  const Tensor q1(nullptr, DType::f32, {2, 1, 4, 16}), cache(nullptr, DType::f32, {2, 32, 2, 16});
  const OpCost dec = attention_decode_cost(q1, q1, cache, cache, DecodeArgs{8});
  EXPECT_DOUBLE_EQ(dec.flops, 4.0 * 2 * 4 * 9 * 16);
  EXPECT_DOUBLE_EQ(dec.bytes, 2 * q1.bytes() + 2.0 * 2 * 9 * 2 * 16 * 4);
}

TEST(CostModel, RooflinePicksTheBindingRate) {
  const Roofline compute = roofline({1e12, 1e6}, 1e12, 1e9);
  EXPECT_TRUE(compute.compute_bound);
  EXPECT_DOUBLE_EQ(compute.seconds, 1.0);
  const Roofline memory = roofline({1e6, 2e9}, 1e12, 1e9);
  EXPECT_FALSE(memory.compute_bound);
  EXPECT_DOUBLE_EQ(memory.seconds, 2.0);
}

TEST(CostModel, ModelFlopsFollowSixNPlusAttention) {
  const ModelConfig cfg = toy();
  const double n = static_cast<double>(matmul_param_count(cfg));
  EXPECT_DOUBLE_EQ(train_step_model_flops(cfg, 2, 5),
                   10 * (6 * n + 6.0 * 3 * 8 * 6));  // q_dim 8, T+1 = 6
  EXPECT_DOUBLE_EQ(forward_model_flops(cfg, 1, 1, 4), 2 * n + 4.0 * 3 * 8 * 5);
}

TEST(HostPacing, PacedOpLastsAtLeastItsFloor) {
  ReferenceBackend be;
  const double t0 = host_seconds_now();
  be.stamp(3);
  be.pace(3, PaceRule{0.02, 1.0});
  EXPECT_GE(host_seconds_now() - t0, 0.02);
}

TEST(HostPacing, DilateStretchesTheElapsedTime) {
  ReferenceBackend be;
  be.stamp(0);
  const double t0 = host_seconds_now();
  while (host_seconds_now() - t0 < 0.01) {
  }
  be.pace(0, PaceRule{0.0, 3.0});
  EXPECT_GE(host_seconds_now() - t0, 0.03);
}

TEST(SuiteExpansion, CpuMeansEveryNonOracleCpuBackend) {
  const std::string dir = default_config_dir();
  const Suite s = load_suite(dir + "/suites/quick.json", SuiteOverrides{}, dir, builtin_registry());
  size_t oracle_runs = 0;
  for (const RunSpec& r : s.runs) {
    if (r.backend == "reference") {
      ++oracle_runs;
      EXPECT_EQ(r.model.name, "tiny") << "the oracle runs the tiny model only";
    }
    if (r.model.name == "small") {
      EXPECT_NE(r.backend, "reference");
    }
  }
  EXPECT_EQ(oracle_runs, 2u);
}

// quick.json's three inference entries and its emulated one, all forced onto one backend, model
// and size and made native: one experiment, run once.
TEST(SuiteExpansion, OverridesThatMakeEntriesIdenticalRunThemOnce) {
  const std::string dir = default_config_dir();
  SuiteOverrides ov;
  ov.backend = "reference";
  ov.model = "tiny";
  ov.workload = "inference";
  ov.sizes = {{"batch", 2}, {"prompt", 16}, {"decode_steps", 4}};
  ov.emulate = "none";
  const Suite s = load_suite(dir + "/suites/quick.json", ov, dir, builtin_registry());
  ASSERT_EQ(s.runs.size(), 1u);
  EXPECT_EQ(s.runs[0].shape.batch, 2);
  // Native, and the H20 as the plain entries ask (absolute, dilate) and as the emulated entry
  // does (relative to the H100, shift): three experiments.
  ov.emulate = "none,h20";
  EXPECT_EQ(load_suite(dir + "/suites/quick.json", ov, dir, builtin_registry()).runs.size(), 3u);
}

}  // namespace
}  // namespace capbench
