// compare, history and the HTML report.
//
// Mann-Whitney U reference values were computed independently of this code, in Python 3 with
// the standard library only: exact p-values by enumerating every split of the pooled sample
// (itertools.combinations) and counting U at least as extreme; asymptotic p-values from the
// normal approximation with tie correction and continuity correction, written from the
// textbook formula (sigma² = mn/12 · ((N+1) - Σ(t³-t)/(N(N-1)))). The first case is also the
// example of scipy.stats.mannwhitneyu's documentation (U = 17, exact p = 0.1111...,
// asymptotic p = 0.11134688653314041).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "harness/compare.h"
#include "harness/history.h"
#include "harness/html_report.h"
#include "test_util.h"

namespace capbench {
namespace {

namespace fs = std::filesystem;

TEST(MannWhitney, DocumentedExampleExactAndAsymptotic) {
  const std::vector<double> males = {19, 22, 16, 29, 24}, females = {20, 11, 17, 12};
  const MannWhitney exact = mann_whitney_u(males, females);
  EXPECT_TRUE(exact.exact);
  EXPECT_DOUBLE_EQ(exact.u, 17.0);
  EXPECT_NEAR(exact.p, 1.0 / 9.0, 1e-12);
  const MannWhitney asym = mann_whitney_u(males, females, /*allow_exact=*/false);
  EXPECT_FALSE(asym.exact);
  EXPECT_NEAR(asym.p, 0.11134688653314041, 1e-12);
}

TEST(MannWhitney, CompleteSeparationExact) {
  const MannWhitney r = mann_whitney_u({1, 2, 3}, {4, 5, 6, 7});
  EXPECT_DOUBLE_EQ(r.u, 0.0);
  EXPECT_NEAR(r.p, 0.05714285714285714, 1e-12);  // 2 · 1/C(7,3)
}

TEST(MannWhitney, TiesUseCorrectedNormalApproximation) {
  const MannWhitney r = mann_whitney_u({1, 2, 2, 3, 4}, {2, 3, 5, 6, 6, 7});
  EXPECT_FALSE(r.exact) << "ties rule out the exact distribution";
  EXPECT_DOUBLE_EQ(r.u, 4.5);
  EXPECT_NEAR(r.p, 0.06414661873440443, 1e-12);
}

TEST(MannWhitney, LargerSamplesAsymptotic) {
  const MannWhitney r =
      mann_whitney_u({0.91, 1.02, 0.97, 1.10, 0.95, 1.05, 0.99, 1.01, 0.93, 1.07},
                     {1.12, 1.03, 1.20, 1.15, 1.08, 1.25, 1.11, 0.98, 1.18, 1.14, 1.09, 1.22});
  EXPECT_DOUBLE_EQ(r.u, 11.0);
  EXPECT_NEAR(r.p, 0.001383865377565813, 1e-12);
  const MannWhitney t = mann_whitney_u({1.0, 1.0, 1.1, 1.2, 1.2, 1.2, 1.3, 1.5, 1.5, 1.6},
                                       {1.2, 1.3, 1.3, 1.4, 1.5, 1.6, 1.6, 1.7, 1.8, 1.8, 1.9});
  EXPECT_DOUBLE_EQ(t.u, 18.5);
  EXPECT_NEAR(t.p, 0.010617829312026698, 1e-12);
}

TEST(MannWhitney, IdenticalSamplesGiveOne) {
  EXPECT_DOUBLE_EQ(mann_whitney_u({2, 2, 2}, {2, 2, 2, 2}).p, 1.0);
  EXPECT_DOUBLE_EQ(mann_whitney_u({}, {1, 2}).p, 1.0);
}

// The exact distribution, computed another way: U counted over every arrangement of m x's among
// m + n places (all choose(m+n, m) of them).
std::vector<double> brute_force_u_counts(size_t m, size_t n) {
  std::vector<double> counts(m * n + 1, 0.0);
  std::vector<bool> is_x(m + n, false);
  std::fill(is_x.begin(), is_x.begin() + static_cast<long>(m), true);
  do {
    size_t u = 0, ys_below = 0;
    for (bool x : is_x) {  // from the smallest value up: an x beats the y's below it
      if (x)
        u += ys_below;
      else
        ++ys_below;
    }
    counts[u] += 1;
  } while (std::prev_permutation(is_x.begin(), is_x.end()));
  return counts;
}

TEST(MannWhitney, ExactPValuesMatchEnumeration) {
  std::mt19937_64 rng(9);
  for (size_t m : {1u, 3u, 5u})
    for (size_t n : {2u, 6u, 9u}) {
      const std::vector<double> counts = brute_force_u_counts(m, n);
      double total = 0;
      for (double c : counts) total += c;
      std::vector<double> x, y;
      std::uniform_real_distribution<double> d(0, 1);
      for (size_t i = 0; i < m; ++i) x.push_back(d(rng));
      for (size_t i = 0; i < n; ++i) y.push_back(d(rng) + 0.3);
      const MannWhitney r = mann_whitney_u(x, y);
      ASSERT_TRUE(r.exact);
      const double u_big = std::max(r.u, static_cast<double>(m * n) - r.u);
      double tail = 0;
      for (size_t u = 0; u < counts.size(); ++u)
        if (static_cast<double>(u) >= u_big) tail += counts[u];
      EXPECT_NEAR(r.p, std::min(1.0, 2 * tail / total), 1e-12) << m << " x " << n;
    }
}

// 5 samples against 20,000: the exact test must stay cheap (its table once grew with the
// product of both counts and took gigabytes) and agree with the normal approximation there.
TEST(MannWhitney, SmallAgainstHugeSampleStaysExactAndAgrees) {
  std::mt19937_64 rng(2);
  std::normal_distribution<double> d(1.0, 0.05);
  std::vector<double> few, many;
  for (int i = 0; i < 5; ++i) few.push_back(d(rng) + 0.04);
  for (int i = 0; i < 20000; ++i) many.push_back(d(rng));
  const MannWhitney exact = mann_whitney_u(few, many);
  const MannWhitney normal = mann_whitney_u(few, many, false);
  EXPECT_TRUE(exact.exact);
  EXPECT_NEAR(exact.p, normal.p, 0.02);
  EXPECT_GT(exact.p, 0.0);
}

// ---- reports for compare ---------------------------------------------------------------------

RunRecord make_run(const std::string& model, const std::string& profile,
                   std::vector<double> samples) {
  RunRecord r;
  r.key.workload = "train_step";
  r.key.model = model;
  r.key.backend = "torch";
  r.key.device = "CPU";
  r.key.dtype = "fp32";
  r.key.batch = 4;
  r.key.seq = 128;
  r.key.emulation_profile = profile;
  r.key.emulation_mode = profile.empty() ? "" : "dilate";
  r.primary = "step_s";
  r.samples["step_s"] = samples;
  r.stats["step_s"] = summarize(samples);
  r.metrics["tokens_per_s"] = 512 / r.stats["step_s"].median;
  return r;
}

std::vector<double> steady(double centre, size_t n = 10) {
  std::vector<double> v;
  for (size_t i = 0; i < n; ++i)
    v.push_back(centre * (1 + 0.004 * (static_cast<double>(i % 5) - 2)));
  return v;
}

std::vector<double> scaled(std::vector<double> v, double f) {
  for (double& x : v) x *= f;
  return v;
}

Report base_report() {
  Report rep;
  rep.suite = "nightly";
  rep.created_utc = "2026-11-01T00:00:00Z";
  rep.git_revision = "aaa";
  rep.runs = {make_run("small", "", steady(0.5)), make_run("tiny", "", steady(0.05)),
              make_run("mid", "", steady(0.2))};
  return rep;
}

class CompareCli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::fresh_test_folder("capbench_cmp"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string save(const Report& r, const std::string& name) {
    const std::string p = (dir_ / name).string();
    write_report_atomic(r, p);
    return p;
  }
  std::pair<int, std::string> run(const std::string& args) {
    return testing::run_command(std::string("'") + CAPBENCH_BINARY + "' " + args + " 2>&1");
  }
  // Runs a Python 3 script (written to a file, so no shell quoting) with one argument.
  std::pair<int, std::string> run_python(const std::string& code, const std::string& arg) {
    const std::string script = (dir_ / "check.py").string();
    std::ofstream(script) << code << "\n";
    return testing::run_command("python3 '" + script + "' '" + arg + "' 2>&1");
  }
  fs::path dir_;
};

TEST_F(CompareCli, ReportAgainstItselfExitsZero) {
  const std::string a = save(base_report(), "a.json");
  const auto [code, out] = run("compare '" + a + "' '" + a + "'");
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("REGRESSED"), std::string::npos) << out;
  EXPECT_NE(out.find("geomean time ratio 1.000 over 3"), std::string::npos) << out;
}

TEST_F(CompareCli, TwentyPercentSlowerRunFailsAndIsNamed) {
  Report slow = base_report();
  slow.runs[1] = make_run("tiny", "", scaled(steady(0.05), 1.2));
  const std::string a = save(base_report(), "a.json"), b = save(slow, "b.json");
  const auto [code, out] = run("compare '" + a + "' '" + b + "'");
  EXPECT_EQ(code, 1) << out;
  const size_t line = out.find("REGRESSED");
  ASSERT_NE(line, std::string::npos) << out;
  const std::string row = out.substr(line, out.find('\n', line) - line);
  EXPECT_NE(row.find("model=tiny"), std::string::npos) << "the regressed run is named: " << row;
  EXPECT_NE(row.find("1.200"), std::string::npos) << row;
}

TEST_F(CompareCli, TwoPercentSlowerPassesAtTheDefaultThreshold) {
  Report slow = base_report();
  for (RunRecord& r : slow.runs) {
    r.samples["step_s"] = scaled(r.samples["step_s"], 1.02);
    r.stats["step_s"] = summarize(r.samples["step_s"]);
  }
  const std::string a = save(base_report(), "a.json"), b = save(slow, "b.json");
  const auto [code, out] = run("compare '" + a + "' '" + b + "'");
  EXPECT_EQ(code, 0) << out;
  // The change is significant (p small) but under the threshold: "unchanged", not a failure.
  const auto [code_tight, out_tight] = run("compare '" + a + "' '" + b + "' --threshold 0.01");
  EXPECT_EQ(code_tight, 1) << out_tight;
}

TEST_F(CompareCli, NoisyHigherMedianWithoutSignificancePasses) {
  Report base = base_report(), noisy = base_report();
  base.runs[0] = make_run("small", "", {0.50, 0.65, 0.40, 0.60, 0.45, 0.52});
  noisy.runs[0] = make_run("small", "", {0.55, 0.42, 0.68, 0.62, 0.47, 0.61});
  const Comparison c = compare_reports({{"a", base}, {"b", noisy}}, CompareOptions{});
  const auto row = std::find_if(c.rows.begin(), c.rows.end(), [](const RunComparison& r) {
    return r.key.find("model=small") != std::string::npos;
  });
  ASSERT_NE(row, c.rows.end());
  ASSERT_GT(row->ratio, 1.05) << "the median must be more than 5% higher for this test";
  ASSERT_GT(row->p, 0.05);
  EXPECT_EQ(row->verdict, Verdict::unchanged);
  const std::string a = save(base, "a.json"), b = save(noisy, "b.json");
  const auto [code, out] = run("compare '" + a + "' '" + b + "'");
  EXPECT_EQ(code, 0) << out;
}

TEST_F(CompareCli, TruncatedOrNonJsonReportExitsTwo) {
  const std::string a = save(base_report(), "a.json");
  const std::string truncated = (dir_ / "t.json").string(), junk = (dir_ / "j.json").string();
  {
    std::ifstream in(a);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(truncated) << text.substr(0, text.size() / 3);
    std::ofstream(junk) << "this is not json";
  }
  for (const std::string& bad : {truncated, junk}) {
    const auto [code, out] = run("compare '" + a + "' '" + bad + "'");
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find(bad), std::string::npos) << "the bad file is named: " << out;
  }
  Report v2 = base_report();
  v2.schema_version = 2;
  const auto [code, out] = run("compare '" + a + "' '" + save(v2, "v2.json") + "'");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("$.schema_version"), std::string::npos) << out;
}

