// The communicator and what is built on it: every collective of the c10d Gloo engine against
// host-computed results (two ranks, in two threads of this process), the link model and the
// interconnect throttle, data parallelism against one process, and the command line's faults
// (a rank killed mid-run, a port in use, bad launcher variables, a bucket of 0 bytes).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "backends/bf16.h"
#include "backends/comm/link_model.h"
#include "backends/reference/reference_backend.h"
#include "harness/comm_bench.h"
#include "harness/config_files.h"
#include "harness/launch.h"
#include "harness/report.h"
#include "harness/suite.h"
#include "test_util.h"
#include "workloads/data_parallel.h"
#include "workloads/inference.h"
#include "workloads/train_step.h"

namespace capbench {
namespace {

namespace fs = std::filesystem;

// Runs fn(comm) on `world` ranks, one thread each, joined through a TCPStore on a free port.
// The caller skips where this build has no engine.
void on_ranks(int world, const std::function<void(Communicator&)>& fn) {
  const int port = free_local_port();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<size_t>(world));
  for (int rank = 0; rank < world; ++rank)
    threads.emplace_back([&, rank] {
      try {
        Rendezvous rv;
        rv.rank = rank;
        rv.world = world;
        rv.master_port = port;
        std::unique_ptr<Communicator> comm = make_communicator(rv, 60);
        fn(*comm);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(rank)] = e.what();
      }
    });
  for (std::thread& t : threads) t.join();
  for (int rank = 0; rank < world; ++rank)
    EXPECT_EQ(errors[static_cast<size_t>(rank)], "") << "rank " << rank;
}

// A rank's values: distinct per rank and element, not integers (sums are checked to rounding).
float value(int rank, int64_t i) {
  return 0.37f * static_cast<float>(rank + 1) + 0.01f * static_cast<float>(i % 97) - 0.5f;
}

// What a rank holds of its input after the dtype's rounding.
float stored(DType dtype, float v) {
  return dtype == DType::bf16 ? bf16_to_float(float_to_bf16(v)) : v;
}

class Collectives : public ::testing::TestWithParam<DType> {};

TEST_P(Collectives, MatchHostResultsAtOddSizes) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  const DType dtype = GetParam();
  const int world = 2;
  // bf16 results are rounded once to bf16 after an fp32 reduction.
  const double tol = dtype == DType::bf16 ? 1.0 / 128 : 1e-6;
  const auto near = [&](float got, double want) {
    return std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want));
  };
  on_ranks(world, [&](Communicator& comm) {
    const int rank = comm.rank();
    for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{1001}}) {
      for (const ReduceOp op : {ReduceOp::sum, ReduceOp::average, ReduceOp::max}) {
        HostBuffer t(dtype, n);
        for (int64_t i = 0; i < n; ++i) t.set(i, value(rank, i));
        comm.all_reduce(t.tensor(), op)->wait();
        int64_t wrong = 0;
        for (int64_t i = 0; i < n; ++i) {
          double want = op == ReduceOp::max ? -1e30 : 0;
          for (int r = 0; r < world; ++r) {
            const double v = stored(dtype, value(r, i));
            want = op == ReduceOp::max ? std::max(want, v) : want + v;
          }
          if (op == ReduceOp::average) want /= world;
          if (!near(t.get(i), want)) ++wrong;
        }
        EXPECT_EQ(wrong, 0) << "all_reduce n=" << n << " op=" << static_cast<int>(op);
      }
      HostBuffer in(dtype, n), out(dtype, n * world);
      for (int64_t i = 0; i < n; ++i) in.set(i, value(rank, i));
      comm.all_gather(out.tensor(), in.tensor())->wait();
      for (int r = 0; r < world; ++r)
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(out.get(r * n + i), stored(dtype, value(r, i))) << "all_gather n=" << n;

      HostBuffer whole(dtype, n * world), share(dtype, n);
      for (int64_t i = 0; i < n * world; ++i) whole.set(i, value(rank, i));
      comm.reduce_scatter(share.tensor(), whole.tensor(), ReduceOp::sum)->wait();
      for (int64_t i = 0; i < n; ++i) {
        double want = 0;
        for (int r = 0; r < world; ++r) want += stored(dtype, value(r, rank * n + i));
        ASSERT_TRUE(near(share.get(i), want)) << "reduce_scatter n=" << n << " i=" << i;
      }

      HostBuffer b(dtype, n);
      for (int64_t i = 0; i < n; ++i) b.set(i, value(rank, i));
      comm.broadcast(b.tensor(), 1)->wait();
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(b.get(i), stored(dtype, value(1, i)));
    }
    comm.barrier()->wait();
    std::vector<double> agreed{static_cast<double>(rank + 1)};
    comm.agree(agreed, ReduceOp::max);
    EXPECT_EQ(agreed[0], 2.0);
  });
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Collectives, ::testing::Values(DType::f32, DType::bf16),
                         [](const auto& p) { return std::string(dtype_name(p.param)); });

TEST(LinkModel, BusFactorsAreNcclTests) {
  EXPECT_DOUBLE_EQ(bus_factor(Collective::all_reduce, 8), 2.0 * 7 / 8);
  EXPECT_DOUBLE_EQ(bus_factor(Collective::all_gather, 4), 3.0 / 4);
  EXPECT_DOUBLE_EQ(bus_factor(Collective::reduce_scatter, 2), 0.5);
  EXPECT_DOUBLE_EQ(bus_factor(Collective::broadcast, 8), 1.0);
  EXPECT_DOUBLE_EQ(bus_factor(Collective::all_reduce, 1), 1.0);
}

