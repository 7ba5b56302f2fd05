// The throttle on the CPU: pacing rules, emulation plans (limited_by), device profile
// validation, and emulated runs through the CLI. Timing checks are lower bounds only (a paced op
// lasts at least ...), which a busy machine cannot break.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backends/comm/communicator.h"
#include "backends/reference/reference_backend.h"
#include "backends/throttle/throttle_backend.h"
#include "harness/calibrate.h"
#include "harness/config_files.h"
#include "harness/emulation.h"
#include "harness/errors.h"
#include "harness/fidelity.h"
#include "harness/json_access.h"
#include "harness/report.h"
#include "harness/suite.h"
#include "test_util.h"

namespace capbench {
namespace {

namespace fs = std::filesystem;

PacingPlan plan_with(EmulationMode mode, Rates host, Rates target) {
  HostRates rates, target_rates;
  rates.peak = host;
  target_rates.peak = target;
  return {"test", mode, rates, target_rates, 0.0, 0.0};
}

double time_matmul(Backend& be, int64_t n) {
  DeviceBuffer a(be, n * n * 4), b(be, n * n * 4), c(be, n * n * 4);
  be.fill(a.view(DType::f32, {n, n}), 0.5f);
  be.fill(b.view(DType::f32, {n, n}), 0.5f);
  const double t0 = host_seconds_now();
  be.matmul(c.view(DType::f32, {n, n}), a.view(DType::f32, {n, n}), b.view(DType::f32, {n, n}),
            MatmulArgs{});
  be.synchronize();
  return host_seconds_now() - t0;
}

// An inner backend whose matmul takes at least 5 ms, so the paced time has a known floor.
class SlowMatmul final : public ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  void matmul(const Tensor& c, const Tensor& a, const Tensor& b, const MatmulArgs& args) override {
    const double t0 = host_seconds_now();
    inner_.matmul(c, a, b, args);
    while (host_seconds_now() - t0 < 5e-3) {
    }
  }
};

// The read stream a CPU backend's MBU is stated against, from one kept buffer pass by pass (as
// decode_stream times it beside each step) or from a fresh one: a rate a memory system can have,
// the same order of magnitude either way (one pass of 64 MiB reads it all, none is skipped).
TEST(ReadStream, KeptAndFreshBuffersGiveAPlausibleRate) {
  HostReadStream kept(size_t{64} << 20);
  const double one_pass = kept.measure(2, 1), best = kept.measure(2, 4);
  const double fresh = HostReadStream(size_t{64} << 20).measure(2, 6);
  for (double rate : {one_pass, best, fresh}) {
    EXPECT_GT(rate, 1e8);   // 100 MB/s: far below any DRAM
    EXPECT_LT(rate, 1e13);  // 10 TB/s: far above any host's memory (an L3 holds no 64 MiB)
  }
}

TEST(Throttle, FloorRuleIsTheTargetRoofline) {
  ReferenceBackend ref;
  ThrottleBackend t(ref, plan_with(EmulationMode::floor, {1e12, 1e11}, {1e9, 2e8}));
  const PaceRule compute = t.rule_for(OpId::add, {4e6, 1e3});
  EXPECT_DOUBLE_EQ(compute.floor_s, 4e-3);  // 4 MFLOP at 1 GFLOP/s
  EXPECT_DOUBLE_EQ(compute.dilate, 1.0);
  const PaceRule memory = t.rule_for(OpId::add, {1e3, 1e6});
  EXPECT_DOUBLE_EQ(memory.floor_s, 5e-3);  // 1 MB at 200 MB/s
}

TEST(Throttle, DilateRuleIsTheRatioOfRooflines) {
  ReferenceBackend ref;
  ThrottleBackend t(ref, plan_with(EmulationMode::dilate, {1e12, 1e11}, {2.5e11, 1e11}));
  EXPECT_DOUBLE_EQ(t.rule_for(OpId::add, {1e9, 1e3}).dilate,
                   4.0);  // compute-bound: 4x slower compute
  EXPECT_DOUBLE_EQ(t.rule_for(OpId::add, {1e3, 1e9}).dilate, 1.0);  // memory-bound: bandwidth kept
  EXPECT_DOUBLE_EQ(t.rule_for(OpId::add, {1e3, 1e9}).floor_s, 0.0);
  ThrottleBackend same(ref, plan_with(EmulationMode::dilate, {1e12, 1e11}, {1e12, 1e11}));
  EXPECT_DOUBLE_EQ(same.rule_for(OpId::add, {1e9, 1e9}).dilate, 1.0);
}

TEST(Throttle, ShiftRuleAddsTheRooflineDifference) {
  ReferenceBackend ref;
  ThrottleBackend t(ref, plan_with(EmulationMode::shift, {1e12, 1e11}, {2.5e11, 1e11}));
  const PaceRule compute = t.rule_for(OpId::add, {1e9, 1e3});
  EXPECT_DOUBLE_EQ(compute.dilate, 1.0);
  EXPECT_DOUBLE_EQ(compute.extra_s, 1e9 / 2.5e11 - 1e9 / 1e12);      // 4 ms - 1 ms
  EXPECT_DOUBLE_EQ(t.rule_for(OpId::add, {1e3, 1e9}).extra_s, 0.0);  // memory-bound: nothing added
}

TEST(Throttle, ShiftedOpLastsItsTimePlusTheDifference) {
  ReferenceBackend ref;
  SlowMatmul slow(ref);
  // 2·16³ = 8192 FLOP at 1 MFLOP/s: 8.2 ms more than on the (fast) host.
  ThrottleBackend t(slow, plan_with(EmulationMode::shift, {1e12, 1e12}, {1e6, 1e12}));
  EXPECT_GE(time_matmul(t, 16), 5e-3 + 8192 / 1e6 - 8192 / 1e12);
}

TEST(Throttle, PacedOpLastsAtLeastItsFloor) {
  ReferenceBackend ref;
  ThrottleBackend t(ref, plan_with(EmulationMode::floor, {1e12, 1e12}, {1e9, 1e12}));
  const int64_t n = 96;  // 2·96³ = 1.77 MFLOP: a floor of 1.77 ms at 1 GFLOP/s
  EXPECT_GE(time_matmul(t, n), 2.0 * n * n * n / 1e9);
}

// Pacing off (a run's canaries): the op runs at the host's speed, far below its floor; on
// again, it is paced.
TEST(Throttle, PacingOffRunsAtTheHostsSpeed) {
  ReferenceBackend ref;
  ThrottleBackend t(ref, plan_with(EmulationMode::floor, {1e12, 1e12}, {1e7, 1e12}));
  const int64_t n = 96;  // a floor of 177 ms at 10 MFLOP/s; unpaced, about 1 ms
  const double floor_s = 2.0 * n * n * n / 1e7;
  t.set_pacing(false);
  EXPECT_LT(time_matmul(t, n), floor_s / 2);
  t.set_pacing(true);
  EXPECT_GE(time_matmul(t, n), floor_s);
}

TEST(Throttle, DilateStretchesTheMeasuredTimeByTheFactor) {
  ReferenceBackend ref;
  SlowMatmul slow(ref);
  ThrottleBackend t(slow, plan_with(EmulationMode::dilate, {1e12, 1e12}, {2.5e11, 1e12}));
  EXPECT_GE(time_matmul(t, 16), 4 * 5e-3);
}

TEST(Throttle, NeedsABackendThatCanPace) {
  class NoPacing final : public ForwardingBackend {
   public:
    using ForwardingBackend::ForwardingBackend;
    int pace_slots() const override { return 0; }
  };
  ReferenceBackend ref;
  NoPacing inner(ref);
  EXPECT_THROW(ThrottleBackend(inner, plan_with(EmulationMode::floor, {1, 1}, {1, 1})),
               std::runtime_error);
}

const std::string kConfigs = default_config_dir();

HostRates host_of(Rates peak) {
  HostRates h;
  h.peak = peak;
  return h;
}

EmulationPlan plan_for(const DeviceProfile& target, const DeviceProfile* reference, Rates host,
                       EmulationMode mode, DType dtype, double time_scale = 1) {
  EmulationSpec spec;
  spec.target = target;
  if (reference) spec.reference = *reference;
  spec.mode = mode;
  return plan_emulation(spec, host_of(host), dtype, time_scale, /*graphs=*/false);
}

TEST(EmulationPlan, AbsoluteTargetFasterThanHostIsLimitedInRealTime) {
  const DeviceProfile h20 = load_device_profile("h20", kConfigs);
  // An H100 measured at ~3.0 TB/s cannot reach the H20's 4.0 TB/s in real time.
  const EmulationPlan on_h100 =
      plan_for(h20, nullptr, {800e12, 3.0e12}, EmulationMode::floor, DType::bf16);
  EXPECT_EQ(on_h100.limited_by, std::vector<std::string>{"memory_bandwidth"});
  EXPECT_DOUBLE_EQ(on_h100.pacing.target.peak.flops, 148e12);
  EXPECT_DOUBLE_EQ(on_h100.pacing.target.peak.bytes_per_s, 3.0e12)
      << "clamped to what the host has";
  // An H200 measured at ~4.3 TB/s emulates it fully.
  const EmulationPlan on_h200 =
      plan_for(h20, nullptr, {800e12, 4.3e12}, EmulationMode::floor, DType::bf16);
  EXPECT_TRUE(on_h200.limited_by.empty());
  EXPECT_DOUBLE_EQ(on_h200.pacing.target.peak.bytes_per_s, 4.0e12);
  EXPECT_DOUBLE_EQ(on_h200.memory_capacity_bytes, 96e9);
}

TEST(EmulationPlan, RelativeScalesTheHostByTheRatioOfFigures) {
  const DeviceProfile h20 = load_device_profile("h20", kConfigs);
  const DeviceProfile h100 = load_device_profile("h100-sxm", kConfigs);
  const Rates host{200e9, 30e9};  // a CPU playing the H100
  const EmulationPlan p = plan_for(h20, &h100, host, EmulationMode::dilate, DType::f32);
  EXPECT_EQ(p.relative_to, "h100-sxm");
  EXPECT_NEAR(p.compute_ratio, 148.0 / 989.4, 1e-12);
  EXPECT_NEAR(p.bandwidth_ratio, 4.0 / 3.35, 1e-12);
  EXPECT_NEAR(p.pacing.target.peak.flops, 200e9 * 148.0 / 989.4, 1);
  EXPECT_DOUBLE_EQ(p.pacing.target.peak.bytes_per_s, 30e9) << "a ratio above 1 cannot be emulated";
  EXPECT_EQ(p.limited_by, std::vector<std::string>{"memory_bandwidth"});
  const EmulationPlan self = plan_for(h100, &h100, host, EmulationMode::dilate, DType::f32);
  EXPECT_TRUE(self.limited_by.empty());
  EXPECT_DOUBLE_EQ(self.pacing.target.peak.flops, host.flops);
  const DeviceProfile ascend = load_device_profile("ascend-910b2", kConfigs);
  const EmulationPlan a = plan_for(ascend, &h100, host, EmulationMode::dilate, DType::f32);
  EXPECT_TRUE(a.limited_by.empty());
  EXPECT_NEAR(a.pacing.target.peak.bytes_per_s, 30e9 * 1.6 / 3.35, 1);
}

// Time scaling: s is the largest factor at which the host meets the target in every dimension;
// a dimension faster than the host lowers it, it is never above 1, and the scaled target keeps
// the target's balance exactly, with nothing limited.
TEST(TimeScale, TheTightestDimensionSetsTheFactor) {
  const Rates host{200e9, 40e9};                                                  // a CPU
  EXPECT_DOUBLE_EQ(fitting_time_scale(host, {989e12, 3.35e12}), 200e9 / 989e12);  // compute
  EXPECT_DOUBLE_EQ(fitting_time_scale(host, {100e9, 80e9}), 0.5);                 // memory
  EXPECT_DOUBLE_EQ(fitting_time_scale(host, {100e9, 20e9}), 1.0) << "never above 1";
  const DeviceProfile h20 = load_device_profile("h20", kConfigs);
  const double s = fitting_time_scale(host, {h20.bf16_flops.value, h20.memory_bytes_per_s.value});
  const EmulationPlan p = plan_for(h20, nullptr, host, EmulationMode::floor, DType::bf16, s);
  EXPECT_TRUE(p.limited_by.empty());
  EXPECT_NEAR(p.pacing.target.peak.flops / p.pacing.target.peak.bytes_per_s, 148e12 / 4.0e12, 1e-9)
      << "the H20's balance, not the host's";
  EXPECT_LE(p.pacing.target.peak.flops, host.flops * (1 + 1e-12));
  EXPECT_LE(p.pacing.target.peak.bytes_per_s, host.bytes_per_s * (1 + 1e-12));
  EXPECT_DOUBLE_EQ(p.time_scale, s);
}

TEST(TimeScale, LaunchOverheadIsPlayedInSlowMotion) {
  DeviceProfile chip = load_device_profile("h100-sxm", kConfigs);
  chip.launch_eager_s.value = 4e-6;
  chip.launch_graphs_s.value = 1e-6;
  EmulationSpec spec;
  spec.target = chip;
  spec.mode = EmulationMode::floor;
  const HostRates host = host_of({2e13, 4e12});  // faster than the H100 x 0.01 everywhere
  const EmulationPlan eager = plan_emulation(spec, host, DType::bf16, 0.01, false);
  const EmulationPlan graphs = plan_emulation(spec, host, DType::bf16, 0.01, true);
  EXPECT_TRUE(eager.limited_by.empty());
  EXPECT_DOUBLE_EQ(eager.launch_s, 4e-6);
  EXPECT_DOUBLE_EQ(eager.pacing.launch_s, 4e-4);
  EXPECT_DOUBLE_EQ(graphs.pacing.launch_s, 1e-4);
  // Floor: the op lasts its roofline on the scaled rates plus the scaled launch.
  ThrottleBackend t(*std::make_unique<ReferenceBackend>(), eager.pacing);
  const OpCost cost{1e9, 1e3};
  EXPECT_NEAR(t.rule_for(OpId::add, cost).floor_s, 1e9 / (989.4e12 * 0.01) + 4e-4, 1e-12);
}

// The host rate an op is paced against comes from its shape class: short rows stream slower.
TEST(HostRates, MatmulsTakeTheirNearestShapeClass) {
  HostRates h;
  h.peak = {100e9, 40e9};
  h.gemv = {{256, 10e9}, {1024, 20e9}, {4096, 30e9}};
  h.gemm = {{128, 20e9}, {512, 60e9}, {2048, 100e9}};
  h.other_bytes_per_s = 25e9;
  auto gemv = [](int64_t k) {
    OpCost c;
    c.m = 1, c.n = 4096, c.k = k;
    return c;
  };
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemv(300)).bytes_per_s, 10e9);
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemv(700)).bytes_per_s, 20e9) << "700 is nearer 1024";
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemv(100000)).bytes_per_s, 30e9);
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemv(300)).flops, 100e9) << "the other dimension: peak";
  OpCost gemm;
  gemm.m = 512, gemm.n = 512, gemm.k = 512;
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemm).flops, 60e9);
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemm).bytes_per_s, 40e9);
  EXPECT_DOUBLE_EQ(h.for_op(OpId::add, OpCost{}).bytes_per_s, 25e9);
  HostRates bare;
  bare.peak = {1, 2};
  EXPECT_DOUBLE_EQ(bare.for_op(OpId::matmul, gemv(300)).bytes_per_s, 2) << "no classes: the peak";
}

