// The JSON report: written, read back, equal; unknown fields ignored; another schema version, a
// truncated or non-JSON file rejected with the file and JSON path named.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "harness/errors.h"
#include "harness/json_access.h"
#include "harness/report.h"
#include "test_util.h"

namespace capbench {
namespace {

namespace fs = std::filesystem;

Report sample_report() {
  Report rep;
  rep.capbench_version = "0.1.0";
  rep.git_revision = "abc123";
  rep.created_utc = "2026-11-22T10:00:00Z";
  rep.suite = "quick";
  rep.host = {{"cpu", "Test CPU"}, {"logical_cores", 2}};
  rep.calibration = {{"cpu", {{"gemm_flops", 1.5e11}}}};
  RunRecord r;
  r.key.workload = "train_step";
  r.key.model = "small";
  r.key.backend = "torch";
  r.key.device = "Test CPU";
  r.key.dtype = "fp32";
  r.key.batch = 4;
  r.key.seq = 128;
  r.key.threads = 2;
  r.primary = "step_s";
  r.samples["step_s"] = {0.61, 0.6234567890123, 0.59};
  r.stats["step_s"] = summarize(r.samples["step_s"]);
  r.metrics = {{"tokens_per_s", 850.5}, {"mfu", 0.4321}};
  r.roofline = {true, 0.3, "compute", 2e11, 3e10, "calibrated"};
  r.ops = {{"matmul", 111, 0.4, 1e11, 2e8, 0.25, 1.5, "compute"},
           {"add", 12, 0.01, 1e6, 1e7, 0.001, 0.002, "memory"}};
  r.ops_unit = "one train step";
  r.canaries = {{"loss_falls", true, "9.0 -> 8.5", {9.0, 8.7, 8.5}}};
  r.validity = {false, {"too few"}};
  r.memory = {{"total_bytes", 1.25e9}};
  r.device = {{"name", "Test CPU"}};
  r.settings = {{"warmup", 1}};
  r.harness_overhead = 0.0012;
  r.emulation = {{"profile", "h20"}, {"mode", "dilate"}, {"limited_by", {"memory_bandwidth"}}};
  rep.runs.push_back(r);
  RunRecord skipped;
  skipped.key = r.key;
  skipped.key.backend = "onednn";
  skipped.status = "skipped";
  skipped.reason = "no bf16";
  rep.runs.push_back(skipped);
  return rep;
}

// Tests that write files get a folder of their own, removed afterwards.
class ReportFile : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::fresh_test_folder("capbench_report"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string temp_path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(ReportFile, WrittenReadBackEqual) {
  const Report rep = sample_report();
  const std::string path = temp_path("roundtrip.json");
  write_report_atomic(rep, path);
  EXPECT_FALSE(fs::exists(path + ".tmp")) << "the temporary file must be renamed away";
  const Report back = read_report(path);
  EXPECT_EQ(to_json(back), to_json(rep));
  ASSERT_EQ(back.runs.size(), 2u);
  EXPECT_EQ(back.runs[0].key.to_string(), rep.runs[0].key.to_string());
  EXPECT_DOUBLE_EQ(back.runs[0].samples.at("step_s")[1], 0.6234567890123);
  EXPECT_EQ(back.runs[0].ops[0].calls, 111);
  EXPECT_EQ(back.runs[1].status, "skipped");
  EXPECT_EQ(back.runs[1].reason, "no bf16");
}

TEST(Report, ReaderIgnoresUnknownFields) {
  nlohmann::json doc = to_json(sample_report());
  doc["a_future_field"] = {{"x", 1}};
  doc["runs"][0]["another_new_block"] = {1, 2, 3};
  doc["runs"][0]["key"]["new_key_part"] = "ignored";
  doc["runs"][0]["ops"][0]["new_counter"] = 5;
  const Report back = report_from_json(doc, "future.json");
  EXPECT_EQ(to_json(back), to_json(sample_report()));
}

TEST(Report, OtherSchemaVersionIsRejectedWithItsPath) {
  nlohmann::json doc = to_json(sample_report());
  doc["schema_version"] = 2;
  try {
    report_from_json(doc, "v2.json");
    FAIL() << "a version 2 report must be rejected";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "v2.json");
    EXPECT_EQ(e.json_path(), "$.schema_version");
  }
}

TEST(Report, MissingRunFieldNamesItsPath) {
  nlohmann::json doc = to_json(sample_report());
  doc["runs"][1].erase("status");
  try {
    report_from_json(doc, "r.json");
    FAIL() << "a run without status must be rejected";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.json_path(), "$.runs[1].status");
  }
}

TEST_F(ReportFile, TruncatedFileIsRejected) {
  const std::string path = temp_path("truncated.json");
  const std::string text = to_json(sample_report()).dump(2);
  std::ofstream(path) << text.substr(0, text.size() / 2);
  try {
    read_report(path);
    FAIL() << "a truncated report must be rejected";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), path);
    EXPECT_NE(std::string(e.what()).find("valid JSON"), std::string::npos) << e.what();
  }
}

TEST_F(ReportFile, AtomicWriteReplacesWholeFile) {
  const std::string path = temp_path("replace.json");
  std::ofstream(path) << std::string(100000, 'x');  // a longer old file
  write_report_atomic(sample_report(), path);
  EXPECT_EQ(to_json(read_report(path)), to_json(sample_report()));
}

}  // namespace
}  // namespace capbench