TEST(LinkModel, FullMeshUsesAPeerLinkPerRankAndASwitchDoesNot) {
  LinkModel mesh{"full_mesh", 56e9, 3e-6, 0, 0};
  LinkModel fabric{"switch", 450e9, 2e-6, 0, 0};
  EXPECT_DOUBLE_EQ(mesh.bandwidth(2), 56e9);
  EXPECT_DOUBLE_EQ(mesh.bandwidth(8), 7 * 56e9);
  EXPECT_DOUBLE_EQ(fabric.bandwidth(2), fabric.bandwidth(8));
  // latency × steps + bus bytes / bandwidth
  const double s = 64e6;
  EXPECT_NEAR(mesh.seconds(Collective::all_gather, s, 4), 3e-6 * 3 + s * 0.75 / (3 * 56e9), 1e-12);
  EXPECT_NEAR(fabric.seconds(Collective::all_reduce, s, 8), 2e-6 * 14 + s * 1.75 / 450e9, 1e-12);
  // Ranks on several nodes are bounded by the scale-out bandwidth.
  LinkModel nodes = fabric;
  nodes.scale_out_bytes_per_s = 50e9;
  nodes.ranks_per_node = 8;
  EXPECT_DOUBLE_EQ(nodes.bandwidth(8), 450e9);
  EXPECT_DOUBLE_EQ(nodes.bandwidth(16), 50e9);
  // Several calls: each pays its latency, the bytes flow once.
  EXPECT_NEAR(fabric.seconds(Collective::all_reduce, s, 8, 3), 3 * 2e-6 * 14 + s * 1.75 / 450e9,
              1e-12);
  // Slow motion: rates times s, latency over s.
  const LinkModel slow = fabric.scaled(0.01);
  EXPECT_NEAR(slow.seconds(Collective::all_reduce, s, 8),
              fabric.seconds(Collective::all_reduce, s, 8) / 0.01, 1e-9);
}

// A world of two whose collectives complete at once: what the throttle adds is all there is.
class InstantPair final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world() const override { return 2; }
  std::string engine() const override { return "instant"; }
  CommHandle all_reduce(const Tensor&, ReduceOp) override { return now(); }
  CommHandle all_gather(const Tensor&, const Tensor&) override { return now(); }
  CommHandle reduce_scatter(const Tensor&, const Tensor&, ReduceOp) override { return now(); }
  CommHandle broadcast(const Tensor&, int) override { return now(); }
  CommHandle barrier() override { return now(); }
  void agree(std::vector<double>&, ReduceOp) override {}
  int calls = 0;

 private:
  CommHandle now() {
    ++calls;
    const double t = host_seconds_now();
    return std::make_shared<DoneWork>(t, t);
  }
};

TEST(InterconnectThrottle, PacesEachCollectiveToItsLinkModelTimeOneAfterAnother) {
  InstantPair pair;
  const LinkModel link{"switch", 1e9, 1e-3, 0, 0};  // 1 GB/s, 1 ms a step
  ThrottledCommunicator paced(pair, link);
  std::vector<float> data(1 << 20);  // 4 MiB: 2 ms latency + 4.19 ms of bus bytes
  const Tensor t(data.data(), DType::f32, {static_cast<int64_t>(data.size())});
  const double want = link.seconds(Collective::all_reduce, static_cast<double>(t.bytes()), 2);
  const double t0 = host_seconds_now();
  paced.all_reduce(t, ReduceOp::sum)->wait();
  const double one = host_seconds_now() - t0;
  EXPECT_GE(one, want);
  EXPECT_LT(one, want + 0.05);
  // Two launched together share the link: the second ends a link-model time after the first.
  const double t1 = host_seconds_now();
  CommHandle a = paced.all_reduce(t, ReduceOp::sum), b = paced.all_reduce(t, ReduceOp::sum);
  b->wait();
  a->wait();
  EXPECT_GE(host_seconds_now() - t1, 2 * want);
  EXPECT_EQ(pair.calls, 3) << "every collective still runs on the inner communicator";
  // Metered on top: the busy time is the paced one.
  MeteredCommunicator metered(paced);
  metered.all_reduce(t, ReduceOp::sum)->wait();
  const CollectiveTotals total = metered.totals()[static_cast<size_t>(Collective::all_reduce)];
  EXPECT_EQ(total.calls, 1);
  EXPECT_DOUBLE_EQ(total.bytes, static_cast<double>(t.bytes()));
  EXPECT_GE(total.seconds, want * 0.999);
}

// A virtual rank's collective lasts its link-model time, later ones queue behind it on the
// link, and no data moves: every buffer keeps its values.
TEST(VirtualRanks, CollectivesLastTheirLinkModelTimeAndMoveNoData) {
  const LinkModel mesh{"full_mesh", 1e9, 1e-3, 0, 0};  // 1 GB/s a peer link, 1 ms a step
  VirtualCommunicator comm(4, mesh);
  EXPECT_EQ(comm.world(), 4);
  std::vector<float> in(1 << 18), out(4 << 18);  // 1 MiB in, 4 MiB gathered
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 13) - 6.5f;
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(i % 7) + 0.25f;
  const std::vector<float> in0 = in, out0 = out;
  const Tensor tin(in.data(), DType::f32, {static_cast<int64_t>(in.size())});
  const Tensor tout(out.data(), DType::f32, {static_cast<int64_t>(out.size())});
  // All-gather of S = 4 MiB over 4 ranks: 3 steps of 1 ms + S·3/4 over 3 peer links.
  const double gather = mesh.seconds(Collective::all_gather, static_cast<double>(tout.bytes()), 4);
  EXPECT_NEAR(gather, 3e-3 + 4.0 * (1 << 20) * 0.75 / 3e9, 1e-12);
  double t0 = host_seconds_now();
  comm.all_gather(tout, tin)->wait();
  const double one = host_seconds_now() - t0;
  EXPECT_GE(one, gather);
  EXPECT_LT(one, gather + 0.05);
  const double reduce = mesh.seconds(Collective::all_reduce, static_cast<double>(tin.bytes()), 4);
  t0 = host_seconds_now();
  CommHandle a = comm.all_reduce(tin, ReduceOp::sum), b = comm.all_reduce(tin, ReduceOp::sum);
  b->wait();
  a->wait();
  EXPECT_GE(host_seconds_now() - t0, 2 * reduce);
  EXPECT_NEAR(b->finished_s() - a->started_s(), 2 * reduce, 1e-9);
  EXPECT_EQ(in, in0);
  EXPECT_EQ(out, out0);
  EXPECT_THROW(VirtualCommunicator(1, mesh), std::invalid_argument);
}