// One-row products are classed by row length and by rows.
TEST(HostRates, OneRowProductsAreClassedByRows) {
  HostRates h;
  h.peak = {100e9, 40e9};
  h.gemv = {{1024, 16e9, 256}, {1024, 6e9, 16384}, {4096, 18e9, 64}, {4096, 5e9, 4096}};
  auto gemv = [](int64_t n, int64_t k) {
    OpCost c;
    c.m = 1, c.n = n, c.k = k;
    c.bytes = 4.0 * static_cast<double>(n * k);
    return c;
  };
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemv(512, 1024)).bytes_per_s, 16e9) << "few rows";
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemv(8192, 1024)).bytes_per_s, 6e9) << "many rows";
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemv(64, 4096)).bytes_per_s, 18e9);
  EXPECT_DOUBLE_EQ(h.for_op(OpId::matmul, gemv(8192, 4096)).bytes_per_s, 5e9);
}

// A target measured like the host (the physical check's smaller machine) paces each op to its
// own shape class, not to its peak.
TEST(Throttle, TargetShapeClassesPaceTheirOps) {
  ReferenceBackend ref;
  PacingPlan plan = plan_with(EmulationMode::floor, {1e12, 1e11}, {1e10, 4e9});
  plan.target.gemv = {{4096, 1e9}};
  plan.target.other_bytes_per_s = 2e9;
  ThrottleBackend t(ref, plan);
  OpCost row;  // one row against a 4096 x 4096 fp32 weight: 64 MiB streamed
  row.m = 1, row.n = 4096, row.k = 4096;
  row.flops = 2.0 * 4096 * 4096;
  row.bytes = 4.0 * 4096 * 4096;
  EXPECT_DOUBLE_EQ(t.rule_for(OpId::matmul, row).floor_s, row.bytes / 1e9) << "the GEMV class";
  EXPECT_DOUBLE_EQ(t.rule_for(OpId::add, {1e3, 1e6}).floor_s, 1e6 / 2e9) << "other ops' rate";
  OpCost square;  // no GEMM class: the peak
  square.m = square.n = square.k = 1024;
  square.flops = 2.0 * 1024 * 1024 * 1024;
  square.bytes = 12.0 * 1024 * 1024;
  EXPECT_DOUBLE_EQ(t.rule_for(OpId::matmul, square).floor_s, square.flops / 1e10);
}

