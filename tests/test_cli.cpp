// The command line as a user meets it: bad input gives exit code 2 and one message naming the
// file, the JSON path and what was expected, and leaves no report behind; a good run writes a
// whole report.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "harness/config_files.h"
#include "harness/history.h"
#include "harness/report.h"
#include "test_util.h"
#include "workloads/inference.h"

namespace capbench {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string output;  // stdout and stderr together
};

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_folder("capbench_cli");
    fs::create_directories(dir_ / "models");
    fs::copy_file(fs::path(CAPBENCH_SOURCE_DIR) / "configs/models/tiny.json",
                  dir_ / "models/tiny.json");
    report_ = (dir_ / "report.json").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  // Runs capbench with the test's own config folder and cache, and --out into the test folder.
  // `shell_prefix` runs first in the same shell (a ulimit, say).
  Result run(const std::string& args, const std::string& shell_prefix = "") {
    const std::string cmd = shell_prefix + "ASAN_OPTIONS=allocator_may_return_null=1 " +
                            "CAPBENCH_CACHE_DIR='" + (dir_ / "cache").string() + "' '" +
                            CAPBENCH_BINARY + "' " + args + " 2>&1";
    Result r;
    std::tie(r.code, r.output) = testing::run_command(cmd);
    return r;
  }
  Result run_suite(const std::string& suite_file, const std::string& extra = "") {
    return run("run '" + suite_file + "' --config-dir '" + dir_.string() + "' --out '" + report_ +
               "' --no-calibrate " + extra);
  }
  std::string suite_with(const std::string& run_entry) {
    return write("suite.json", R"({"name": "t", "runs": [)" + run_entry + "]}");
  }

  // Exit code 2, one line naming file, path and expectation; no report written.
  ::testing::AssertionResult is_bad_input(const Result& r, const std::string& file,
                                          const std::string& path, const std::string& expected) {
    auto fail = [&](const std::string& why) {
      return ::testing::AssertionFailure() << why << "; output: " << r.output;
    };
    if (r.code != 2) return fail("exit code " + std::to_string(r.code) + ", expected 2");
    if (r.output.find(file) == std::string::npos) return fail("file " + file + " not named");
    if (r.output.find(path) == std::string::npos) return fail("JSON path " + path + " not named");
    if (r.output.find(expected) == std::string::npos) return fail("\"" + expected + "\" missing");
    if (std::count(r.output.begin(), r.output.end(), '\n') != 1) return fail("not one line");
    if (fs::exists(report_)) return fail("a report was left behind");
    for (const auto& entry : fs::directory_iterator(dir_))
      if (entry.path().filename().string().rfind("." + fs::path(report_).filename().string(), 0) ==
          0)
        return fail("a temporary report was left behind");
    return ::testing::AssertionSuccess();
  }

  RunRecord failed_allocation_then_good_run(const std::string& backend);

  fs::path dir_;
  std::string report_;
};

const char* kGoodTrain =
    R"({"workload": "train_step", "model": "tiny", "backends": "reference", "batch": 2, "seq": 8})";

TEST_F(Cli, UnknownBackend) {
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "tiny", "backends": ["warp-drive"], "batch": 2, "seq": 8})");
  EXPECT_TRUE(
      is_bad_input(run_suite(f), f, "$.runs[0].backends", "expected a backend of this build"));
}

TEST_F(Cli, UnknownModel) {
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "gpt-9", "backends": "reference", "batch": 2, "seq": 8})");
  EXPECT_TRUE(is_bad_input(run_suite(f), f, "$.runs[0].model", "expected a model in"));
}

TEST_F(Cli, UnknownWorkload) {
  const std::string f = suite_with(
      R"({"workload": "juggle", "model": "tiny", "backends": "reference", "batch": 2, "seq": 8})");
  EXPECT_TRUE(
      is_bad_input(run_suite(f), f, "$.runs[0].workload", "a workload (train_step, inference)"));
}

TEST_F(Cli, MissingField) {
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "tiny", "backends": "reference", "batch": 2})");
  EXPECT_TRUE(is_bad_input(run_suite(f), f, "$.runs[0].seq", "field is missing"));
}

