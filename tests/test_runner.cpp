// The runner in process: the validity verdict on a backend with planted instability, and an
// interrupted suite keeping the runs that finished.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <random>
#include <thread>

#include "backends/forwarding.h"
#include "backends/reference/reference_backend.h"
#include "harness/config_files.h"
#include "harness/interrupt.h"
#include "harness/rates.h"
#include "harness/runner.h"
#include "workloads/model_config.h"

namespace capbench {
namespace {

// The reference backend, with a sleep of `sleep_s` after AdamW in a `fraction` of the steps: a
// machine whose speed really changes from step to step, shifting the median. Each matmul lasts
// at least half a millisecond (it sleeps out the rest), so that a step's time is set by the
// test rather than by other work on a loaded machine: a sleeper that wakes late by a fraction of
// a millisecond moves a step of many such ops by little, where preemption of the reference's
// tiny compute moved a step by 20-80%.
class FlakyBackend final : public ForwardingBackend {
 public:
  FlakyBackend(std::unique_ptr<Backend> inner, double fraction, double sleep_s)
      : ForwardingBackend(*inner),
        owned_(std::move(inner)),
        fraction_(fraction),
        sleep_s_(sleep_s) {}

 protected:
  void around_op(OpId op, const OpCost&, const std::function<void()>& call) override {
    const auto start = std::chrono::steady_clock::now();
    call();
    if (op == OpId::matmul) std::this_thread::sleep_until(start + std::chrono::microseconds(500));
    if (op == OpId::adamw && coin_(rng_) < fraction_)
      std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s_));
  }

 private:
  std::unique_ptr<Backend> owned_;
  double fraction_, sleep_s_;
  std::mt19937_64 rng_{11};
  std::uniform_real_distribution<double> coin_{0, 1};
};

ModelConfig tiny() {
  return load_model_config("tiny", std::string(CAPBENCH_SOURCE_DIR) + "/configs");
}

RunSpec train_spec(const std::string& backend) {
  RunSpec s;
  s.workload = "train_step";
  s.model = tiny();
  s.backend = backend;
  s.shape.batch = 2;
  s.shape.seq = 16;
  s.runner.warmup = 1;
  s.runner.min_reps = 5;
  s.runner.max_reps = 300;
  s.runner.min_time_s = 0.3;
  s.runner.max_time_s = 2.0;
  s.runner.ci_bound = 0.05;
  return s;
}

RunRecord run_on(double fraction, double sleep_s) {
  Registry registry;
  registry.add({"flaky", "cpu", "reference with planted sleeps", false,
                [=](const BackendOptions&) -> std::unique_ptr<Backend> {
                  return std::make_unique<FlakyBackend>(std::make_unique<ReferenceBackend>(),
                                                        fraction, sleep_s);
                }});
  SuiteContext context;
  context.registry = &registry;
  Progress quiet(Progress::Style::silent);
  return execute_run(train_spec("flaky"), context, quiet);
}

// A sleep as long as a step, in 40% of the steps: the series has two typical values and the
// median moves between them. The verdict must say so, however many samples it takes; the same
// backend without the sleeps is valid (so the check can fail both ways). Other work on the
// machine can make a steady run noisy too: it gets three tries, and where it is still not valid
// on a machine loaded beyond its cores (load average above the core count), that half is
// reported skipped with the load, since no run there is steady; on any other machine a verdict
// that fails steady runs fails the test.
TEST(Verdict, PlantedInstabilityIsNotValidWhileTheSteadyRunIs) {
  RunRecord steady = run_on(0.0, 0.0);
  for (int attempt = 1; attempt < 3 && !steady.validity.valid; ++attempt) steady = run_on(0.0, 0.0);
  ASSERT_EQ(steady.status, "ok") << steady.reason;
  const double step = steady.stats.at("step_s").median;
  const RunRecord flaky = run_on(0.4, step);
  ASSERT_EQ(flaky.status, "ok") << flaky.reason;
  EXPECT_FALSE(flaky.validity.valid) << "median " << flaky.stats.at("step_s").median;
  EXPECT_GT(flaky.stats.at("step_s").median_ci_relative(), 0.05);
  if (!steady.validity.valid) {
    double load = 0;
    std::ifstream("/proc/loadavg") >> load;
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    if (load > cores)
      GTEST_SKIP() << "the steady half: this machine is loaded (load average " << load << " on "
                   << cores << " cores), and the steady run was not valid three times: "
                   << steady.validity.reasons.at(0);
  }
  EXPECT_TRUE(steady.validity.valid) << steady.validity.reasons.at(0);
}