TEST_F(CompareCli, UnmatchedRunsAreListed) {
  Report other = base_report();
  other.runs.pop_back();
  other.runs.push_back(make_run("new-model", "", steady(0.3)));
  const std::string a = save(base_report(), "a.json"), b = save(other, "b.json");
  const auto [code, out] = run("compare '" + a + "' '" + b + "'");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("only in " + a + ": train_step model=mid"), std::string::npos) << out;
  EXPECT_NE(out.find("only in " + b + ": train_step model=new-model"), std::string::npos) << out;
}

TEST_F(CompareCli, JunitIsWellFormedWithOneFailurePerRegression) {
  Report slow = base_report();
  slow.runs[0] = make_run("small", "", scaled(steady(0.5), 1.3));
  slow.runs[2] = make_run("mid", "", scaled(steady(0.2), 1.5));
  const std::string a = save(base_report(), "a.json"), b = save(slow, "b.json");
  const std::string xml = (dir_ / "junit.xml").string();
  const auto [code, out] =
      run("compare '" + a + "' '" + b + "' --format junit --out '" + xml + "'");
  EXPECT_EQ(code, 1) << out;
  // Parse with an XML parser (Python's ElementTree) and count what it finds.
  const auto [pcode, counts] = run_python(
      "import xml.etree.ElementTree as ET,sys; r=ET.parse(sys.argv[1]).getroot(); "
      "cases=r.findall('.//testcase'); print(len(cases), sum(1 for c in cases if "
      "c.find('failure') is not None), r.get('failures'))",
      xml);
  EXPECT_EQ(pcode, 0) << counts;
  EXPECT_EQ(counts, "3 2 2\n");
}