TEST_F(Cli, MistypedField) {
  const std::string f = suite_with(
      R"({"workload": "inference", "model": "tiny", "backends": "reference", "batch": "two", "prompt": 4, "decode_steps": 2})");
  EXPECT_TRUE(
      is_bad_input(run_suite(f), f, "$.runs[0].batch", "expected an integer in [1, 65536]"));
}

TEST_F(Cli, NegativeSize) {
  const std::string f = suite_with(
      R"({"workload": "inference", "model": "tiny", "backends": "reference", "batch": 1, "prompt": -4, "decode_steps": 2})");
  EXPECT_TRUE(is_bad_input(run_suite(f), f, "$.runs[0].prompt", "expected an integer in [1, "));
}

TEST_F(Cli, ZeroSize) {
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "tiny", "backends": "reference", "batch": 2, "seq": 0})");
  EXPECT_TRUE(is_bad_input(run_suite(f), f, "$.runs[0].seq", "expected an integer in [1, "));
}

TEST_F(Cli, SequenceLongerThanMaxSeq) {
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "tiny", "backends": "reference", "batch": 2, "seq": 65})");
  EXPECT_TRUE(is_bad_input(run_suite(f), f, "$.runs[0].seq", "max_seq of model tiny (64), got 65"));
}

TEST_F(Cli, PromptPlusDecodeLongerThanMaxSeq) {
  const std::string f = suite_with(
      R"({"workload": "inference", "model": "tiny", "backends": "reference", "batch": 1, "prompt": 60, "decode_steps": 5})");
  EXPECT_TRUE(
      is_bad_input(run_suite(f), f, "$.runs[0].prompt", "max_seq of model tiny (64), got 65"));
}

TEST_F(Cli, UnreadableFile) {
  const std::string f = (dir_ / "does-not-exist.json").string();
  EXPECT_TRUE(is_bad_input(run_suite(f), f, ": $:", "expected a readable file"));
}

TEST_F(Cli, NotJson) {
  const std::string f = write("suite.json", "{\"name\": \"t\", \"runs\": [");
  EXPECT_TRUE(is_bad_input(run_suite(f), f, ": $:", "expected valid JSON"));
}

TEST_F(Cli, BadModelFileNamesTheModelFile) {
  write(
      "models/broken.json",
      R"({"d_model": 64, "n_layers": 2, "n_heads": 0, "n_kv_heads": 2, "d_ff": 8, "vocab": 10, "max_seq": 8})");
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "broken", "backends": "reference", "batch": 2, "seq": 8})");
  EXPECT_TRUE(is_bad_input(run_suite(f), (dir_ / "models/broken.json").string(), "$.n_heads",
                           "expected an integer in [1, 1024]"));
}

TEST_F(Cli, IndivisibleHeadsAreRejected) {
  write(
      "models/odd.json",
      R"({"d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 3, "d_ff": 8, "vocab": 10, "max_seq": 8})");
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "odd", "backends": "reference", "batch": 2, "seq": 8})");
  EXPECT_TRUE(is_bad_input(run_suite(f), "odd.json", "$.n_kv_heads", "a divisor of n_heads"));
}