// Absolute emulation paces by the floor rule unless told otherwise (an op lasts its time on the
// scaled target); relative emulation by dilate (the host's efficiency carries over).
TEST(EmulationDefaults, FloorForAbsoluteDilateForRelative) {
  SuiteOverrides ov;
  ov.backend = "reference";
  ov.model = "tiny";
  ov.workload = "train_step";
  ov.sizes["seq"] = 16;
  ov.emulate = "h20";
  const auto mode_of = [&](const SuiteOverrides& o) {
    const Suite s = load_suite(kConfigs + "/suites/quick.json", o, kConfigs, builtin_registry());
    EXPECT_FALSE(s.runs.empty());
    return s.runs.front().emulation->mode;
  };
  ov.relative_to = "none";
  EXPECT_EQ(mode_of(ov), EmulationMode::floor);
  ov.relative_to = "h100-sxm";
  EXPECT_EQ(mode_of(ov), EmulationMode::dilate);
  ov.emulate_mode = "shift";
  EXPECT_EQ(mode_of(ov), EmulationMode::shift) << "an explicit mode wins";
}

TEST(DeviceProfiles, EveryShippedProfileLoadsWithSources) {
  size_t n = 0;
  for (const auto& f : fs::directory_iterator(kConfigs + "/devices")) {
    const DeviceProfile p = load_device_profile(f.path().string(), kConfigs);
    EXPECT_EQ(p.name + ".json", f.path().filename().string());
    for (const Figure* fig : {&p.bf16_flops, &p.fp16_flops, &p.fp32_flops, &p.memory_bytes_per_s,
                              &p.memory_capacity_bytes, &p.link_bytes_per_s, &p.link_latency_s})
      EXPECT_FALSE(fig->source.empty()) << p.name;
    ++n;
  }
  EXPECT_EQ(n, 10u);
}