// A backend that raises SIGINT's flag from inside its first op: a signal arriving mid-run.
class InterruptingBackend final : public ForwardingBackend {
 public:
  explicit InterruptingBackend(std::unique_ptr<Backend> inner)
      : ForwardingBackend(*inner), owned_(std::move(inner)) {}

 protected:
  void around_op(OpId, const OpCost&, const std::function<void()>& call) override {
    request_interrupt(SIGINT);
    call();
  }

 private:
  std::unique_ptr<Backend> owned_;
};

// A signal during a suite: the runs that finished are kept, the one running and those after it
// are not run, and the report says so.
TEST(Interrupt, SuiteKeepsTheRunsThatFinished) {
  Registry registry;
  registry.add({"reference", "cpu", "oracle", true, [](const BackendOptions&) {
                  return std::unique_ptr<Backend>(new ReferenceBackend());
                }});
  registry.add({"interrupting", "cpu", "signals in its first op", false,
                [](const BackendOptions&) -> std::unique_ptr<Backend> {
                  return std::make_unique<InterruptingBackend>(
                      std::make_unique<ReferenceBackend>());
                }});
  Suite suite;
  suite.name = "interrupt";
  for (const char* backend : {"reference", "interrupting", "reference"}) {
    RunSpec s = train_spec(backend);
    s.runner.min_time_s = 0;
    s.origin = std::string("run on ") + backend;
    suite.runs.push_back(s);
  }
  SuiteContext context;
  context.registry = &registry;
  Progress quiet(Progress::Style::silent);
  const Report report = run_suite(suite, context, quiet);
  request_interrupt(0);
  ASSERT_EQ(report.runs.size(), 1u);
  EXPECT_EQ(report.runs[0].status, "ok");
  EXPECT_EQ(report.runs[0].key.backend, "reference");
  ASSERT_TRUE(report.interrupted.is_object());
  EXPECT_EQ(report.interrupted["signal"], "SIGINT");
  EXPECT_EQ(report.interrupted["runs_not_run"], 2);
  EXPECT_NE(report.interrupted["during"].get<std::string>().find("run on interrupting"),
            std::string::npos);
}

// A rank drives the accelerator of its local rank: the ordinal the suite was calibrated for
// reaches every backend the run makes (each rank of a host on its own GPU, the one its NCCL
// communicator uses).
TEST(Ranks, EveryBackendOfARunGetsTheRanksDeviceOrdinal) {
  std::vector<int> ordinals;
  Registry registry;
  registry.add({"recording", "cpu", "reference that records its options", false,
                [&](const BackendOptions& o) -> std::unique_ptr<Backend> {
                  ordinals.push_back(o.device_ordinal);
                  return std::make_unique<ReferenceBackend>();
                }});
  Suite suite;
  suite.name = "ordinal";
  RunSpec spec = train_spec("recording");
  spec.runner.min_time_s = 0;
  spec.runner.max_reps = 5;
  suite.runs.push_back(spec);
  const auto quiet_call = [](const std::string&) {};
  SuiteContext context =
      calibrate_for_suite(suite, registry, 0, /*device_ordinal=*/3,
                          /*calibrate=*/false, quiet_call, quiet_call, quiet_call);
  EXPECT_EQ(context.device_ordinal, 3);
  EXPECT_EQ(context.backend_options(2).threads, 2);
  Progress quiet(Progress::Style::silent);
  const RunRecord r = execute_run(spec, context, quiet);
  ASSERT_EQ(r.status, "ok") << r.reason;
  ASSERT_FALSE(ordinals.empty());
  for (int ordinal : ordinals) EXPECT_EQ(ordinal, 3);
}

}  // namespace
}  // namespace capbench