TEST_F(Cli, BadOverrides) {
  const std::string f = suite_with(kGoodTrain);
  for (const char* args :
       {"--backend warp-drive", "--batch 0", "--seq -3", "--workload juggle", "--dtype fp8",
        "--dtype fp16", "--seq 65", "--model nosuch", "--threads -3", "--seed -1", "--ci-bound 0",
        "--warmup -1", "--min-time -1", "--reps 0", "--batch 1152921504606846976"}) {
    const Result r = run_suite(f, args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << args << ": " << r.output;
    EXPECT_FALSE(fs::exists(report_)) << args;
  }
}

// A layer slice's size is checked where it is given: 0, or more layers than the model has.
TEST_F(Cli, BadLayersAreBadInput) {
  for (const char* layers : {"0", "3", "\"two\""}) {
    const std::string f = suite_with(
        std::string(R"({"workload": "train_step", "model": "tiny", "backends": "reference", )") +
        R"("batch": 2, "seq": 8, "on_cpu": {"layers": )" + layers + "}}");
    EXPECT_TRUE(is_bad_input(run_suite(f), f, "$.runs[0].on_cpu.layers", "an integer in [1, 2]"))
        << layers;
  }
  const std::string f = suite_with(kGoodTrain);
  for (const char* args : {"--layers 0", "--layers 3"}) {
    const Result r = run_suite(f, args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_NE(r.output.find("--layers"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(report_)) << args;
  }
}

// A slice of 1 of a model's 3 layers runs that layer at the model's real dimensions, with the
// embedding and head, and the report extrapolates its times to all 3 layers, phase by phase,
// by the formula it states.
TEST_F(Cli, LayerSliceHasTheRealDimensionsAndExtrapolates) {
  write(
      "models/three.json",
      R"({"d_model": 96, "n_layers": 3, "n_heads": 4, "n_kv_heads": 2, "d_ff": 160, "vocab": 320, "max_seq": 64})");
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "three", "backends": "reference", "batch": 2, "seq": 16, "on_cpu": {"layers": 1}},)"
      R"({"workload": "inference", "model": "three", "backends": "reference", "batch": 1, "prompt": 8, "decode_steps": 4, "on_cpu": {"layers": 1}})");
  const Result r = run_suite(f, "--reps 3 --warmup 1");
  ASSERT_EQ(r.code, 0) << r.output;
  const ModelConfig three = load_model_config("three", dir_.string());
  ModelConfig one = three;
  one.n_layers = 1;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 2u);
  for (const RunRecord& run : rep.runs) {
    ASSERT_EQ(run.status, "ok") << run.reason;
    EXPECT_EQ(run.key.model, "three (1 of 3 layers)");
    // The real dimensions: the slice's parameters are one layer of the model's, plus its
    // embedding, norm and head.
    const nlohmann::json& x = run.extrapolation;
    ASSERT_TRUE(x.is_object()) << run.key.workload;
    EXPECT_EQ(x["parameters_run"].get<int64_t>(), param_count(one));
    EXPECT_EQ(x["parameters"].get<int64_t>(), param_count(three));
    EXPECT_EQ(x["layers"].get<int>(), 3);
    EXPECT_EQ(x["layers_run"].get<int>(), 1);
    EXPECT_NE(x["formula"].get<std::string>().find("share_layers x 3/1"), std::string::npos);
    for (const auto& [phase, p] : x["phases"].items()) {
      const double other = p["share_other"], layers = p["share_layers"],
                   params = p["share_parameters"];
      EXPECT_NEAR(other + layers + params, 1.0, 1e-9) << phase;
      EXPECT_GT(layers, 0.0) << phase << ": the layer's ops were timed as the layers'";
      const double factor =
          other + 3 * layers +
          params * static_cast<double>(param_count(three)) / static_cast<double>(param_count(one));
      EXPECT_NEAR(p["factor"].get<double>(), factor, 1e-9 * factor) << phase;
      const std::string series = phase + "_s";
      EXPECT_NEAR(x["seconds"][series].get<double>(), run.stats.at(series).median * factor,
                  1e-9 * factor)
          << phase;
    }
    if (run.key.workload == "train_step") {
      EXPECT_GT(x["phases"]["step"]["share_parameters"].get<double>(), 0.0)
          << "the optimizer step is timed as the parameters'";
      EXPECT_NEAR(x["metrics"]["step_ms"].get<double>(), x["seconds"]["step_s"].get<double>() * 1e3,
                  1e-9);
    } else {
      EXPECT_DOUBLE_EQ(x["phases"]["decode_step"]["share_parameters"].get<double>(), 0.0);
      EXPECT_TRUE(x["metrics"].contains("tpot_ms"));
    }
  }
  EXPECT_NE(r.output.find("whole model three (3 layers, extrapolated from 1)"), std::string::npos)
      << r.output;
}

TEST_F(Cli, FidelityBadInput) {
  for (const char* args : {"fidelity --backend warp-drive", "fidelity --reps 2"}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << args << ": " << r.output;
  }
}