// On a backend's timeline, a virtual collective is a pause queued there (the backend's own
// pacing), metered at its link-model time; nothing moves. A replayed graph's collectives are
// added to the meter per pass.
TEST(VirtualRanks, OnTheBackendTimelineACollectiveIsAPauseThere) {
  ReferenceBackend backend;
  ASSERT_GT(backend.pace_slots(), 0);
  const LinkModel link{"switch", 1e9, 2e-3, 0, 0};
  VirtualCommunicator ranks(2, link, &backend);
  EXPECT_TRUE(ranks.on_backend_timeline());
  MeteredCommunicator metered(ranks);
  EXPECT_TRUE(metered.on_backend_timeline());
  std::vector<float> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = 0.5f * static_cast<float>(i % 9) - 1.0f;
  const std::vector<float> before = data;
  const Tensor t(data.data(), DType::f32, {1000});
  const double modelled = link.seconds(Collective::all_reduce, 4000, 2);  // 2 steps of 2 ms + ...
  const double t0 = host_seconds_now();
  metered.all_reduce(t, ReduceOp::sum)->wait();
  backend.synchronize();
  EXPECT_GE(host_seconds_now() - t0, modelled);
  EXPECT_EQ(data, before);
  MeteredCommunicator::Totals per_pass = metered.totals();
  const CollectiveTotals& once = per_pass[static_cast<size_t>(Collective::all_reduce)];
  EXPECT_EQ(once.calls, 1);
  EXPECT_NEAR(once.seconds, modelled, 1e-9);
  metered.add(per_pass, 3);
  const CollectiveTotals four = metered.totals()[static_cast<size_t>(Collective::all_reduce)];
  EXPECT_EQ(four.calls, 4);
  EXPECT_NEAR(four.seconds, 4 * modelled, 1e-9);
  EXPECT_DOUBLE_EQ(four.bytes, 4 * 4000.0);
  EXPECT_FALSE(VirtualCommunicator(2, link).on_backend_timeline());
}

