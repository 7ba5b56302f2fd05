// Graph capture on the CPU: a recording decorator stands in for CUDA graphs (it keeps each op
// with its arguments while capturing, and runs them again on replay), so the workload's side of
// the contract - a captured step depends on nothing but device memory, and copies nothing to or
// from the host - is checked on every backend of the build, without a GPU. A train step whose
// AdamW step count stayed on the host would replay step 2's bias correction forever; a decode
// step whose position were captured wrong would read the wrong cache rows.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "backends/comm/link_model.h"
#include "backends/forwarding.h"
#include "harness/config_files.h"
#include "harness/suite.h"
#include "test_util.h"
#include "workloads/inference.h"
#include "workloads/train_step.h"

namespace capbench::testing {
namespace {

class CaptureRecorder final : public ForwardingBackend {
 public:
  explicit CaptureRecorder(Backend& inner) : ForwardingBackend(inner) {}

  Support can_capture() const override { return Support::yes(); }
  void begin_capture() override {
    if (capturing_) throw std::logic_error("nested capture");
    capturing_ = true;
    recording_.clear();
  }
  int end_capture() override {
    capturing_ = false;
    graphs_.push_back(std::move(recording_));
    recording_.clear();
    return static_cast<int>(graphs_.size()) - 1;
  }
  void replay(int graph) override {
    ++replays_;
    for (const auto& call : graphs_.at(static_cast<size_t>(graph))) call();
  }