class BadProfile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("capbench_prof_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::ifstream in(kConfigs + "/devices/h20.json");
    good_ = nlohmann::json::parse(in);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // Writes a changed copy of h20.json: loading it must throw a ConfigError naming that file,
  // `path` and `expected`.
  ::testing::AssertionResult rejected_at(const std::function<void(nlohmann::json&)>& change,
                                         const std::string& path, const std::string& expected) {
    nlohmann::json doc = good_;
    change(doc);
    const std::string file = (dir_ / "bad.json").string();
    std::ofstream(file) << doc.dump();
    try {
      load_device_profile(file, kConfigs);
      return ::testing::AssertionFailure()
             << "accepted a bad profile (expected an error at " << path << ")";
    } catch (const ConfigError& e) {
      if (e.file() != file || e.json_path() != path ||
          e.expected().find(expected) == std::string::npos)
        return ::testing::AssertionFailure() << "wrong error: " << e.what();
    }
    return ::testing::AssertionSuccess();
  }
  fs::path dir_;
  nlohmann::json good_;
};

TEST_F(BadProfile, MissingSource) {
  EXPECT_TRUE(rejected_at([](nlohmann::json& d) { d["compute"]["bf16_flops"].erase("source"); },
                          "$.compute.bf16_flops.source", "field is missing"));
}
TEST_F(BadProfile, UnknownKind) {
  EXPECT_TRUE(
      rejected_at([](nlohmann::json& d) { d["memory"]["capacity_bytes"]["kind"] = "rumour"; },
                  "$.memory.capacity_bytes.kind", "\"vendor\", \"estimate\" or \"measured\""));
}
TEST_F(BadProfile, NegativeFigure) {
  EXPECT_TRUE(
      rejected_at([](nlohmann::json& d) { d["memory"]["bandwidth_bytes_per_s"]["value"] = -4e12; },
                  "$.memory.bandwidth_bytes_per_s.value", "a number in [1e+08, 1e+15]"));
}
TEST_F(BadProfile, UnknownTopology) {
  EXPECT_TRUE(rejected_at([](nlohmann::json& d) { d["scale_up"]["topology"] = "ring"; },
                          "$.scale_up.topology", "\"switch\" or \"full_mesh\""));
}