TEST(DataParallel, BucketsCoverTheBufferFromItsEndFirstBucketSmall) {
  const auto buckets = gradient_buckets(1'000'003, 4, 1 << 20, 2 << 20);
  ASSERT_GE(buckets.size(), 3u);
  EXPECT_EQ(buckets.front().end, 1'000'003);
  EXPECT_EQ(buckets.front().end - buckets.front().begin, (1 << 20) / 4);
  EXPECT_EQ(buckets[1].end - buckets[1].begin, (2 << 20) / 4);
  for (size_t i = 1; i < buckets.size(); ++i) EXPECT_EQ(buckets[i].end, buckets[i - 1].begin);
  EXPECT_EQ(buckets.back().begin, 0);
  EXPECT_THROW(gradient_buckets(10, 4, 0, 1), std::invalid_argument);
  // No bucket spans the cut: what follows it is final before what precedes it.
  const auto cut = gradient_buckets(1'000'003, 4, 1 << 20, 2 << 20, 300'001);
  bool at_cut = false;
  for (const GradientBucket& bucket : cut) {
    EXPECT_FALSE(bucket.begin < 300'001 && bucket.end > 300'001);
    at_cut = at_cut || bucket.begin == 300'001;
  }
  EXPECT_TRUE(at_cut);
  EXPECT_EQ(cut.back().begin, 0);
}

// Two ranks in one process (threads) whose fp32 all-reduces meet in shared memory: data
// parallelism's logic on any build (the sanitizer build has no libtorch, hence no Gloo).
class InMemoryWorld {
 public:
  class Rank final : public Communicator {
   public:
    Rank(InMemoryWorld& w, int rank) : w_(w), rank_(rank) {}
    int rank() const override { return rank_; }
    int world() const override { return 2; }
    std::string engine() const override { return "in-memory"; }
    CommHandle all_reduce(const Tensor& data, ReduceOp op) override {
      if (data.dtype != DType::f32 || op != ReduceOp::sum)
        throw std::invalid_argument("in-memory: fp32 sums only");
      const double t0 = host_seconds_now();
      w_.meet(rank_, data.as<float>(), data.numel());
      return std::make_shared<DoneWork>(t0, host_seconds_now());
    }
    CommHandle all_gather(const Tensor&, const Tensor&) override { throw std::logic_error("no"); }
    CommHandle reduce_scatter(const Tensor&, const Tensor&, ReduceOp) override {
      throw std::logic_error("no");
    }
    CommHandle broadcast(const Tensor&, int) override { throw std::logic_error("no"); }
    CommHandle barrier() override { throw std::logic_error("no"); }
    void agree(std::vector<double>& values, ReduceOp op) override {
      std::vector<float> f(values.begin(), values.end());
      w_.meet(rank_, f.data(), static_cast<int64_t>(f.size()));
      for (size_t i = 0; i < f.size(); ++i) values[i] = op == ReduceOp::average ? f[i] / 2.0 : f[i];
    }

   private:
    InMemoryWorld& w_;
    int rank_;
  };

  // Both ranks' buffers summed into both, once both have arrived.
  void meet(int rank, float* data, int64_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t generation = generation_;
    buffers_[rank] = data;
    if (++arrived_ == 2) {
      for (int64_t i = 0; i < n; ++i) {
        const float sum = buffers_[0][i] + buffers_[1][i];
        buffers_[0][i] = buffers_[1][i] = sum;
      }
      arrived_ = 0;
      ++generation_;
      done_.notify_all();
    } else {
      done_.wait(lock, [&] { return generation_ != generation; });
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  float* buffers_[2] = {nullptr, nullptr};
  int arrived_ = 0;
  uint64_t generation_ = 0;
};

// fn on two ranks: c10d Gloo's, or the in-memory pair (threads).
void on_pair(bool gloo, const std::function<void(Communicator&)>& fn) {
  if (gloo) return on_ranks(2, fn);
  InMemoryWorld world;
  InMemoryWorld::Rank r0(world, 0), r1(world, 1);
  std::thread other([&] {
    try {
      fn(r1);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "rank 1: " << e.what();
    }
  });
  fn(r0);
  other.join();
}

// Data parallel over 2 ranks with batch b each, and one process with batch 2b on the same data:
// every step's loss and the parameters after the last step, on c10d Gloo's ranks or the
// in-memory pair.
struct DataParallelRun {
  std::vector<double> single_losses;
  std::vector<float> single_params;
  std::vector<std::vector<double>> losses{2};  // per rank
  std::vector<std::vector<float>> params{2};
  std::vector<size_t> buckets = std::vector<size_t>(2);
};

DataParallelRun train_both_ways(bool gloo) {
  const ModelConfig cfg = load_model_config("tiny", default_config_dir());
  const int64_t b = 2, seq = 8, steps = 3;
  DataParallelRun run;
  ReferenceBackend single_backend;
  TrainStep single(single_backend, cfg, 2 * b, seq, /*seed=*/7);
  for (int64_t s = 0; s < steps; ++s) {
    single.run();
    run.single_losses.push_back(single.loss());
  }
  run.single_params = single.model().download(single.model().params_flat());

  const auto each_rank = [&](Communicator& comm) {
    ReferenceBackend backend;
    ParallelSpec dp;
    dp.layout = "dp";
    dp.world = 2;
    dp.first_bucket_bytes = 4096;  // several buckets, each launched during the backward
    dp.bucket_bytes = 16384;
    TrainStep step(backend, cfg, b, seq, 7, AdamWArgs{}, DType::f32, &comm, dp);
    const size_t rank = static_cast<size_t>(comm.rank());
    for (int64_t s = 0; s < steps; ++s) {
      step.run();
      run.losses[rank].push_back(step.loss());
    }
    run.params[rank] = step.model().download(step.model().params_flat());
    run.buckets[rank] = step.gradient_sync()->bucket_count();
  };
  on_pair(gloo, each_rank);
  return run;
}

::testing::AssertionResult equals_one_process(const DataParallelRun& run) {
  if (!(run.buckets[0] > 3))
    return ::testing::AssertionFailure() << run.buckets[0] << " buckets, expected more than 3";
  for (size_t rank = 0; rank < 2; ++rank) {
    const std::vector<double>& losses = run.losses[rank];
    if (losses.size() != run.single_losses.size())
      return ::testing::AssertionFailure() << "rank " << rank << ": " << losses.size()
                                           << " losses, expected " << run.single_losses.size();
    for (size_t s = 0; s < losses.size(); ++s)
      if (!(std::fabs(losses[s] - run.single_losses[s]) <= 1e-5 * std::fabs(run.single_losses[s])))
        return ::testing::AssertionFailure()
               << "rank " << rank << " step " << s << ": loss " << losses[s] << ", one process "
               << run.single_losses[s];
    const std::vector<float>& p = run.params[rank];
    if (p.size() != run.single_params.size())
      return ::testing::AssertionFailure() << "rank " << rank << ": " << p.size() << " parameters";
    double worst = 0, scale = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(p[i] - run.single_params[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(run.single_params[i])));
    }
    if (!(worst < 1e-5 * scale))
      return ::testing::AssertionFailure() << "rank " << rank << ": parameters differ by " << worst
                                           << " (largest " << scale << ")";
  }
  // The steps moved the parameters: equality is not that of untouched weights.
  if (!(run.single_losses.back() < run.single_losses.front()))
    return ::testing::AssertionFailure() << "the loss did not fall";
  return ::testing::AssertionSuccess();
}

TEST(DataParallel, EqualsOneProcessWithTheGlobalBatch) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  EXPECT_TRUE(equals_one_process(train_both_ways(/*gloo=*/true)));
}

TEST(DataParallel, EqualsOneProcessOnAnInMemoryPair) {
  EXPECT_TRUE(equals_one_process(train_both_ways(/*gloo=*/false)));
}

// ---- the command line -------------------------------------------------------------------------

class CommCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_folder("capbench_comm");
    report_ = (dir_ / "report.json").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  // capbench with `env` variables, its own cache; stdout and stderr together.
  std::pair<int, std::string> capbench(const std::string& env, const std::string& args) {
    return testing::run_command(env + " CAPBENCH_CACHE_DIR='" + (dir_ / "cache").string() + "' '" +
                                CAPBENCH_BINARY + "' " + args + " 2>&1");
  }
  // The one run of `suite` launched on 2 ranks with 3 repetitions, read from its report.
  RunRecord launched_one_run(const std::string& suite) {
    const auto [code, out] = capbench(
        "", "launch -n 2 -- run '" + suite + "' --reps 3 --no-calibrate --out '" + report_ + "'");
    EXPECT_EQ(code, 0) << out;
    const Report rep = read_report(report_);
    EXPECT_EQ(rep.runs.size(), 1u);
    return rep.runs.empty() ? RunRecord{} : rep.runs[0];
  }
  fs::path dir_;
  std::string report_;
};

const char* kDpTrain =
    R"({"name": "dp", "runs": [{"workload": "train_step", "model": "tiny", "backends": "reference",
        "batch": 2, "seq": 8, "parallel": {"layout": "dp", "bucket_mb": 0.01}}]})";