// Where the report cannot be written is found before any run, not after all of them.
TEST_F(Cli, UnwritableOutputIsBadInputBeforeAnyRun) {
  const std::string f = suite_with(kGoodTrain);
  fs::create_directories(dir_ / "a_folder");
  fs::create_symlink(dir_ / "elsewhere.json", dir_ / "link.json");
  for (const std::string& out :
       {(dir_ / "a_folder").string(), (dir_ / "link.json").string(), std::string("/dev/null"),
        std::string("/proc/capbench-report.json"), (dir_ / "no/such/folder/r.json").string()}) {
    const Result r = run("run '" + f + "' --config-dir '" + dir_.string() + "' --out '" + out +
                         "' --no-calibrate --reps 1");
    EXPECT_EQ(r.code, 2) << out << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << out << ": " << r.output;
    EXPECT_EQ(r.output.find("train_step"), std::string::npos) << "nothing ran: " << r.output;
  }
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere.json")) << "nothing written through the link";
}

// The temporary report is a new, unique file: a link planted where a fixed name would be is
// never written through, and nothing is left behind.
TEST_F(Cli, TemporaryReportIsUniqueAndLeavesNothingBehind) {
  const std::string victim = write("victim.txt", "untouched");
  fs::create_symlink(victim, report_ + ".tmp");
  ASSERT_EQ(run_suite(suite_with(kGoodTrain), "--reps 1").code, 0);
  EXPECT_EQ(read_report(report_).runs.size(), 1u);
  std::ifstream in(victim);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "untouched");
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_NE(entry.path().filename().string().rfind(".r.json", 0), 0u) << entry.path();
}

TEST_F(Cli, OutputThatWouldOverwriteTheInputIsRefused) {
  ASSERT_EQ(run_suite(suite_with(kGoodTrain), "--reps 1").code, 0);
  const std::string before = [&] {
    std::ifstream in(report_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  for (const std::string& args :
       {"report '" + report_ + "' --html '" + report_ + "'",
        "compare '" + report_ + "' '" + report_ + "' --out '" + report_ + "'"}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
  }
  std::ifstream in(report_);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), before);
}

// A run whose loss becomes NaN fails its canary, and its report, NaN and all, is read by every
// tool: one bad run never costs the others.
TEST_F(Cli, ReportWithNonFiniteValuesIsReadByEveryTool) {
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "tiny", "backends": "reference", "batch": 2, "seq": 8, "learning_rate": 1e30}, )" +
      std::string(kGoodTrain));
  const Result r = run_suite(f, "--reps 3");
  ASSERT_EQ(r.code, 1) << r.output;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 2u);
  EXPECT_EQ(rep.runs[0].status, "failed");
  EXPECT_TRUE(std::isnan(rep.runs[0].canaries.at(0).values.back()));
  const std::string db = (dir_ / "h.sqlite").string();
  for (const std::string& args :
       {"show '" + report_ + "'", "compare '" + report_ + "' '" + report_ + "'",
        "report '" + report_ + "' --html '" + (dir_ / "r.html").string() + "'",
        "history add '" + report_ + "' --db '" + db + "'"})
    EXPECT_EQ(run(args).code, 0) << args;
}

// Several jobs adding to one history at once: every row is stored, none fails on the lock.
TEST_F(Cli, ConcurrentHistoryAddsLoseNothing) {
  ASSERT_EQ(run_suite(suite_with(kGoodTrain), "--reps 1").code, 0);
  nlohmann::json doc = nlohmann::json::parse(std::ifstream(report_));
  const int writers = 8;
  std::string script;
  for (int i = 0; i < writers; ++i) {
    doc["created_utc"] = "2026-01-0" + std::to_string(i + 1) + "T00:00:00Z";
    const std::string path = write("r" + std::to_string(i) + ".json", doc.dump());
    script += "'" + std::string(CAPBENCH_BINARY) + "' history add '" + path + "' --db '" +
              (dir_ / "h.sqlite").string() + "' > /dev/null 2>&1 || echo FAILED & ";
  }
  const auto [code, out] =
      testing::run_command("CAPBENCH_KEEP_BLAS=1 sh -c \"" + script + "wait\"");
  EXPECT_EQ(out.find("FAILED"), std::string::npos) << out;
  const std::vector<HistorySeries> series =
      history_series((dir_ / "h.sqlite").string(), OutlierRule{});
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series[0].points.size(), static_cast<size_t>(writers));
  EXPECT_EQ(run("history show --db '" + (dir_ / "h.sqlite").string() + "' --window 0").code, 2);
}

