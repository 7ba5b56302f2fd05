// Summary statistics of a sample series, and the validity verdict of a run.
#pragma once

#include <string>
#include <vector>

namespace capbench {

struct Stats {
  int64_t n = 0;
  double mean = 0, median = 0, stdev = 0, cv = 0, min = 0, max = 0;
  double p50 = 0, p90 = 0, p99 = 0;
};

// Percentile by linear interpolation between closest ranks (numpy's default), q in [0, 100].
double percentile(std::vector<double> values, double q);
// stdev is the sample standard deviation (n-1); cv = stdev / mean.
Stats summarize(const std::vector<double>& values);

struct ValidityRules {
  int64_t min_reps = 5;
  double cv_bound = 0.10;
};
struct Validity {
  bool valid = true;
  std::vector<std::string> reasons;  // why not, when !valid
};
Validity judge(const Stats& stats, const ValidityRules& rules);

}  // namespace capbench