TEST_F(CommCli, LaunchedDataParallelRunReportsItsCollectives) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  const RunRecord r = launched_one_run(write("dp.json", kDpTrain));
  EXPECT_EQ(r.status, "ok") << r.reason;
  EXPECT_EQ(r.key.parallel_layout, "dp");
  EXPECT_EQ(r.key.world, 2);
  EXPECT_EQ(r.key.threads, 1) << "two local ranks on this host's cores share them";
  const nlohmann::json& ar = r.parallel["collectives"]["all_reduce"];
  // 3 steps of several 10 KiB buckets over the tiny model's gradients.
  EXPECT_GE(ar["calls"].get<int64_t>(), 3 * 2);
  EXPECT_GT(ar["busbw_bytes_per_s"].get<double>(), 0);
  // Two ranks: all-reduce busbw = algbw × 2(n−1)/n = algbw.
  EXPECT_DOUBLE_EQ(ar["busbw_bytes_per_s"].get<double>(), ar["algbw_bytes_per_s"].get<double>());
  EXPECT_EQ(r.parallel["ranks"].size(), 2u);
  EXPECT_TRUE(r.metrics.count("exposed_comm_ms"));
  EXPECT_TRUE(r.metrics.count("overlap_fraction"));
  // The step is the slowest rank's.
  double slowest = 0;
  for (const auto& rank : r.parallel["ranks"])
    slowest = std::max(slowest, rank["median_s"].get<double>());
  EXPECT_GE(r.stats.at("step_s").median, slowest * 0.999);
  // Each rank's time inside the collectives; rank 0's is the report's (rank 0 writes it).
  double in_collectives = 0;
  for (const auto& kind : r.parallel["collectives"])
    in_collectives += kind["seconds"].get<double>();
  EXPECT_NEAR(r.parallel["ranks"][0]["collective_seconds"].get<double>(), in_collectives,
              1e-9 + 1e-9 * in_collectives);
  EXPECT_GT(r.parallel["ranks"][1]["collective_seconds"].get<double>(), 0);
  EXPECT_FALSE(r.parallel["ranks"][1].contains("tp_collective_seconds"));
}

TEST_F(CommCli, CommBenchChecksEveryResult) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  const auto [code, out] =
      capbench("", "launch -n 2 -- comm-bench --min-size 1K --max-size 64K --iters 3 --out '" +
                       report_ + "'");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("wrong results: 0"), std::string::npos) << out;
  const Report rep = read_report(report_);
  const nlohmann::json& rows = rep.comm_bench["results"];
  EXPECT_EQ(rows.size(), 4u * 2u * 7u);  // 4 collectives, 2 dtypes, 1K..64K
  for (const auto& row : rows) {
    EXPECT_EQ(row["wrong"].get<int64_t>(), 0);
    const double alg = row["algbw_bytes_per_s"].get<double>(),
                 bus = row["busbw_bytes_per_s"].get<double>();
    const std::string kind = row["collective"].get<std::string>();
    EXPECT_DOUBLE_EQ(bus, alg * (kind == "all_gather" || kind == "reduce_scatter" ? 0.5 : 1.0))
        << kind;
  }
}

TEST_F(CommCli, KilledRankMakesTheOthersFailTheRunWithinTheTimeout) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  const std::string suite = write(
      "long.json",
      R"({"name": "long", "runs": [{"workload": "train_step", "model": "tiny", "backends": "reference",
          "batch": 2, "seq": 8, "min_time_s": 60, "max_time_s": 60, "max_reps": 1000000,
          "parallel": {"layout": "dp"}}]})");
  const int port = free_local_port();
  const std::string log0 = (dir_ / "rank0.log").string(), log1 = (dir_ / "rank1.log").string();
  const auto env = [&](int rank) {
    return "RANK=" + std::to_string(rank) + " WORLD_SIZE=2 LOCAL_RANK=" + std::to_string(rank) +
           " LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
           " CAPBENCH_CACHE_DIR='" + (dir_ / "cache").string() + "' '" + CAPBENCH_BINARY +
           "' run '" + suite + "' --no-calibrate --comm-timeout 20";
  };
  const std::string script = write(
      "kill.sh",
      env(0) + " --out '" + report_ + "' >'" + log0 + "' 2>&1 &\npid0=$!\n" + env(1) + " >'" +
          log1 + "' 2>&1 &\npid1=$!\n" +
          // The run lasts 60 s: 5 s in, both ranks are in its repetitions.
          "sleep 5\nkill -KILL $pid1\nstart=$(date +%s)\n"
          "wait $pid0\ncode=$?\necho \"rank0 exit $code after $(( $(date +%s) - start )) s\"\n"
          "cat '" +
          log0 + "'\nexit $code\n");
  const auto [code, out] = testing::run_command("bash '" + script + "' 2>&1");
  EXPECT_EQ(code, 1) << out;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 1u) << out;
  EXPECT_EQ(rep.runs[0].status, "failed");
  EXPECT_NE(rep.runs[0].reason.find("failed"), std::string::npos) << rep.runs[0].reason;
  const size_t at = out.find("rank0 exit 1 after ");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_LE(std::stoi(out.substr(at + 19)), 30) << "stopped within the collective timeout";
}

TEST_F(CommCli, SetupFaultsAreBadInputNamingTheCause) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  const std::string suite = write("dp.json", kDpTrain);
  const std::string run = "run '" + suite + "' --no-calibrate --comm-timeout 5";
  {
    const auto [code, out] =
        capbench("RANK=0 WORLD_SIZE=two MASTER_ADDR=127.0.0.1 MASTER_PORT=1", run);
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("WORLD_SIZE=\"two\""), std::string::npos) << out;
  }
  {
    const auto [code, out] =
        capbench("RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1", run);
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("RANK=\"2\""), std::string::npos) << out;
  }
  {
    const auto [code, out] = capbench("RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1", run);
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("MASTER_PORT is not set"), std::string::npos) << out;
  }
  {  // A port another process listens on.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    const int port = ntohs(addr.sin_port);
    const auto [code, out] = capbench(
        "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port), run);
    ::close(fd);
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("MASTER_PORT " + std::to_string(port)), std::string::npos) << out;
  }
  {
    const std::string bad = write(
        "zero.json",
        R"({"name": "z", "runs": [{"workload": "train_step", "model": "tiny", "backends": "reference",
            "batch": 2, "seq": 8, "parallel": {"layout": "dp", "bucket_mb": 0}}]})");
    const auto [code, out] = capbench("", "run '" + bad + "' --no-calibrate");
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("$.runs[0].parallel.bucket_mb"), std::string::npos) << out;
    EXPECT_NE(out.find("zero.json"), std::string::npos) << out;
  }
}