// Emulated runs through the CLI, with a calibration cache seeded so nothing is measured.
class EmulateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_folder("capbench_emu");
    fs::create_directories(dir_ / "models");
    fs::create_directories(dir_ / "devices");
    fs::copy_file(kConfigs + "/models/tiny.json", dir_ / "models/tiny.json");
    for (const char* p : {"h100-sxm", "h20"})
      fs::copy_file(kConfigs + "/devices/" + p + ".json",
                    dir_ / "devices" / (std::string(p) + ".json"));
    // Seed the calibration cache for every CPU backend (the CPU's peaks come from the first
    // non-oracle one), so the tests measure nothing and know the host rates.
    setenv("CAPBENCH_CACHE_DIR", (dir_ / "cache").c_str(), 1);
    for (const BackendEntry& e : builtin_registry().entries()) {
      if (e.device_kind != "cpu") continue;
      const DeviceInfo info = e.make(BackendOptions{})->device_info();
      Calibration c;
      c.device = info.name;
      c.backend = e.name;
      c.threads = info.threads;
      c.gemm_flops = 2e12;  // above what any CPU here reaches, so no utilisation exceeds 1
      c.gemm_n = 256;
      c.gemm_bf16_flops = 4e12;  // a cache without it is measured again for bf16 backends
      c.gemm_bf16_n = 256;
      c.copy_bytes_per_s = 1e10;
      c.copy_bytes = 1e8;
      c.stream_bytes_per_s = 5e9;
      c.read_bytes_per_s = 8e9;  // likewise for a CPU backend's read stream
      c.dispatch_s = 1e-6;
      // Shape classes at the peaks above, so every op is paced as before shape classes.
      c.gemv_rates = {{4096, 5e9, 4096}};
      c.gemm_rates = {{256, 2e12}};
      c.gemv_rates_bf16 = {{4096, 5e9, 4096}};
      c.gemm_rates_bf16 = {{256, 4e12}};
      c.other_bytes_per_s = 5e9;
      store_calibration(calibration_key(info), c);
    }
    report_ = (dir_ / "r.json").string();
  }
  void TearDown() override {
    unsetenv("CAPBENCH_CACHE_DIR");
    fs::remove_all(dir_);
  }
  // CAPBENCH_KEEP_BLAS: the binary keeps the OpenBLAS this test process loaded, so torch's
  // library string (part of the calibration key) is the one the planted entries were filed under.
  std::pair<int, std::string> run(const std::string& args) {
    return testing::run_command("CAPBENCH_KEEP_BLAS=1 CAPBENCH_CACHE_DIR='" +
                                (dir_ / "cache").string() + "' '" + CAPBENCH_BINARY + "' run '" +
                                suite() + "' --config-dir '" + dir_.string() + "' --out '" +
                                report_ + "' " + args + " 2>&1");
  }
  std::string suite() {
    const std::string f = (dir_ / "s.json").string();
    std::ofstream(f) << R"({"name": "e", "runs": [{"workload": "train_step", "model": "tiny",
        "backends": "reference", "batch": 2, "seq": 8}]})";
    return f;
  }
  fs::path dir_;
  std::string report_;
};

