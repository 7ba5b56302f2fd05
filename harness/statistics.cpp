#include "harness/statistics.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <numeric>

namespace capbench {

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = q / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

Stats summarize(const std::vector<double>& values) {
  Stats s;
  s.n = static_cast<int64_t>(values.size());
  if (values.empty()) return s;
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(s.n);
  double ss = 0;
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.stdev = s.n > 1 ? std::sqrt(ss / static_cast<double>(s.n - 1)) : 0.0;
  s.cv = s.mean != 0 ? s.stdev / s.mean : 0.0;
  s.min = *std::min_element(values.begin(), values.end());
  s.max = *std::max_element(values.begin(), values.end());
  s.median = s.p50 = percentile(values, 50);
  s.p90 = percentile(values, 90);
  s.p99 = percentile(values, 99);
  return s;
}

Validity judge(const Stats& stats, const ValidityRules& rules) {
  Validity v;
  if (stats.n < rules.min_reps) {
    v.valid = false;
    v.reasons.push_back(
        fmt::format("{} repetitions, fewer than the {} required", stats.n, rules.min_reps));
  }
  if (stats.cv > rules.cv_bound) {
    v.valid = false;
    v.reasons.push_back(fmt::format("coefficient of variation {:.3f} above the bound {:.3f}",
                                    stats.cv, rules.cv_bound));
  }
  return v;
}

}  // namespace capbench