// ---- tensor parallelism -----------------------------------------------------------------------

// Largest |a - b| relative to the largest |b|; -1 when the sizes differ.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return -1;
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return worst / scale;
}

// Two tensor-parallel ranks train the whole batch on their shards: each step's loss is one
// device's, to fp32 rounding.
// What two tensor-parallel ranks and one device each did over the same steps.
struct TensorParallelTraining {
  std::vector<double> single_losses;
  std::vector<std::vector<double>> losses{2};  // per rank
  std::vector<ModelConfig> shards{2};          // the model each rank held
};

TensorParallelTraining train_tensor_parallel(bool gloo) {
  TensorParallelTraining run;
  const ModelConfig cfg = load_model_config("tiny", default_config_dir());
  const int64_t batch = 2, seq = 16, steps = 3;
  ReferenceBackend single_backend;
  TrainStep single(single_backend, cfg, batch, seq, /*seed=*/7);
  for (int64_t s = 0; s < steps; ++s) {
    single.run();
    run.single_losses.push_back(single.loss());
  }
  on_pair(gloo, [&](Communicator& comm) {
    ReferenceBackend backend;
    ParallelSpec tp;
    tp.layout = "tp";
    tp.world = tp.tp = 2;
    const TensorShard shard{2, comm.rank(), &comm};
    TrainStep step(backend, cfg, batch, seq, 7, AdamWArgs{}, DType::f32, nullptr, tp, &shard);
    const size_t rank = static_cast<size_t>(comm.rank());
    run.shards[rank] = step.model().config();
    for (int64_t s = 0; s < steps; ++s) {
      step.run();
      run.losses[rank].push_back(step.loss());
    }
  });
  return run;
}

// Each rank held half the heads and half of d_ff, and each step's loss is one device's, to fp32
// rounding; the steps moved the weights, so the equality is not that of untouched ones.
::testing::AssertionResult equals_one_device(const TensorParallelTraining& run) {
  const ModelConfig cfg = load_model_config("tiny", default_config_dir());
  if (!(run.single_losses.back() < run.single_losses.front()))
    return ::testing::AssertionFailure() << "the loss did not fall";
  for (size_t rank = 0; rank < 2; ++rank) {
    if (run.shards[rank].n_heads != cfg.n_heads / 2 || run.shards[rank].d_ff != cfg.d_ff / 2)
      return ::testing::AssertionFailure()
             << "rank " << rank << " held " << run.shards[rank].n_heads << " heads and d_ff "
             << run.shards[rank].d_ff;
    const std::vector<double>& losses = run.losses[rank];
    if (losses.size() != run.single_losses.size())
      return ::testing::AssertionFailure() << "rank " << rank << ": " << losses.size() << " losses";
    for (size_t s = 0; s < losses.size(); ++s)
      if (!(std::fabs(losses[s] - run.single_losses[s]) <= 1e-5 * std::fabs(run.single_losses[s])))
        return ::testing::AssertionFailure()
               << "rank " << rank << " step " << s << ": loss " << losses[s] << ", one device "
               << run.single_losses[s];
  }
  return ::testing::AssertionSuccess();
}

TEST(TensorParallel, TrainingLossesEqualOneDeviceStepByStepOnAnInMemoryPair) {
  EXPECT_TRUE(equals_one_device(train_tensor_parallel(/*gloo=*/false)));
}

TEST(TensorParallel, TrainingLossesEqualOneDeviceStepByStepOnGloo) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  EXPECT_TRUE(equals_one_device(train_tensor_parallel(/*gloo=*/true)));
}

// Four ranks split into tensor groups {0,1} {2,3} and data groups {0,2} {1,3}: each group's
// all-reduce sums its own members' values alone, and each rank's place in it is in world order.
TEST(TensorDataGroups, EachGroupReducesItsOwnRanksAlone) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  std::vector<std::array<float, 2>> sums(4);
  std::vector<std::array<int, 4>> places(4);
  on_ranks(4, [&](Communicator& comm) {
    const TensorDataGroups groups = split_tensor_data(comm, 2);
    const size_t r = static_cast<size_t>(comm.rank());
    places[r] = {groups.tensor->rank(), groups.tensor->world(), groups.data->rank(),
                 groups.data->world()};
    float tensor_value = static_cast<float>(1 << r), data_value = 10.0f * tensor_value;
    const Tensor t{&tensor_value, DType::f32, {1}}, d{&data_value, DType::f32, {1}};
    // Both in flight at once, as a training step's are.
    CommHandle a = groups.tensor->all_reduce(t, ReduceOp::sum);
    CommHandle b = groups.data->all_reduce(d, ReduceOp::sum);
    a->wait();
    b->wait();
    sums[r] = {tensor_value, data_value};
  });
  for (size_t r = 0; r < 4; ++r) {
    const int replica = static_cast<int>(r) / 2, tensor_rank = static_cast<int>(r) % 2;
    EXPECT_EQ(places[r], (std::array<int, 4>{tensor_rank, 2, replica, 2})) << "rank " << r;
    // Tensor group {0,1}: 1 + 2; {2,3}: 4 + 8. Data group {0,2}: 10 + 40; {1,3}: 20 + 80.
    EXPECT_EQ(sums[r][0], replica == 0 ? 3.0f : 12.0f) << "rank " << r;
    EXPECT_EQ(sums[r][1], tensor_rank == 0 ? 50.0f : 100.0f) << "rank " << r;
  }
}

