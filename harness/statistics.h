// Summary statistics of a sample series, and the validity verdict of a run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace capbench {

struct Stats {
  int64_t n = 0;
  double mean = 0, median = 0, stdev = 0, cv = 0, min = 0, max = 0;
  double p50 = 0, p90 = 0, p99 = 0;
  // A distribution-free 95% confidence interval of the median (order statistics; below 6
  // samples no interval reaches 95%, and it is [min, max]).
  double median_ci_low = 0, median_ci_high = 0;
  // Samples more than 3 scaled MADs (1.4826·MAD, the stdev of a normal) above or below the
  // median: preempted or disturbed repetitions. Counted, never dropped.
  int64_t outliers = 0;
  // The interval's larger half-width over the median: what a comparison of medians relies on.
  double median_ci_relative() const;
};

// Percentile by linear interpolation between closest ranks (numpy's default), q in [0, 100].
double percentile(std::vector<double> values, double q);
// The median of sorted or unsorted values (the mean of the middle two for an even count).
double median(std::vector<double> values);
// stdev is the sample standard deviation (n-1); cv = stdev / mean.
Stats summarize(const std::vector<double>& values);

struct ValidityRules {
  int64_t min_reps = 5;
  // Largest relative half-width of the median's 95% confidence interval.
  double ci_bound = 0.05;
};
struct Validity {
  bool valid = true;
  std::vector<std::string> reasons;  // why not, when !valid
};
// Valid: at least min_reps repetitions, and a median known to within ci_bound. The median and
// its interval are what compare relies on: a few preempted steps among many barely move them
// (they are counted as outliers), while a series whose typical value drifts or splits in two
// has a wide interval.
Validity judge(const Stats& stats, int64_t repetitions, const ValidityRules& rules);

}  // namespace capbench
