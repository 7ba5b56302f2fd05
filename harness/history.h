// Run history in SQLite: one row per ok run of every report added, and per run key the series
// of medians by date and revision, with a flag where the latest value leaves the recent
// distribution.
#pragma once

#include <string>
#include <vector>

#include "harness/report.h"

namespace capbench {

struct HistoryPoint {
  std::string created_utc, git_revision, report;
  double median = 0;  // of the run's primary series, seconds
};

struct HistorySeries {
  std::string key, series;
  std::vector<HistoryPoint> points;  // oldest first
  bool flagged = false;
  std::string why;  // when flagged
};

struct OutlierRule {
  size_t window = 10;          // earlier points the latest is judged against
  double mad_factor = 3.0;     // |latest - median| > factor · 1.4826 · MAD ...
  double min_relative = 0.05;  // ... and more than this fraction of the median
};

// Adds every ok run of `report`; returns how many rows were new (re-adding a report adds none).
// Throws UsageError when the database cannot be opened or written.
size_t history_add(const std::string& db_path, const Report& report, const std::string& label);
std::vector<HistorySeries> history_series(const std::string& db_path, const OutlierRule& rule);
// Judges the last point against the `window` before it; needs at least two earlier points.
void flag_outlier(HistorySeries& s, const OutlierRule& rule);

}  // namespace capbench