// Tensor x data parallel training, tp 2 x dp 2 on four Gloo ranks, each replica with batch b:
// every rank's loss is that of one device with batch 2b, step by step.
TEST(TensorParallel, TimesDataParallelTrainingLossesEqualOneDeviceOnFourRanks) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  const ModelConfig cfg = load_model_config("tiny", default_config_dir());
  const int64_t b = 2, seq = 8, steps = 3;
  ReferenceBackend single_backend;
  TrainStep single(single_backend, cfg, 2 * b, seq, /*seed=*/7);
  std::vector<double> single_losses;
  for (int64_t s = 0; s < steps; ++s) {
    single.run();
    single_losses.push_back(single.loss());
  }
  ASSERT_LT(single_losses.back(), single_losses.front());
  std::vector<std::vector<double>> losses(4);
  std::vector<int64_t> heads(4);
  on_ranks(4, [&](Communicator& comm) {
    const TensorDataGroups groups = split_tensor_data(comm, 2);
    ReferenceBackend backend;
    ParallelSpec par;
    par.layout = "tp";
    par.tp = par.dp = 2;
    par.world = 4;
    par.first_bucket_bytes = 4096;
    par.bucket_bytes = 16384;
    const TensorShard shard{2, groups.tensor->rank(), groups.tensor.get()};
    TrainStep step(backend, cfg, b, seq, 7, AdamWArgs{}, DType::f32, groups.data.get(), par,
                   &shard);
    const size_t r = static_cast<size_t>(comm.rank());
    heads[r] = step.model().config().n_heads;
    for (int64_t s = 0; s < steps; ++s) {
      step.run();
      losses[r].push_back(step.loss());
    }
  });
  for (size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(heads[r], cfg.n_heads / 2) << "rank " << r;
    ASSERT_EQ(losses[r].size(), single_losses.size()) << "rank " << r;
    for (size_t s = 0; s < single_losses.size(); ++s)
      EXPECT_NEAR(losses[r][s], single_losses[s], 1e-5 * std::fabs(single_losses[s]))
          << "rank " << r << " step " << s;
  }
}

// Prefill and decode logits of two tensor-parallel ranks are one device's, with the kv heads
// split (tiny: 2 of them) and replicated (one kv head, held by both ranks).
TEST(TensorParallel, PrefillAndDecodeLogitsEqualOneDevice) {
  ModelConfig split = load_model_config("tiny", default_config_dir());
  ModelConfig replicated = split;
  replicated.n_kv_heads = 1;
  for (const ModelConfig& cfg : {split, replicated}) {
    SCOPED_TRACE(cfg.n_kv_heads == 1 ? "kv heads replicated" : "kv heads split");
    ASSERT_EQ(tensor_parallel_problem(cfg, 2), "");
    const int64_t batch = 2, prompt = 12, steps = 3;
    ReferenceBackend single_backend;
    Inference single(single_backend, cfg, batch, prompt, steps, /*seed=*/5);
    const std::vector<float> prefill = download_floats(single_backend, single.prefill());
    std::vector<std::vector<float>> decode;
    for (int64_t s = 0; s < steps; ++s)
      decode.push_back(download_floats(single_backend, single.decode(s)));
    std::vector<double> prefill_diff(2, -1), decode_diff(2, -1);
    on_pair(false, [&](Communicator& comm) {
      ReferenceBackend backend;
      const TensorShard shard{2, comm.rank(), &comm};
      Inference mine(backend, cfg, batch, prompt, steps, 5, DType::f32, &shard);
      const size_t r = static_cast<size_t>(comm.rank());
      prefill_diff[r] = relative_difference(download_floats(backend, mine.prefill()), prefill);
      for (int64_t s = 0; s < steps; ++s)
        decode_diff[r] =
            std::max(decode_diff[r], relative_difference(download_floats(backend, mine.decode(s)),
                                                         decode[static_cast<size_t>(s)]));
    });
    for (size_t r = 0; r < 2; ++r) {
      EXPECT_GE(prefill_diff[r], 0) << "rank " << r;
      EXPECT_LT(prefill_diff[r], 1e-5) << "rank " << r;
      EXPECT_GE(decode_diff[r], 0) << "rank " << r;
      EXPECT_LT(decode_diff[r], 1e-5) << "rank " << r;
    }
  }
}

// A tensor-parallel layout the model cannot take is named with its reason.
TEST(TensorParallel, LayoutsTheModelCannotTakeAreNamed) {
  const ModelConfig cfg = load_model_config("tiny", default_config_dir());  // 4 heads, 2 kv
  EXPECT_EQ(tensor_parallel_problem(cfg, 4), "") << "kv heads replicated on 2 ranks each";
  EXPECT_NE(tensor_parallel_problem(cfg, 3).find("does not divide the 4 attention heads"),
            std::string::npos);
  ModelConfig six = cfg;
  six.n_heads = 12, six.n_kv_heads = 6, six.d_model = 96;
  EXPECT_NE(tensor_parallel_problem(six, 4).find("kv heads"), std::string::npos);
  const ModelConfig shard = tensor_parallel_shard(cfg, 4);
  EXPECT_EQ(shard.n_heads, 1);
  EXPECT_EQ(shard.n_kv_heads, 1);
  EXPECT_EQ(shard.head_dim(), cfg.head_dim());
  EXPECT_EQ(shard_first_kv_head(cfg, 4, 3), 1);
}

// A tensor-parallel entry on the tiny model (4 heads, 2 kv heads) with this "parallel" object.
std::string tp_suite(const std::string& parallel, const std::string& workload = "inference") {
  const std::string sizes = workload == "inference"
                                ? R"("batch": 1, "prompt": 8, "decode_steps": 4)"
                                : R"("batch": 2, "seq": 8)";
  return R"({"name": "tp", "runs": [{"workload": ")" + workload +
         R"(", "model": "tiny", "backends": "reference", )" + sizes + R"(, "parallel": )" +
         parallel + "}]}";
}

