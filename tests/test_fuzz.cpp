// Mutation fuzzing of every input capbench reads: the shipped suites, models and device
// profiles, and a report, each mutated many ways (keys deleted, types swapped, extreme numbers,
// newlines, markup and bad UTF-8 in strings, deep nesting, duplicate keys, truncation, flipped
// bytes) and fed to the same loaders and report tools the command line uses. Each mutant must
// load, or fail as bad input (ConfigError or UsageError: exit code 2) with a message naming the
// file; anything else (another exception, a crash, a hang under ctest's timeout) is a bug.
// CAPBENCH_FUZZ_MUTANTS sets the number per input file (make fuzz runs many more).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "backends/throttle/device_profile.h"
#include "harness/compare.h"
#include "harness/config_files.h"
#include "harness/console.h"
#include "harness/errors.h"
#include "harness/history.h"
#include "harness/html_report.h"
#include "harness/json_access.h"
#include "harness/report.h"
#include "harness/suite.h"
#include "test_util.h"
#include "workloads/model_config.h"

namespace capbench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kConfigs = std::string(CAPBENCH_SOURCE_DIR) + "/configs";

int mutants_per_file() {
  const char* env = std::getenv("CAPBENCH_FUZZ_MUTANTS");
  return env ? std::max(1, std::atoi(env)) : 40;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Values no well-formed input holds where a mutant puts them.
json nasty_value(std::mt19937_64& rng) {
  static const std::vector<json> values = {nullptr,
                                           true,
                                           false,
                                           0,
                                           -1,
                                           1,
                                           0.5,
                                           -0.5,
                                           1e300,
                                           -1e300,
                                           1e-300,
                                           4611686018427387904LL,
                                           9223372036854775807LL,
                                           json(18446744073709551615ULL),
                                           "",
                                           "two",
                                           "line one\nline two\r\n\ttab",
                                           "<script>alert(1)</script>",
                                           "é漢字\u2028\u0007",
                                           json::array(),
                                           json::object(),
                                           json::array({1, "x", nullptr}),
                                           json::object({{"value", 1}}),
                                           std::string(100000, 'x'),
                                           "1e999",
                                           "NaN",
                                           "-Infinity"};
  return values[rng() % values.size()];
}

// Every JSON pointer into a document (the root included).
void pointers(const json& v, const json::json_pointer& at, std::vector<json::json_pointer>* out) {
  out->push_back(at);
  if (v.is_object())
    for (auto it = v.begin(); it != v.end(); ++it) pointers(it.value(), at / it.key(), out);
  else if (v.is_array())
    for (size_t i = 0; i < v.size(); ++i) pointers(v[i], at / i, out);
}

std::string nested(int depth, const std::string& inner) {
  return std::string(static_cast<size_t>(depth), '[') + inner +
         std::string(static_cast<size_t>(depth), ']');
}

// One mutant of a JSON document's text, and a word on what was done.
std::pair<std::string, std::string> mutate(const std::string& text, std::mt19937_64& rng) {
  json doc = json::parse(text);
  std::vector<json::json_pointer> all;
  pointers(doc, json::json_pointer(), &all);
  const json::json_pointer at = all[rng() % all.size()];
  switch (rng() % 12) {
    case 0: {  // delete a key or element
      if (at.empty()) return {"", "empty file"};
      json& parent = doc.at(at.parent_pointer());
      if (parent.is_object())
        parent.erase(at.back());
      else
        parent.erase(static_cast<size_t>(std::stoul(at.back())));
      return {doc.dump(1), "deleted " + at.to_string()};
    }
    case 1:
    case 2:
    case 3: {  // a nasty value
      doc.at(at) = nasty_value(rng);
      return {doc.dump(1, ' ', false, json::error_handler_t::replace),
              "nasty value at " + at.to_string()};
    }
    case 4: {  // swapped type: a number as text, text as a number
      json& v = doc.at(at);
      if (v.is_number())
        v = v.dump();
      else if (v.is_string())
        v = static_cast<double>(v.get<std::string>().size());
      else
        v = v.dump();
      return {doc.dump(1), "swapped type at " + at.to_string()};
    }
    case 5: {  // deep nesting inside a value, as text
      const std::string marker = "\"@@deep@@\"";
      doc.at(at) = "@@deep@@";
      std::string t = doc.dump(1);
      t.replace(t.find(marker), marker.size(),
                nested(100000 + static_cast<int>(rng() % 900000), "1"));
      return {t, "deep nesting at " + at.to_string()};
    }
    case 6:  // truncated
      return {text.substr(0, rng() % std::max<size_t>(text.size(), 1)), "truncated"};
    case 7: {  // a flipped byte
      std::string t = text;
      if (!t.empty()) t[rng() % t.size()] ^= static_cast<char>(1 << (rng() % 8));
      return {t, "flipped byte"};
    }
    case 8: {  // invalid UTF-8 in a string
      std::string t = text;
      const size_t q = t.find('"', rng() % std::max<size_t>(t.size(), 1));
      if (q != std::string::npos) t.insert(q + 1, "\xff\xfe\xc3");
      return {t, "invalid UTF-8"};
    }
    case 9: {  // a duplicate key (the later one wins in the parser)
      std::string t = text;
      const size_t brace = t.find('{');
      if (brace != std::string::npos) t.insert(brace + 1, "\"name\": 7, \"name\": \"dup\", ");
      return {t, "duplicate keys"};
    }
    case 10:  // number overflow
      return {std::string(text).insert(text.find(':') + 1, " 1e999, \"x\":"), "1e999"};
    default:  // the whole document nested
      return {nested(200000, text), "whole document nested"};
  }
}

// The outcome of loading one mutant: fine, or bad input naming the file. Returns a failure
// description, or "" when the outcome is acceptable.
template <class Load>
std::string check_mutant(const std::string& file, const std::string& what, Load load) {
  try {
    load();
    return "";
  } catch (const ConfigError& e) {
    if (std::string(e.what()).find(e.file()) == std::string::npos)
      return what + ": message does not name the file: " + e.what();
    return "";
  } catch (const UsageError&) {
    return "";
  } catch (const std::exception& e) {
    return what + ": not bad input but " + typeid(e).name() + ": " + one_line(e.what());
  }
}

class Fuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_test_folder("capbench_fuzz");
    fs::create_directories(dir_ / "models");
    fs::create_directories(dir_ / "devices");
    for (const char* sub : {"models", "devices"})
      for (const auto& f : fs::directory_iterator(kConfigs + "/" + sub))
        fs::copy_file(f.path(), dir_ / sub / f.path().filename());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Mutants of `source`, each written to `target` and loaded by `load`. Returns what went
  // wrong, a line per mutant (at most five): "" when every mutant loaded or was bad input.
  std::string fuzz(const std::string& source, const fs::path& target,
                   const std::function<void(const std::string&)>& load) {
    std::mt19937_64 rng(std::hash<std::string>()(source));
    const std::string text = read_text(source);
    std::string failures;
    int failed = 0;
    for (int i = 0; i < mutants_per_file() && failed < 5; ++i) {
      const auto [mutant, what] = mutate(text, rng);
      std::ofstream(target, std::ios::binary | std::ios::trunc) << mutant;
      const std::string why =
          check_mutant(target.string(), source + " " + what, [&] { load(target.string()); });
      if (!why.empty()) {
        failures += "mutant " + std::to_string(i) + " of " + source + ": " + why + "\n";
        ++failed;
      }
    }
    return failures;
  }
  fs::path dir_;
};