  void fill(const Tensor& t, float value) override {
    if (capturing_) return recording_.push_back([this, t, value] { inner_.fill(t, value); });
    inner_.fill(t, value);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (capturing_)
      return recording_.push_back([this, dst, src, bytes] { inner_.copy(dst, src, bytes); });
    inner_.copy(dst, src, bytes);
  }
  // A host copy or a synchronisation inside a step cannot be captured (and would stall it).
  void copy_to_device(void* dst, const void* src, size_t bytes) override {
    refuse_while_capturing("copy_to_device");
    inner_.copy_to_device(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    refuse_while_capturing("copy_to_host");
    inner_.copy_to_host(dst, src, bytes);
  }
  void synchronize() override {
    refuse_while_capturing("synchronize");
    inner_.synchronize();
  }
  // Pacing is on the device's timeline: a CUDA graph captures its kernels with the ops.
  void stamp(int slot) override {
    if (capturing_) return recording_.push_back([this, slot] { inner_.stamp(slot); });
    inner_.stamp(slot);
  }
  void pace(int slot, const PaceRule& rule) override {
    if (capturing_) return recording_.push_back([this, slot, rule] { inner_.pace(slot, rule); });
    inner_.pace(slot, rule);
  }

  size_t graphs() const { return graphs_.size(); }
  int replays() const { return replays_; }

 protected:
  void around_op(OpId, const OpCost&, const std::function<void()>& call) override {
    if (capturing_)
      recording_.push_back(call);  // the call holds copies of the op's arguments
    else
      call();
  }

 private:
  void refuse_while_capturing(const char* what) const {
    if (capturing_) throw std::logic_error(std::string(what) + " inside a captured step");
  }
  bool capturing_ = false;
  std::vector<std::function<void()>> recording_;
  std::vector<std::vector<std::function<void()>>> graphs_;
  int replays_ = 0;
};

ModelConfig tiny() {
  return load_model_config("tiny", default_config_dir());
}

class Graphs : public BackendFixture {};

TEST_P(Graphs, ReplayedTrainStepsFollowEagerOnes) {
  AdamWArgs opt;
  opt.lr = 1e-2f;
  TrainStep eager(*be_, tiny(), 2, 8, 3, opt);
  const std::vector<double> expected = run_steps(eager, 8);

  CaptureRecorder recorder(*be_);
  TrainStep graphed(recorder, tiny(), 2, 8, 3, opt);
  ASSERT_TRUE(graphed.use_graphs(true));
  const std::vector<double> got = run_steps(graphed, 8);
  EXPECT_EQ(recorder.graphs(), 1u);
  EXPECT_EQ(recorder.replays(), 7) << "step 1 eager, step 2 captured and replayed, 3-8 replayed";
  EXPECT_EQ(graphed.steps_taken(), 8) << "AdamW's step count must advance on every replay";
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(got[i], expected[i], 1e-6 * std::fabs(expected[i])) << "step " << i + 1;
}

TEST_P(Graphs, ReplayedDecodeStepsGiveEagerLogits) {
  const int64_t batch = 2, prompt = 5, steps = 4;
  Inference eager(*be_, tiny(), batch, prompt, steps, 7);
  CaptureRecorder recorder(*be_);
  Inference graphed(recorder, tiny(), batch, prompt, steps, 7);
  ASSERT_TRUE(graphed.use_graphs(true));
  for (int pass = 0; pass < 3; ++pass) {  // eager, captured, replayed
    SCOPED_TRACE("pass " + std::to_string(pass));
    EXPECT_EQ(download_floats(recorder, graphed.prefill()), download_floats(*be_, eager.prefill()));
    for (int64_t s = 0; s < steps; ++s)
      EXPECT_EQ(download_floats(recorder, graphed.decode(s)),
                download_floats(*be_, eager.decode(s)))
          << "decode step " << s;
  }
  EXPECT_EQ(recorder.graphs(), static_cast<size_t>(1 + steps)) << "prefill + one per position";
  EXPECT_EQ(recorder.replays(), 2 * (1 + steps));
}

// Virtual tensor-parallel ranks queue their collectives on the backend's timeline, so a captured
// decode step holds them: replayed steps give the eager run's logits and last at least their
// all-reduces' link-model time. Collectives on the host timeline turn graphs off instead.
TEST_P(Graphs, VirtualTensorParallelCollectivesAreReplayedWithTheirStep) {
  if (be_->pace_slots() <= 0) GTEST_SKIP() << "this backend cannot pace";
  LinkModel link;
  link.link_bytes_per_s = 1e12;
  link.latency_s = 5e-4;  // an all-reduce over 2 ranks: 2 ring steps, 1 ms
  const ModelConfig cfg = tiny();
  const int64_t batch = 1, prompt = 4, steps = 3;
  VirtualCommunicator eager_ranks(2, link, be_.get());
  const TensorShard eager_shard{2, 0, &eager_ranks};
  Inference eager(*be_, cfg, batch, prompt, steps, 7, DType::f32, &eager_shard);
  CaptureRecorder recorder(*be_);
  VirtualCommunicator graphed_ranks(2, link, &recorder);
  ASSERT_TRUE(graphed_ranks.on_backend_timeline());
  const TensorShard shard{2, 0, &graphed_ranks};
  Inference graphed(recorder, cfg, batch, prompt, steps, 7, DType::f32, &shard);
  ASSERT_TRUE(graphed.use_graphs(true));
  const double least_step_s = static_cast<double>(cfg.n_layers) * 2 * 1e-3;
  for (int pass = 0; pass < 3; ++pass) {  // eager, captured, replayed
    SCOPED_TRACE("pass " + std::to_string(pass));
    EXPECT_EQ(download_floats(recorder, graphed.prefill()), download_floats(*be_, eager.prefill()));
    for (int64_t s = 0; s < steps; ++s) {
      const double t = time_synchronized(recorder, [&] { graphed.decode(s); });
      EXPECT_GE(t, least_step_s * 0.99) << "decode step " << s;
      EXPECT_EQ(download_floats(recorder, graphed.decode(s)),
                download_floats(*be_, eager.decode(s)))
          << "decode step " << s;
    }
  }
  EXPECT_EQ(recorder.graphs(), static_cast<size_t>(1 + steps));

  VirtualCommunicator host_ranks(2, link);
  const TensorShard host_shard{2, 0, &host_ranks};
  Inference on_host(recorder, cfg, batch, prompt, steps, 7, DType::f32, &host_shard);
  EXPECT_FALSE(on_host.use_graphs(true));
}

TEST_P(Graphs, OffWhereTheBackendCannotCapture) {
  TrainStep work(*be_, tiny(), 2, 8, 3);
  const Support can = be_->can_capture();
  EXPECT_EQ(work.use_graphs(true), can.ok);
  if (!can.ok) {
    EXPECT_FALSE(can.reason.empty());
  }
  EXPECT_FALSE(work.use_graphs(false));
  EXPECT_THROW(be_->begin_capture(), std::logic_error);  // CPU backends: none can
}

std::vector<std::string> cpu_backends() {
  std::vector<std::string> out;
  for (const BackendEntry& e : builtin_registry().entries())
    if (e.device_kind == "cpu") out.push_back(e.name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, Graphs, ::testing::ValuesIn(cpu_backends()), backend_test_name);

}  // namespace
}  // namespace capbench::testing