TEST_F(CommCli, BadTensorParallelLayoutsAreBadInputNamingTheJsonPath) {
  const struct {
    const char* parallel;
    const char* path;
    const char* says;
  } cases[] = {
      {R"({"layout": "tp", "tp": 3, "virtual": true, "link": {"bytes_per_s": 1e9}})",
       "$.runs[0].parallel.tp", "does not divide the 4 attention heads"},
      {R"({"layout": "tp", "tp": 2})", "$.runs[0].parallel.tp", "1 rank(s) were launched"},
      {R"({"layout": "tp", "tp": 2, "dp": 2})", "$.runs[0].parallel.tp",
       "a world of 4, but 1 rank(s) were launched"},
      {R"({"layout": "tp", "tp": 2, "virtual": true})", "$.runs[0].parallel", "a link"},
  };
  for (const auto& c : cases) {
    const std::string suite = write("bad.json", tp_suite(c.parallel));
    const auto [code, out] = capbench("", "run '" + suite + "' --no-calibrate");
    EXPECT_EQ(code, 2) << c.parallel << "\n" << out;
    EXPECT_NE(out.find(c.path), std::string::npos) << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << out;
  }
}

TEST_F(CommCli, VirtualRanksUnderALauncherAreBadInputNamingTheJsonPath) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  const std::string suite =
      write("virtual.json", tp_suite(R"({"layout": "tp", "tp": 2, "virtual": true,
                                         "link": {"bytes_per_s": 1e9}})"));
  const auto [code, out] = capbench("", "launch -n 2 -- run '" + suite + "' --no-calibrate");
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("$.runs[0].parallel.virtual"), std::string::npos) << out;
}

// One process plays rank 0 of 2: its decode runs the shard (half the heads) and every layer's
// two all-reduces last the given link's time; the key says virtual.
TEST_F(CommCli, VirtualTensorParallelRunPacesItsCollectivesOnTheGivenLink) {
  const std::string suite =
      write("virtual.json", tp_suite(R"({"layout": "tp", "tp": 2, "virtual": true,
                                   "link": {"bytes_per_s": 1e8, "latency_s": 2e-4}})"));
  const auto [code, out] =
      capbench("", "run '" + suite + "' --reps 3 --no-calibrate --out '" + report_ + "'");
  ASSERT_EQ(code, 0) << out;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 1u);
  const RunRecord& r = rep.runs[0];
  ASSERT_EQ(r.status, "ok") << r.reason;
  EXPECT_TRUE(r.key.virtual_ranks);
  EXPECT_EQ(r.key.world, 2);
  EXPECT_NE(r.key.to_string().find("virtual"), std::string::npos);
  const nlohmann::json& ar = r.parallel["tp_collectives"]["all_reduce"];
  // Per repetition: prefill and 4 decode steps, 2 layers, 2 all-reduces each.
  const int64_t calls = ar["calls"].get<int64_t>();
  EXPECT_EQ(calls % (5 * 2 * 2), 0) << calls;
  // Each lasts at least 2 steps of 200 us latency: a decode step can be no shorter than its 4.
  EXPECT_GE(ar["seconds"].get<double>(), static_cast<double>(calls) * 4e-4 * 0.99);
  EXPECT_GE(r.stats.at("decode_step_s").median, 4 * 2 * 2e-4);
  EXPECT_EQ(r.parallel["kv_heads"], "split");
}

// Two real ranks, tensor parallel over c10d Gloo: the report has the layout and the
// tensor-parallel all-reduces, and the run's canary holds.
TEST_F(CommCli, LaunchedTensorParallelRunReportsItsCollectives) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  const RunRecord r =
      launched_one_run(write("tp.json", tp_suite(R"({"layout": "tp"})", "train_step")));
  EXPECT_EQ(r.status, "ok") << r.reason;
  EXPECT_EQ(r.key.parallel_layout, "tp");
  EXPECT_EQ(r.key.tp, 2);
  EXPECT_FALSE(r.key.virtual_ranks);
  // Per step: 2 layers, 2 all-reduces forward and 2 backward.
  EXPECT_EQ(r.parallel["tp_collectives"]["all_reduce"]["calls"].get<int64_t>() % 8, 0);
  EXPECT_FALSE(r.parallel.contains("collectives") && !r.parallel["collectives"].empty());
}

// Four real ranks, tp 2 x dp 2: each replica's tensor all-reduces and the data groups' gradient
// all-reduces both reach the report, and the loss falls.
TEST_F(CommCli, LaunchedTensorTimesDataParallelRunReportsBothGroupsCollectives) {
  std::string why;
  if (!comm_engine_available(&why)) GTEST_SKIP() << why;
  const std::string suite =
      write("tpdp.json",
            tp_suite(R"({"layout": "tp", "tp": 2, "dp": 2, "bucket_mb": 0.01})", "train_step"));
  const auto [code, out] = capbench(
      "", "launch -n 4 -- run '" + suite + "' --reps 2 --no-calibrate --out '" + report_ + "'");
  ASSERT_EQ(code, 0) << out;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 1u);
  const RunRecord& r = rep.runs[0];
  EXPECT_EQ(r.status, "ok") << r.reason;
  EXPECT_EQ(r.key.world, 4);
  EXPECT_EQ(r.key.tp, 2);
  EXPECT_EQ(r.parallel["dp"], 2);
  EXPECT_EQ(r.parallel["tp_collectives"]["all_reduce"]["calls"].get<int64_t>() % 8, 0);
  EXPECT_GT(r.parallel["tp_collectives"]["all_reduce"]["calls"].get<int64_t>(), 0);
  EXPECT_GT(r.parallel["collectives"]["all_reduce"]["calls"].get<int64_t>(), 0);
  EXPECT_TRUE(r.canaries.at(0).passed) << r.canaries.at(0).detail;
}

}  // namespace
}  // namespace capbench