TEST_F(EmulateCli, RelativeRunsRecordThePlanAndWarnWhenLimited) {
  const auto [code, out] =
      run("--backend reference --emulate none,h100-sxm,h20 "
          "--relative-to h100-sxm --time-scale 1 --reps 2");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("warning: h20 cannot be emulated fully"), std::string::npos) << out;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 3u);
  EXPECT_TRUE(rep.runs[0].emulation.is_null());
  EXPECT_EQ(rep.runs[2].key.emulation_profile, "h20");
  EXPECT_EQ(rep.runs[2].key.emulation_relative_to, "h100-sxm");
  const nlohmann::json& e = rep.runs[2].emulation;
  EXPECT_EQ(e["limited_by"], nlohmann::json::array({"memory_bandwidth"}));
  EXPECT_NEAR(e["target_rates"]["flops"].get<double>(), 2e12 * 148 / 989.4, 1e3);
  EXPECT_GT(e["predicted_seconds"].get<double>(), 0.0);
  EXPECT_NE(e["host_rates"]["source"].get<std::string>().find("calibrated with reference"),
            std::string::npos)
      << "the throttle paces against the run's own backend: " << e["host_rates"].dump();
  EXPECT_TRUE(e["fits"].get<bool>());
  EXPECT_GT(rep.runs[2].ops[0].target_roofline_seconds, 0.0);
  EXPECT_NE(rep.runs[0].key.to_string(), rep.runs[1].key.to_string());
}