TEST_F(CompareCli, ByEmulationProfileComparesInsideOneReport) {
  Report rep = base_report();
  rep.runs = {make_run("small", "h100-sxm", steady(0.5)), make_run("small", "h20", steady(2.0)),
              make_run("tiny", "h100-sxm", steady(0.05)), make_run("tiny", "h20", steady(0.06))};
  const Comparison c =
      compare_by_field(rep, "emulation.profile", std::string("h100-sxm"), CompareOptions{});
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.rows[0].base_label, "h100-sxm");
  EXPECT_EQ(c.rows[0].new_label, "h20");
  EXPECT_NEAR(c.rows[0].ratio, 4.0, 1e-9);
  EXPECT_NEAR(c.rows[1].ratio, 1.2, 1e-9);
  const auto [code, out] =
      run("compare '" + save(rep, "p.json") + "' --by emulation.profile --base h100-sxm");
  EXPECT_NE(out.find("h100-sxm -> h20"), std::string::npos) << out;
  EXPECT_EQ(code, 1) << "an emulated slower chip reads as a regression against the base";
}

TEST_F(CompareCli, BadArgumentsExitTwo) {
  const std::string a = save(base_report(), "a.json");
  for (const std::string& args :
       {"compare '" + a + "'", "compare '" + a + "' '" + a + "' --format pdf",
        "compare '" + a + "' '" + a + "' --threshold 2", "compare '" + a + "' --by colour"}) {
    const auto [code, out] = run(args);
    EXPECT_EQ(code, 2) << args << ": " << out;
  }
}