TEST_F(Fuzz, SuitesLoadOrAreRejectedAsBadInput) {
  const Registry& registry = builtin_registry();
  for (const auto& f : fs::directory_iterator(kConfigs + "/suites"))
    EXPECT_EQ(fuzz(f.path().string(), dir_ / "suite.json",
                   [&](const std::string& path) {
                     load_suite(path, SuiteOverrides{}, dir_.string(), registry);
                   }),
              "");
}

// A model mutant is loaded through a suite that names it: its errors must name the model file,
// not the suite.
TEST_F(Fuzz, ModelsLoadOrAreRejectedNamingTheModelFile) {
  const std::string suite = (dir_ / "suite.json").string();
  std::ofstream(suite) << R"({"runs": [{"workload": "inference", "model": "mutant",
      "backends": "reference", "prompt": 4, "decode_steps": 2}]})";
  for (const auto& f : fs::directory_iterator(kConfigs + "/models"))
    EXPECT_EQ(fuzz(f.path().string(), dir_ / "models/mutant.json",
                   [&](const std::string& path) {
                     try {
                       load_suite(suite, SuiteOverrides{}, dir_.string(), builtin_registry());
                     } catch (const ConfigError& e) {
                       if (e.file() != path && e.file() != suite)
                         throw std::logic_error("error names " + e.file());
                       if (e.file() == suite && e.json_path() == "$.runs[0].model" &&
                           std::string(e.what()).find(path) == std::string::npos)
                         throw std::logic_error("the suite is blamed without the model file: " +
                                                one_line(e.what()));
                       throw;
                     }
                   }),
              "");
}

