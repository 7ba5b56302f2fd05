#include "harness/history.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <algorithm>
#include <cmath>
#include <memory>

#include "harness/errors.h"
#include "harness/statistics.h"

namespace capbench {
namespace {

constexpr int kBusyTimeoutMs = 60000;

using Db = std::unique_ptr<sqlite3, decltype(&sqlite3_close)>;
using Stmt = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

Db open_db(const std::string& path, bool create) {
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw, &sqlite3_close);
  if (rc != SQLITE_OK)
    throw UsageError(fmt::format("--db {}: cannot open ({})", path,
                                 raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  // Several jobs may add to one history at once (parallel CI jobs): a locked database is waited
  // for, not an error.
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  return db;
}

// A database error: bad input (exit 2) when the file is not a history, a runtime error (exit 1)
// when it is busy or the disk fails.
[[noreturn]] void fail(sqlite3* db, int rc, const std::string& path, const std::string& what) {
  const int primary = rc & 0xff;
  const std::string msg = fmt::format("--db {}: {}{}", path, what, db ? sqlite3_errmsg(db) : "");
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_IOERR ||
      primary == SQLITE_FULL)
    throw std::runtime_error(msg);
  throw UsageError(msg);
}

void exec(sqlite3* db, const char* sql, const std::string& path) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(db, rc, path, "");
}

Stmt prepare(sqlite3* db, const char* sql, const std::string& path) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  if (rc != SQLITE_OK) fail(db, rc, path, "");
  return Stmt(raw, &sqlite3_finalize);
}

const char* kSchema = R"(
  CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    run_key TEXT NOT NULL,
    series TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    git_revision TEXT NOT NULL,
    report TEXT NOT NULL,
    median REAL NOT NULL,
    UNIQUE (run_key, series, created_utc, git_revision));
  CREATE INDEX IF NOT EXISTS runs_by_key ON runs (run_key, created_utc);)";

}  // namespace

size_t history_add(const std::string& db_path, const Report& report, const std::string& label) {
  Db db = open_db(db_path, true);
  // The write lock is taken up front (IMMEDIATE): a deferred transaction that upgrades to a
  // writer while another holds it fails at once instead of waiting.
  exec(db.get(), "BEGIN IMMEDIATE", db_path);
  exec(db.get(), kSchema, db_path);
  Stmt insert = prepare(db.get(),
                        "INSERT OR IGNORE INTO runs (run_key, series, created_utc, git_revision, "
                        "report, median) VALUES (?, ?, ?, ?, ?, ?)",
                        db_path);
  size_t added = 0;
  for (const RunRecord& r : report.runs) {
    if (r.status != "ok" || !r.stats.count(r.primary)) continue;
    const std::string key = r.key.to_string();
    sqlite3_reset(insert.get());
    sqlite3_bind_text(insert.get(), 1, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert.get(), 2, r.primary.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert.get(), 3, report.created_utc.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert.get(), 4, report.git_revision.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(insert.get(), 5, label.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(insert.get(), 6, r.stats.at(r.primary).median);
    if (const int rc = sqlite3_step(insert.get()); rc != SQLITE_DONE)
      fail(db.get(), rc, db_path, "");
    added += static_cast<size_t>(sqlite3_changes(db.get()));
  }
  exec(db.get(), "COMMIT", db_path);
  return added;
}

void flag_outlier(HistorySeries& s, const OutlierRule& rule) {
  s.flagged = false;
  s.why.clear();
  if (s.points.size() < 3 || rule.window < 1) return;
  const double latest = s.points.back().median;
  const size_t end = s.points.size() - 1;
  const size_t begin = end > rule.window ? end - rule.window : 0;
  std::vector<double> prev;
  for (size_t i = begin; i < end; ++i) prev.push_back(s.points[i].median);
  const double med = median(prev);
  std::vector<double> dev;
  for (double v : prev) dev.push_back(std::fabs(v - med));
  const double mad = median(dev);
  const double bound = std::max(rule.mad_factor * 1.4826 * mad, rule.min_relative * med);
  if (std::fabs(latest - med) > bound) {
    s.flagged = true;
    s.why = fmt::format(
        "latest {:.4g} s is {:+.1f}% from the median {:.4g} s of the {} before it "
        "(bound ±{:.1f}%): {}",
        latest, 100 * (latest / med - 1), med, prev.size(), 100 * bound / med,
        latest > med ? "slower" : "faster");
  }
}

std::vector<HistorySeries> history_series(const std::string& db_path, const OutlierRule& rule) {
  Db db = open_db(db_path, false);
  Stmt q = prepare(db.get(),
                   "SELECT run_key, series, created_utc, git_revision, report, median FROM runs "
                   "ORDER BY run_key, series, created_utc, id",
                   db_path);
  std::vector<HistorySeries> out;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    auto text = [&](int col) {
      const unsigned char* t = sqlite3_column_text(q.get(), col);
      return std::string(t ? reinterpret_cast<const char*>(t) : "");
    };
    const std::string key = text(0), series = text(1);
    if (out.empty() || out.back().key != key || out.back().series != series)
      out.push_back({key, series, {}, false, ""});
    out.back().points.push_back({text(2), text(3), text(4), sqlite3_column_double(q.get(), 5)});
  }
  if (rc != SQLITE_DONE) fail(db.get(), rc, db_path, "");
  for (HistorySeries& s : out) flag_outlier(s, rule);
  return out;
}

}  // namespace capbench
