#include "harness/statistics.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <numeric>

namespace capbench {
namespace {

// Ranks (1-based) j < k of the order statistics bounding a 95% interval of the median of n
// samples: the largest j with P(Binomial(n, 1/2) < j) <= 2.5%, and k = n + 1 - j.
int64_t median_ci_rank(int64_t n) {
  if (n < 6) return 1;
  // The binomial's lower tail, accumulated in logs (n can be large).
  const double log_half_n = static_cast<double>(n) * std::log(0.5);
  double tail = 0;
  int64_t j = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double log_choose = std::lgamma(static_cast<double>(n) + 1) -
                              std::lgamma(static_cast<double>(i) + 1) -
                              std::lgamma(static_cast<double>(n - i) + 1);
    const double next = tail + std::exp(log_choose + log_half_n);
    if (next > 0.025) break;
    tail = next;
    j = i + 1;  // P(X < j) = P(X <= i) <= 2.5%
  }
  return std::max<int64_t>(j, 1);
}

}  // namespace

double Stats::median_ci_relative() const {
  if (median <= 0) return 0;
  return std::max(median - median_ci_low, median_ci_high - median) / median;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = q / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

double median(std::vector<double> values) {
  return percentile(std::move(values), 50);
}

Stats summarize(const std::vector<double>& values) {
  Stats s;
  s.n = static_cast<int64_t>(values.size());
  if (values.empty()) return s;
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(s.n);
  double ss = 0;
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.stdev = s.n > 1 ? std::sqrt(ss / static_cast<double>(s.n - 1)) : 0.0;
  s.cv = s.mean != 0 ? s.stdev / s.mean : 0.0;
  s.min = sorted.front();
  s.max = sorted.back();
  s.median = s.p50 = percentile(sorted, 50);
  s.p90 = percentile(sorted, 90);
  s.p99 = percentile(sorted, 99);
  const int64_t j = median_ci_rank(s.n);
  s.median_ci_low = sorted[static_cast<size_t>(j - 1)];
  s.median_ci_high = sorted[static_cast<size_t>(s.n - j)];
  std::vector<double> deviations;
  for (double v : sorted) deviations.push_back(std::fabs(v - s.median));
  const double scaled_mad = 1.4826 * median(deviations);
  for (double v : sorted)
    if (std::fabs(v - s.median) > 3 * scaled_mad && scaled_mad > 0) ++s.outliers;
  return s;
}

Validity judge(const Stats& stats, int64_t repetitions, const ValidityRules& rules) {
  Validity v;
  if (repetitions < rules.min_reps) {
    v.valid = false;
    v.reasons.push_back(
        fmt::format("{} repetitions, fewer than the {} required", repetitions, rules.min_reps));
  }
  const double ci = stats.median_ci_relative();
  if (ci > rules.ci_bound) {
    v.valid = false;
    v.reasons.push_back(fmt::format(
        "the median's 95% confidence interval is ±{:.1f}% wide, above the bound ±{:.1f}% "
        "(CV {:.1f}%, {} outlier(s) of {})",
        100 * ci, 100 * rules.ci_bound, 100 * stats.cv, stats.outliers, stats.n));
  }
  return v;
}

}  // namespace capbench
