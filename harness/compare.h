// Comparing reports: runs matched by key, ratio of medians of the primary series, a two-sided
// Mann-Whitney U p-value on the raw samples, and a verdict per run. The contract a nightly job
// needs: exit 1 when a run regressed past the threshold with significance.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "harness/report.h"

namespace capbench {

struct MannWhitney {
  double u = 0;  // U of the first sample: pairs (x, y) with x > y, ties counting one half
  double p = 1;  // two-sided
  bool exact = false;
};

// Exact distribution when there are no ties and the smaller sample has at most 8 values (as
// scipy's method='auto'); otherwise, or when allow_exact is false, the normal approximation with
// tie correction and continuity correction. Empty samples give p = 1.
MannWhitney mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y,
                           bool allow_exact = true);

struct CompareOptions {
  double threshold = 0.05;  // relative change of the median time that counts
  double alpha = 0.05;      // significance
};

enum class Verdict { unchanged, regressed, improved, failed, fixed, not_comparable };
const char* verdict_name(Verdict v);

struct RunComparison {
  std::string key;  // RunKey::to_string() of the run
  std::string workload, series;
  std::string base_label, new_label;  // report file (or --by value) of each side
  double base_median = 0, new_median = 0;
  double ratio = 0;  // new / base median time: > 1 is slower
  double p = 1;
  bool exact = false;
  size_t base_n = 0, new_n = 0;
  Verdict verdict = Verdict::unchanged;
  std::string note;  // why not comparable, or a status change
};

struct Comparison {
  std::vector<RunComparison> rows;
  std::vector<std::string> unmatched;  // "only in FILE: key"
  double geomean_ratio = 1;            // over rows with both sides ok
  size_t geomean_count = 0;
  bool any_regressed() const;
};

// The first report is the baseline; every later report is compared with it.
Comparison compare_reports(const std::vector<std::pair<std::string, Report>>& reports,
                           const CompareOptions& options);

// One report, runs grouped by every key field but `field`, each value of `field` compared with
// `base_value` (default: the first value seen). field: backend, emulation.profile, model, dtype,
// device, threads.
Comparison compare_by_field(const Report& report, const std::string& field,
                            const std::optional<std::string>& base_value,
                            const CompareOptions& options);

std::string format_console(const Comparison& c, const CompareOptions& o, bool colour);
std::string format_markdown(const Comparison& c, const CompareOptions& o);
std::string format_json(const Comparison& c, const CompareOptions& o);
std::string format_junit(const Comparison& c, const CompareOptions& o);

}  // namespace capbench