// The planted host rates are far above what the reference backend reaches, so in slow motion
// its ops outlast the scaled target: the run names them and a time scale that would pace them.
TEST_F(EmulateCli, OpsSlowerThanTheScaledTargetAreNamedWithAFittingTimeScale) {
  const auto [code, out] =
      run("--backend reference --emulate h100-sxm --time-scale auto --reps 2 --batch 8 --seq 64");
  ASSERT_EQ(code, 0) << out;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 1u);
  const nlohmann::json& e = rep.runs[0].emulation;
  ASSERT_TRUE(e["limited_by"].empty()) << e.dump();
  ASSERT_TRUE(e.contains("ops_slower_than_target")) << e.dump();
  EXPECT_NE(e["ops_slower_than_target"].dump().find("matmul"), std::string::npos) << e.dump();
  const double s = e["time_scale"].get<double>();
  const std::string& note = rep.runs[0].notes.at(0);
  const size_t at = note.find("--time-scale ");
  ASSERT_NE(at, std::string::npos) << note;
  EXPECT_LT(std::stod(note.substr(at + 13)), s) << note;
}

TEST_F(EmulateCli, Bf16RunsTakeTheBf16GemmPeakForMfu) {
  std::string backend;
  for (const BackendEntry& e : builtin_registry().entries())
    if (!e.oracle && e.device_kind == "cpu" &&
        e.make(BackendOptions{})->supports(OpId::matmul, DType::bf16).ok)
      backend = e.name;
  if (backend.empty()) GTEST_SKIP() << "no CPU backend of this build runs bf16 here";
  for (const char* dtype : {"fp32", "bf16"}) {
    const auto [code, out] = run("--backend " + backend + " --dtype " + dtype + " --reps 2");
    ASSERT_EQ(code, 0) << out;
    const Report rep = read_report(report_);
    ASSERT_EQ(rep.runs.size(), 1u);
    const RunRecord& r = rep.runs[0];
    const double peak = std::string(dtype) == "bf16" ? 4e12 : 2e12;  // as seeded above
    EXPECT_EQ(r.roofline.peak_flops, peak) << dtype << ": " << r.roofline.peaks_source;
    EXPECT_NEAR(r.metrics.at("mfu"), r.metrics.at("achieved_flops_per_s") / peak, 1e-12) << dtype;
  }
}

// A calibration below what a run then achieves (stale, or measured while the machine was
// busy) would give a utilisation above 100%: the figure is left out, the run says why, and the
// table shows that it is unknown.
TEST_F(EmulateCli, UtilisationAboveThePeakIsLeftOutWithANote) {
  for (const BackendEntry& e : builtin_registry().entries()) {
    if (e.device_kind != "cpu") continue;
    const DeviceInfo info = e.make(BackendOptions{})->device_info();
    const std::optional<Calibration> cached = cached_calibration(calibration_key(info));
    ASSERT_TRUE(cached) << "the fixture's planted calibration was not accepted";
    Calibration c = *cached;
    c.gemm_flops = 1e7;  // far below any CPU's GEMM
    store_calibration(calibration_key(info), c);
  }
  const auto [code, out] = run("--backend cpu --reps 2");
  ASSERT_EQ(code, 0) << out;
  const Report rep = read_report(report_);
  ASSERT_FALSE(rep.runs.empty());
  for (const RunRecord& r : rep.runs) {
    EXPECT_EQ(r.metrics.count("mfu"), 0u) << r.key.to_string();
    ASSERT_FALSE(r.notes.empty()) << r.key.to_string();
    EXPECT_NE(r.notes[0].find("MFU left out"), std::string::npos) << r.notes[0];
  }
  EXPECT_NE(out.find("MFU ?"), std::string::npos) << out;
  EXPECT_EQ(out.find("MFU 1"), std::string::npos) << out;  // no figure above 100%, e.g. 1234%
}

TEST_F(EmulateCli, RunThatDoesNotFitTheTargetIsSkipped) {
  nlohmann::json tiny_chip = nlohmann::json::parse(std::ifstream(dir_ / "devices/h20.json"));
  tiny_chip["name"] = "tiny-chip";
  tiny_chip["memory"]["capacity_bytes"]["value"] = 1e8;  // the least a profile may have
  std::ofstream(dir_ / "devices/tiny-chip.json") << tiny_chip.dump();
  fs::copy_file(kConfigs + "/models/small.json", dir_ / "models/small.json");
  const auto [code, out] = run("--emulate tiny-chip --model small --seq 64 --reps 2");
  ASSERT_EQ(code, 0) << out;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 1u);
  EXPECT_EQ(rep.runs[0].status, "skipped");
  EXPECT_NE(rep.runs[0].reason.find("does not fit tiny-chip"), std::string::npos)
      << rep.runs[0].reason;
  EXPECT_FALSE(rep.runs[0].emulation["fits"].get<bool>());
}