// A file name or a string with bytes that are not UTF-8, or with a newline, still gets one line.
TEST_F(Cli, OddBytesInNamesAndStringsGiveOneLine) {
  const std::string odd = write("suite\xff\nname.json", "{\"runs\": 5}");
  const std::string with_newline = suite_with(
      R"({"workload": "train\nstep", "model": "tiny", "backends": "reference", "batch": 2, "seq": 8})");
  for (const std::string& f : {odd, with_newline}) {
    const Result r = run_suite(f);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

// SIGINT in the middle of a suite: the report holds the runs that finished and says it was
// interrupted, and the exit code is 128 + SIGINT. The signal is sent once the first run has
// ended (its progress line), not after a fixed delay that a loaded machine may spend loading.
TEST_F(Cli, InterruptedSuiteWritesTheRunsThatFinished) {
  auto entry = [](int seq) {
    return R"({"workload": "train_step", "model": "tiny", "backends": "reference", "batch": 2, "seq": )" +
           std::to_string(seq) + R"(, "min_time_s": 2.5, "max_time_s": 2.5})";
  };
  const std::string f = suite_with(entry(8) + ", " + entry(9) + ", " + entry(10));
  const std::string log = (dir_ / "run.log").string();
  const std::string script = write(
      "interrupt.sh", "CAPBENCH_CACHE_DIR='" + (dir_ / "cache").string() + "' '" + CAPBENCH_BINARY +
                          "' run '" + f + "' --config-dir '" + dir_.string() + "' --out '" +
                          report_ + "' --no-calibrate >'" + log +
                          "' 2>&1 &\npid=$!\nfor i in $(seq 1200); do grep -q '^\\[1/3\\]' '" +
                          log + "' && break; sleep 0.1; done\nkill -INT $pid\nwait $pid\n" +
                          "code=$?\ncat '" + log + "'\nexit $code\n");
  const auto [code, output] = testing::run_command("bash '" + script + "' 2>&1");
  EXPECT_EQ(code, 130) << output;
  const Report rep = read_report(report_);
  ASSERT_TRUE(rep.interrupted.is_object()) << output;
  EXPECT_GE(rep.runs.size(), 1u) << "the first run had finished";
  EXPECT_LE(rep.runs.size(), 2u);
  EXPECT_EQ(rep.interrupted["runs_not_run"].get<size_t>(), 3 - rep.runs.size());
  for (const RunRecord& run : rep.runs) EXPECT_EQ(run.status, "ok");
}

TEST_F(Cli, UnknownFlagIsBadInput) {
  const Result r = run("run --no-such-flag");
  EXPECT_EQ(r.code, 2) << r.output;
}

TEST_F(Cli, GoodRunWritesAWholeReport) {
  const std::string f = suite_with(
      std::string(kGoodTrain) +
      R"(, {"workload": "inference", "model": "tiny", "backends": "reference", "batch": 1, "prompt": 5, "decode_steps": 3})");
  const Result r = run_suite(f, "--reps 3 --warmup 1");
  ASSERT_EQ(r.code, 0) << r.output;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 2u);
  for (const RunRecord& run : rep.runs) {
    EXPECT_EQ(run.status, "ok") << run.reason;
    EXPECT_EQ(run.stats.at(run.primary).n, run.key.workload == "train_step" ? 3 : 9);
    ASSERT_FALSE(run.canaries.empty());
    EXPECT_TRUE(run.canaries[0].passed) << run.canaries[0].detail;
    EXPECT_FALSE(run.ops.empty());
    EXPECT_GT(run.metrics.count("tokens_per_s") + run.metrics.count("decode_tokens_per_s"), 0u);
  }
  EXPECT_EQ(rep.schema_version, 1);
  EXPECT_NE(r.output.find("reference"), std::string::npos) << "the table names the backend";
}

// A ~550 GB model on a machine that has far less: skipped as not fitting before anything is
// allocated (no allocation may be attempted, or the machine could thrash), and the next run
// still happens.
TEST_F(Cli, RunLargerThanTheMachineIsSkippedBeforeAllocating) {
  write(
      "models/huge.json",
      R"({"d_model": 65536, "n_layers": 1, "n_heads": 512, "n_kv_heads": 512, "d_ff": 64, "vocab": 1000000, "max_seq": 64})");
  const std::string f = suite_with(
      R"({"workload": "inference", "model": "huge", "backends": "reference", "batch": 1, "prompt": 4, "decode_steps": 1}, )" +
      std::string(kGoodTrain));
  const Result r = run_suite(f, "--reps 2");
  EXPECT_EQ(r.code, 0) << r.output;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 2u);
  EXPECT_EQ(rep.runs[0].status, "skipped");
  EXPECT_NE(rep.runs[0].reason.find("does not fit this device: needs 593.10 GB"), std::string::npos)
      << rep.runs[0].reason;
  EXPECT_EQ(rep.runs[0].memory.at("footprint_bytes"),
            Inference::footprint_bytes(load_model_config((dir_ / "models/huge.json").string(), ""),
                                       1, 4, 1, DType::f32));
  EXPECT_EQ(rep.runs[1].status, "ok") << rep.runs[1].reason;
}