TEST(History, FlagsThePlantedOutlier) {
  const fs::path db = fs::temp_directory_path() / ("capbench_hist_" + std::to_string(getpid()));
  fs::remove(db);
  const char* dates[] = {"2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"};
  const char* revs[] = {"aaa", "bbb", "ccc"};
  for (int i = 0; i < 3; ++i) {
    Report rep = base_report();
    rep.created_utc = dates[i];
    rep.git_revision = revs[i];
    // Small drift on every key; the third report's "mid" run is 25% slower.
    for (RunRecord& r : rep.runs) {
      double f = 1 + 0.01 * i;
      if (i == 2 && r.key.model == "mid") f = 1.25;
      r.samples["step_s"] = scaled(r.samples["step_s"], f);
      r.stats["step_s"] = summarize(r.samples["step_s"]);
    }
    EXPECT_EQ(history_add(db.string(), rep, "r" + std::to_string(i)), 3u);
    EXPECT_EQ(history_add(db.string(), rep, "again"), 0u) << "re-adding adds nothing";
  }
  const std::vector<HistorySeries> series = history_series(db.string(), OutlierRule{});
  ASSERT_EQ(series.size(), 3u);
  for (const HistorySeries& s : series) {
    EXPECT_EQ(s.points.size(), 3u);
    EXPECT_EQ(s.points.back().git_revision, "ccc");
    const bool planted = s.key.find("model=mid") != std::string::npos;
    EXPECT_EQ(s.flagged, planted) << s.key << ": " << s.why;
    if (planted) {
      EXPECT_NE(s.why.find("slower"), std::string::npos) << s.why;
    }
  }
  fs::remove(db);
}