TEST_F(EmulateCli, BadEmulationInputExitsTwo) {
  for (const char* args :
       {"--emulate no-such-chip", "--emulate h20 --no-calibrate",
        "--emulate h20 --emulate-mode squeeze", "--emulate h20 --relative-to nothing"}) {
    const auto [code, out] = run(args);
    EXPECT_EQ(code, 2) << args << ": " << out;
    EXPECT_FALSE(fs::exists(report_)) << args;
  }
}

// Collectives of an emulated data-parallel run go through the interconnect throttle: paced to
// the target's link (a 910B node's one peer link for 2 ranks) in slow motion, and named in
// limited_by in real time, where the host's link cannot carry 56 GB/s.
TEST_F(EmulateCli, DataParallelCollectivesArePacedToTheTargetsLink) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  fs::copy_file(kConfigs + "/devices/ascend-910b2.json", dir_ / "devices/ascend-910b2.json");
  const std::string f = (dir_ / "dp.json").string();
  std::ofstream(f) << R"({"name": "dp", "runs": [{"workload": "train_step", "model": "tiny",
      "backends": "reference", "batch": 2, "seq": 8, "parallel": {"layout": "dp"},
      "emulate": "ascend-910b2"}]})";
  const auto launch = [&](const std::string& scale) {
    // --threads 0: every core, the thread count the seeded calibration is for.
    return testing::run_command("CAPBENCH_CACHE_DIR='" + (dir_ / "cache").string() + "' '" +
                                CAPBENCH_BINARY + "' launch -n 2 -- run '" + f +
                                "' --config-dir '" + dir_.string() + "' --out '" + report_ +
                                "' --threads 0 --reps 3 --time-scale " + scale + " 2>&1");
  };
  {
    const auto [code, out] = launch("1");
    ASSERT_EQ(code, 0) << out;
    const RunRecord r = read_report(report_).runs.at(0);
    const auto limited = r.emulation["limited_by"].get<std::vector<std::string>>();
    EXPECT_NE(std::find(limited.begin(), limited.end(), "interconnect"), limited.end()) << out;
    EXPECT_EQ(r.emulation["link"]["topology"], "full_mesh");
    EXPECT_DOUBLE_EQ(r.emulation["link"]["bandwidth_bytes_per_s"].get<double>(), 56e9);
  }
  {
    const double scale = 1e-4;  // the link at 5.6 MB/s on the host's timeline
    const auto [code, out] = launch("1e-4");
    ASSERT_EQ(code, 0) << out;
    const RunRecord r = read_report(report_).runs.at(0);
    const auto limited = r.emulation["limited_by"].get<std::vector<std::string>>();
    EXPECT_EQ(std::find(limited.begin(), limited.end(), "interconnect"), limited.end()) << out;
    const nlohmann::json& ar = r.parallel["collectives"]["all_reduce"];
    // Two ranks: bus bytes = S; every call lasts at least S / (56 GB/s × s) plus its latency.
    const double least =
        ar["bytes"].get<double>() / (56e9 * scale) + ar["calls"].get<double>() * 2 * 3e-6 / scale;
    EXPECT_GE(ar["seconds"].get<double>(), least * 0.999) << out;
    EXPECT_LT(ar["seconds"].get<double>(), least * 1.5) << out;
    EXPECT_GT(r.emulation["predicted_communication_seconds"].get<double>(), 0);
  }
}

}  // namespace
}  // namespace capbench

namespace capbench {
namespace {

// The verdict holds the checks with a goal; an informational one is kept and shown, and read
// back as informational, but never decides the verdict.
TEST(Fidelity, InformationalChecksAreKeptButNotJudged) {
  FidelityResult r;
  r.backend = "onednn";
  r.reps = 5;
  FidelityCheck met{"physical", "floor: decode step emulated / real", 1.04, 0.9, 1.1, true,
                    "a vs b"};
  FidelityCheck info{"physical", "dilate: decode step emulated / real", 1.2, 0.9, 1.1, false,
                     "c vs d"};
  info.informational = true;
  r.checks = {met, info};
  EXPECT_TRUE(r.passed());
  const nlohmann::json j = to_json(r);
  const FidelityResult back = fidelity_from_json(JsonView(j, "f.json", "$"));
  ASSERT_EQ(back.checks.size(), 2u);
  EXPECT_FALSE(back.checks[0].informational);
  EXPECT_TRUE(back.checks[1].informational);
  EXPECT_TRUE(back.passed());
  r.checks[0].passed = false;  // a check with a goal that misses it
  EXPECT_FALSE(r.passed());
}

}  // namespace
}  // namespace capbench