// A model that fits the machine but not the process (its address space limited to 3 GB; the
// model needs 8): the allocation fails, the run is recorded as failed (exit code 1), and the
// next run still happens. Returns the failed run.
RunRecord Cli::failed_allocation_then_good_run(const std::string& backend) {
  write(
      "models/big.json",
      R"({"d_model": 4096, "n_layers": 1, "n_heads": 32, "n_kv_heads": 32, "d_ff": 64, "vocab": 250000, "max_seq": 64})");
  const std::string f =
      suite_with(R"({"workload": "inference", "model": "big", "backends": ")" + backend +
                 R"(", "batch": 1, "prompt": 4, "decode_steps": 1}, )" + std::string(kGoodTrain));
  const Result r = run("run '" + f + "' --config-dir '" + dir_.string() + "' --out '" + report_ +
                           "' --no-calibrate --reps 2",
                       "ulimit -v 3000000; ");
  EXPECT_EQ(r.code, 1) << "a failed run makes the exit code 1: " << r.output;
  const Report rep = read_report(report_);
  EXPECT_EQ(rep.runs.size(), 2u);
  EXPECT_EQ(rep.runs.at(1).status, "ok") << rep.runs.at(1).reason;
  EXPECT_EQ(rep.runs.at(0).status, "failed");
  return rep.runs.at(0);
}

// AddressSanitizer reserves terabytes of address space for its shadow memory: it cannot start
// under an address-space limit.
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_ADDRESS_LIMIT() GTEST_SKIP() << "AddressSanitizer cannot run under ulimit -v"
#else
#define SKIP_UNDER_ADDRESS_LIMIT()
#endif

TEST_F(Cli, FailedRunIsRecordedAndTheSuiteGoesOn) {
  SKIP_UNDER_ADDRESS_LIMIT();
  EXPECT_EQ(failed_allocation_then_good_run("reference").reason, "out of memory");
}

TEST_F(Cli, LibraryOutOfMemoryIsOneLineAndTheSuiteGoesOn) {
  SKIP_UNDER_ADDRESS_LIMIT();
  // libtorch's allocator fails with a message plus a C++ backtrace: the reason keeps the
  // message's first line.
  if (!builtin_registry().find("torch")) GTEST_SKIP() << "no torch backend in this build";
  const std::string reason = failed_allocation_then_good_run("torch").reason;
  EXPECT_NE(reason.find("memory"), std::string::npos) << reason;
  EXPECT_EQ(reason.find('\n'), std::string::npos) << reason;
}