TEST(Compare, DuplicateKeysAreListedNotDropped) {
  Report a = base_report();
  a.runs.push_back(a.runs[0]);
  const Comparison c =
      compare_reports({{"a.json", a}, {"b.json", base_report()}}, CompareOptions{});
  EXPECT_EQ(c.rows.size(), 3u);
  ASSERT_EQ(c.unmatched.size(), 1u);
  EXPECT_NE(c.unmatched[0].find("duplicate in a.json (run 3"), std::string::npos) << c.unmatched[0];
}

// XML 1.0 allows no control character but tab, newline and carriage return, not even as a
// reference, and only UTF-8: a run key holding others still gives a well-formed JUnit file.
TEST(Compare, JunitStaysWellFormedWithControlCharactersAndBadBytes) {
  Report a = base_report();
  a.runs[0].key.model = std::string("odd\x01\x1b[31m\xff name");
  Report b = a;
  const std::string xml =
      format_junit(compare_reports({{"a", a}, {"b", b}}, CompareOptions{}), CompareOptions{});
  for (unsigned char c : xml)
    EXPECT_TRUE(c >= 0x20 || c == '\n' || c == '\t' || c == '\r') << static_cast<int>(c);
  EXPECT_EQ(xml.find("\xff "), std::string::npos);
  EXPECT_NE(xml.find("odd\xEF\xBF\xBD"), std::string::npos);
}

TEST(Html, SelfContainedPageWithChartsAndTables) {
  Report rep = base_report();
  rep.runs[0].ops = {{"matmul", 10, 0.3, 1e11, 1e8, 0.2, 0.0, "compute"},
                     {"add", 4, 0.01, 1e6, 1.2e7, 0.001, 0.0, "memory"}};
  rep.runs[0].ops_unit = "one train step";
  rep.runs[0].roofline = {true, 0.25, "compute", 2e11, 3e10, "test"};
  rep.runs[1].key.backend = "<script>";
  const std::string html = render_html(rep, "t & t");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  size_t svgs = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
    ++svgs;
  EXPECT_EQ(svgs, 3u) << "throughput, distributions, roofline";
  EXPECT_EQ(html.find("<script"), std::string::npos) << "text is escaped, nothing executable";
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  for (const char* fetch : {"src=", "href=", "<link", "@import", "url("})
    EXPECT_EQ(html.find(fetch), std::string::npos) << "nothing is fetched: found " << fetch;
  EXPECT_NE(html.find("matmul"), std::string::npos);
  EXPECT_NE(html.find("t &amp; t"), std::string::npos);
}

// Markup planted in every string a report holds (values, and the names of its series and
// metrics) comes out of the page as text: reports travel between machines, and a page must
// never run what one carries.
nlohmann::json planted(const nlohmann::json& v, const std::string& key) {
  const std::string mark = "<script>alert(1)</script><img onerror=x>";
  if (v.is_string()) return key == "status" ? v : nlohmann::json(v.get<std::string>() + mark);
  if (v.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : v) out.push_back(planted(item, key));
    return out;
  }
  if (!v.is_object()) return v;
  nlohmann::json out = nlohmann::json::object();
  const bool named_series = key == "samples" || key == "stats" || key == "metrics";
  for (auto it = v.begin(); it != v.end(); ++it)
    out[named_series ? it.key() + mark : it.key()] = planted(it.value(), it.key());
  return out;
}

TEST(Html, EveryReportStringIsEscaped) {
  const Report source =
      read_report(std::string(CAPBENCH_SOURCE_DIR) + "/reports/baselines/nightly-cpu.json");
  nlohmann::json doc = planted(to_json(source), "");
  doc["schema_version"] = 1;
  const Report rep = report_from_json(doc, "planted.json");
  ASSERT_EQ(rep.runs.size(), source.runs.size());
  ASSERT_FALSE(rep.runs[0].ops.empty());
  const std::string html = render_html(rep, "<script>title</script>");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)"), std::string::npos);
}

}  // namespace
}  // namespace capbench