TEST_F(Fuzz, DeviceProfilesLoadOrAreRejectedAsBadInput) {
  for (const auto& f : fs::directory_iterator(kConfigs + "/devices"))
    EXPECT_EQ(
        fuzz(f.path().string(), dir_ / "devices/mutant.json",
             [&](const std::string& path) {
               const DeviceProfile p = load_device_profile(path, dir_.string());
               // What loads is a chip's: the throttle can pace to it.
               if (!(p.bf16_flops.value >= kFlopsRange[0] && p.bf16_flops.value <= kFlopsRange[1] &&
                     p.memory_bytes_per_s.value >= kBandwidthRange[0] &&
                     p.memory_bytes_per_s.value <= kBandwidthRange[1]))
                 throw std::logic_error("a profile outside the plausible ranges loaded");
             }),
        "");
}

// A report mutant goes through every reader: show's table, compare (against itself, every
// format), the HTML page, and the history.
TEST_F(Fuzz, ReportsAreReadWhollyOrRejectedAsBadInput) {
  const std::string db = (dir_ / "history.sqlite").string();
  EXPECT_EQ(fuzz(std::string(CAPBENCH_SOURCE_DIR) + "/reports/baselines/nightly-cpu.json",
                 dir_ / "report.json",
                 [&](const std::string& path) {
                   const Report report = read_report(path);
                   std::FILE* sink = std::fopen("/dev/null", "w");
                   print_summary_table(sink, report);
                   print_op_breakdown(sink, report);
                   std::fclose(sink);
                   const Comparison c =
                       compare_reports({{path, report}, {path, report}}, CompareOptions{});
                   format_console(c, CompareOptions{}, false);
                   format_markdown(c, CompareOptions{});
                   format_json(c, CompareOptions{});
                   format_junit(c, CompareOptions{});
                   compare_by_field(report, "backend", std::nullopt, CompareOptions{});
                   render_html(report, "fuzz");
                   history_add(db, report, path);
                 }),
            "");
}

// Inputs that are not JSON files at all.
TEST_F(Fuzz, SpecialFilesAreRejectedWithoutBlocking) {
  const std::string fifo = (dir_ / "fifo.json").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path :
       {fifo, std::string("/dev/zero"), dir_.string(), (dir_ / "missing.json").string()}) {
    try {
      load_json_file(path);
      ADD_FAILURE() << path << " loaded";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.file(), path);
      EXPECT_EQ(one_line(e.what()), e.what());
    }
  }
}

// The same inputs through the command line: exit code 2 and exactly one line, for each kind of
// bad input, within a minute (a FIFO or /dev/zero used to block for ever).
TEST_F(Fuzz, CommandLineGivesOneLineAndExitTwo) {
  const std::string good = read_text(kConfigs + "/suites/quick.json");
  const std::string fifo = (dir_ / "fifo.json").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto file = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  };
  std::string with_newline = good;
  with_newline.replace(with_newline.find("\"quick\""), 7, "\"a\\nb<i>\"");
  const std::vector<std::string> inputs = {
      fifo,
      "/dev/zero",
      dir_.string(),
      file("deep.json", nested(500000, "{}")),
      file("overflow.json", "{\"name\": 1e999, \"runs\": []}"),
      file("utf8.json", "{\"name\": \"\xff\xfe\", \"runs\": 3}"),
      file("newline.json", with_newline.substr(0, with_newline.find("\"runs\"")) + "\"runs\": 5}"),
      file("bad\x01\n\xff.json", "{")};
  for (const std::string& input : inputs) {
    const auto [code, out] =
        testing::run_command("CAPBENCH_KEEP_BLAS=1 timeout 60 '" + std::string(CAPBENCH_BINARY) +
                             "' run '" + input + "' --no-calibrate 2>&1");
    EXPECT_EQ(code, 2) << input << ": " << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << input << ": " << out;
  }
}

}  // namespace
}  // namespace capbench