TEST_F(Cli, GraphUseAndMemoryPeakAreRecordedPerRun) {
  const std::string f =
      suite_with(std::string(kGoodTrain) + ", " +
                 R"({"workload": "inference", "model": "tiny", "backends": )"
                 R"("reference", "prompt": 5, "decode_steps": 3, "graphs": false})");
  ASSERT_EQ(run_suite(f, "--reps 2").code, 0);
  Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 2u);
  // The reference backend cannot capture: asked for graphs by default, ran without, says why.
  const nlohmann::json& train = rep.runs[0].device.at("graphs");
  EXPECT_TRUE(train.at("requested").get<bool>());
  EXPECT_FALSE(train.at("used").get<bool>());
  EXPECT_NE(train.at("reason").get<std::string>().find("no graph capture"), std::string::npos);
  EXPECT_FALSE(rep.runs[1].device.at("graphs").at("requested").get<bool>());
  for (const RunRecord& run : rep.runs) {
    // Every buffer of the run goes through the profiler's alloc: at least the footprint the
    // workload declares, and not much more (AdamW's step counter, token buffers).
    const double peak = run.memory.at("allocated_peak_bytes");
    const double total = run.memory.at("total_bytes");
    EXPECT_GE(peak, total) << run.key.workload;
    EXPECT_LT(peak, 1.5 * total) << run.key.workload;
    EXPECT_EQ(run.memory.count("device_peak_bytes"), 0u) << "CPU backends cannot tell";
  }
  ASSERT_EQ(run_suite(suite_with(kGoodTrain), "--reps 2 --no-graphs").code, 0);
  rep = read_report(report_);
  EXPECT_FALSE(rep.runs.at(0).device.at("graphs").at("requested").get<bool>());
  EXPECT_NE(rep.runs.at(0).device.at("graphs").at("reason").get<std::string>().find("--no-graphs"),
            std::string::npos);
}

TEST_F(Cli, GraphsMustBeABoolean) {
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "tiny", "backends": "reference", "seq": 8, "graphs": "yes"})");
  EXPECT_TRUE(is_bad_input(run_suite(f), "suite.json", "$.runs[0].graphs", "true or false"));
}

TEST_F(Cli, BackendUnavailableHereIsASkippedRunWithTheReason) {
  const UnavailableBackend* cuda = builtin_registry().unavailable("torch:cuda");
  if (!cuda) GTEST_SKIP() << "torch:cuda runs here";
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "tiny", "backends": ["reference", "torch:cuda"], "batch": 2, "seq": 8})");
  const Result r = run_suite(f, "--reps 2");
  EXPECT_EQ(r.code, 0) << "skipped is not failed: " << r.output;
  const Report rep = read_report(report_);
  ASSERT_EQ(rep.runs.size(), 2u);
  EXPECT_EQ(rep.runs[0].status, "ok");
  EXPECT_EQ(rep.runs[1].key.backend, "torch:cuda");
  EXPECT_EQ(rep.runs[1].status, "skipped");
  EXPECT_EQ(rep.runs[1].reason, "torch:cuda is not available here: " + cuda->reason);
}

TEST_F(Cli, TorchRunsOnTheOpenMpBuildOfOpenBlasWhenInstalled) {
  if (!builtin_registry().find("torch")) GTEST_SKIP() << "no torch backend in this build";
  if (!fs::exists("/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0"))
    GTEST_SKIP() << "libopenblas0-openmp is not installed";
  const std::string f = suite_with(
      R"({"workload": "train_step", "model": "tiny", "backends": "torch", "batch": 2, "seq": 8})");
  auto library_of_run = [&] {
    const Result r = run("run '" + f + "' --config-dir '" + dir_.string() + "' --out '" + report_ +
                         "' --no-calibrate --reps 1");
    EXPECT_EQ(r.code, 0) << r.output;
    const Report rep = read_report(report_);
    return rep.runs.at(0).device.value("library", std::string());
  };
  unsetenv("CAPBENCH_KEEP_BLAS");
  EXPECT_NE(library_of_run().find("OpenBLAS (OpenMP)"), std::string::npos)
      << "capbench re-executes itself with the OpenMP OpenBLAS first on the library path";
  setenv("CAPBENCH_KEEP_BLAS", "1", 1);  // the user's choice: the loader's default (pthreads)
  const std::string kept = library_of_run();
  unsetenv("CAPBENCH_KEEP_BLAS");
  EXPECT_EQ(kept.find("OpenBLAS (OpenMP)"), std::string::npos) << kept;
}

TEST_F(Cli, ListShowsTheReference) {
  const Result r = run("list --config-dir '" + dir_.string() + "'");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("reference"), std::string::npos);
  EXPECT_NE(r.output.find("tiny"), std::string::npos);
}

TEST_F(Cli, HelpOnEverySubcommand) {
  for (const char* sub : {"", "run ", "list ", "calibrate ", "show ", "fidelity "}) {
    const Result r = run(std::string(sub) + "--help");
    EXPECT_EQ(r.code, 0) << sub;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << sub << r.output;
  }
}

}  // namespace
}  // namespace capbench
