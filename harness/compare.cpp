#include "harness/compare.h"

#include "harness/markup.h"
#include "harness/run_view.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

namespace capbench {
namespace {

constexpr size_t kExactMaxSmaller = 8;

// Number of orderings of m x-values and n y-values by U (pairs with x > y): the coefficients of
// the Gaussian binomial [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), built one
// factor at a time (after each, the polynomial is [n+i choose i]_q). O(m²·n) time and O(m·n)
// memory, so the exact test stays cheap for any n when m is small.
std::vector<double> exact_u_counts(size_t m, size_t n) {
  if (m > n) std::swap(m, n);
  std::vector<double> c(m * n + 1, 0.0);
  c[0] = 1;
  size_t degree = 0;
  for (size_t i = 1; i <= m; ++i) {
    degree += n;  // the degree of [n+i choose i]_q is i·n
    for (size_t k = degree; k >= n + i; --k) c[k] -= c[k - n - i];  // × (1 - q^(n+i))
    for (size_t k = i; k <= degree; ++k) c[k] += c[k - i];          // ÷ (1 - q^i)
  }
  return c;
}

std::string human_seconds(double s) {
  if (s >= 1) return fmt::format("{:.3f} s", s);
  if (s >= 1e-3) return fmt::format("{:.2f} ms", s * 1e3);
  return fmt::format("{:.1f} us", s * 1e6);
}

bool is_bad(Verdict v) {
  return v == Verdict::regressed || v == Verdict::failed;
}

RunComparison compare_runs(const RunRecord& base, const RunRecord& now, const std::string& key,
                           const std::string& base_label, const std::string& new_label,
                           const CompareOptions& o) {
  RunComparison c;
  c.key = key;
  c.workload = base.key.workload;
  c.base_label = base_label;
  c.new_label = new_label;
  c.series = base.primary;
  const bool base_ok = base.status == "ok", new_ok = now.status == "ok";
  if (base_ok && !new_ok) {
    c.verdict = now.status == "failed" ? Verdict::failed : Verdict::not_comparable;
    c.note = now.status + ": " + now.reason;
    return c;
  }
  if (!base_ok && new_ok) {
    c.verdict = base.status == "failed" ? Verdict::fixed : Verdict::not_comparable;
    c.note = "baseline was " + base.status + ": " + base.reason;
    return c;
  }
  if (!base_ok) {
    c.verdict = Verdict::not_comparable;
    c.note = "baseline " + base.status + ", new " + now.status;
    return c;
  }
  // A time-scaled emulation measured the target in slow motion: its times on the target (each
  // sample times its run's time scale) are what compares, whatever scale each side ran at.
  const auto scaled = [](const RunRecord& r, const std::vector<double>& samples) {
    const double s = time_scale_of(r);
    std::vector<double> out = samples;
    for (double& x : out) x *= s;
    return out;
  };
  const auto bs = base.samples.find(base.primary), ns = now.samples.find(base.primary);
  if (bs == base.samples.end() || ns == now.samples.end() || bs->second.empty() ||
      ns->second.empty()) {
    c.verdict = Verdict::not_comparable;
    c.note = "no samples of series " + base.primary + " on both sides";
    return c;
  }
  const std::vector<double> base_samples = scaled(base, bs->second);
  const std::vector<double> new_samples = scaled(now, ns->second);
  c.base_n = base_samples.size();
  c.new_n = new_samples.size();
  c.base_median = summarize(base_samples).median;
  c.new_median = summarize(new_samples).median;
  c.ratio = c.new_median / c.base_median;
  const MannWhitney mw = mann_whitney_u(base_samples, new_samples);
  c.p = mw.p;
  c.exact = mw.exact;
  if (c.ratio > 1 + o.threshold && c.p < o.alpha)
    c.verdict = Verdict::regressed;
  else if (c.ratio < 1 - o.threshold && c.p < o.alpha)
    c.verdict = Verdict::improved;
  return c;
}

void finish(Comparison& c) {
  double log_sum = 0;
  c.geomean_count = 0;
  for (const RunComparison& r : c.rows)
    if (r.ratio > 0) {
      log_sum += std::log(r.ratio);
      ++c.geomean_count;
    }
  c.geomean_ratio = c.geomean_count ? std::exp(log_sum / static_cast<double>(c.geomean_count)) : 1;
}

// A report's runs by key. Two runs with one key cannot both be matched: the first is compared,
// and the others are listed, never silently dropped.
std::map<std::string, const RunRecord*> runs_by_key(const Report& report, const std::string& name,
                                                    Comparison& c) {
  std::map<std::string, const RunRecord*> out;
  for (size_t i = 0; i < report.runs.size(); ++i) {
    const std::string key = report.runs[i].key.to_string();
    if (!out.emplace(key, &report.runs[i]).second)
      c.unmatched.push_back(
          fmt::format("duplicate in {} (run {}, not compared): {}", name, i, key));
  }
  return out;
}

std::string field_value(const RunKey& k, const std::string& field) {
  if (field == "backend") return k.backend;
  if (field == "emulation.profile")
    return k.emulation_profile.empty() ? "native" : k.emulation_profile;
  if (field == "model") return k.model;
  if (field == "dtype") return k.dtype;
  if (field == "device") return k.device;
  if (field == "threads") return std::to_string(k.threads);
  throw std::invalid_argument("--by: unknown field " + field);
}

RunKey without_field(RunKey k, const std::string& field) {
  // Thread count belongs to the backend (the reference always runs one).
  if (field == "backend")
    k.backend = "*", k.threads = -1;
  else if (field == "emulation.profile")
    k.emulation_profile = "*", k.emulation_mode = "*";
  else if (field == "model")
    k.model = "*";
  else if (field == "dtype")
    k.dtype = "*";
  else if (field == "device")
    k.device = "*";
  else if (field == "threads")
    k.threads = -1;
  return k;
}

}  // namespace

MannWhitney mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y,
                           bool allow_exact) {
  MannWhitney r;
  const size_t m = x.size(), n = y.size();
  if (m == 0 || n == 0) return r;
  // Ranks of the pooled sample, ties sharing their mean rank.
  std::vector<std::pair<double, int>> pooled;
  for (double v : x) pooled.push_back({v, 0});
  for (double v : y) pooled.push_back({v, 1});
  std::sort(pooled.begin(), pooled.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  const size_t total = m + n;
  double rank_sum_x = 0, tie_term = 0;
  bool ties = false;
  for (size_t i = 0; i < total;) {
    size_t j = i;
    while (j < total && pooled[j].first == pooled[i].first) ++j;
    const double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    const double t = static_cast<double>(j - i);
    if (t > 1) ties = true;
    tie_term += t * t * t - t;
    for (size_t k = i; k < j; ++k)
      if (pooled[k].second == 0) rank_sum_x += mean_rank;
    i = j;
  }
  const double dm = static_cast<double>(m), dn = static_cast<double>(n);
  r.u = rank_sum_x - dm * (dm + 1) / 2;
  const double u_big = std::max(r.u, dm * dn - r.u);
  if (allow_exact && !ties && std::min(m, n) <= kExactMaxSmaller) {
    const std::vector<double> counts = exact_u_counts(m, n);
    double all = 0, tail = 0;
    for (size_t u = 0; u < counts.size(); ++u) {
      all += counts[u];
      if (static_cast<double>(u) >= u_big) tail += counts[u];
    }
    r.p = std::min(1.0, 2 * tail / all);
    r.exact = true;
    return r;
  }
  const double nn = dm + dn;
  const double var = dm * dn / 12.0 * ((nn + 1) - tie_term / (nn * (nn - 1)));
  if (var <= 0) return r;  // every value equal: no evidence of a difference
  const double z = (u_big - dm * dn / 2 - 0.5) / std::sqrt(var);
  r.p = std::min(1.0, std::erfc(z / std::sqrt(2.0)));
  return r;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::unchanged:
      return "unchanged";
    case Verdict::regressed:
      return "REGRESSED";
    case Verdict::improved:
      return "improved";
    case Verdict::failed:
      return "FAILED";
    case Verdict::fixed:
      return "fixed";
    case Verdict::not_comparable:
      return "n/a";
  }
  return "?";
}

bool Comparison::any_regressed() const {
  return std::any_of(rows.begin(), rows.end(),
                     [](const RunComparison& r) { return is_bad(r.verdict); });
}

Comparison compare_reports(const std::vector<std::pair<std::string, Report>>& reports,
                           const CompareOptions& o) {
  Comparison c;
  if (reports.size() < 2) return c;
  const auto& [base_name, base] = reports.front();
  const std::map<std::string, const RunRecord*> base_runs = runs_by_key(base, base_name, c);
  for (size_t i = 1; i < reports.size(); ++i) {
    const auto& [name, rep] = reports[i];
    const std::map<std::string, const RunRecord*> new_runs = runs_by_key(rep, name, c);
    for (const auto& [key, run] : base_runs) {
      auto it = new_runs.find(key);
      if (it == new_runs.end())
        c.unmatched.push_back("only in " + base_name + ": " + key);
      else
        c.rows.push_back(compare_runs(*run, *it->second, key, base_name, name, o));
    }
    for (const auto& [key, run] : new_runs)
      if (!base_runs.count(key)) c.unmatched.push_back("only in " + name + ": " + key);
  }
  finish(c);
  return c;
}

Comparison compare_by_field(const Report& report, const std::string& field,
                            const std::optional<std::string>& base_value, const CompareOptions& o) {
  Comparison c;
  std::string base = base_value.value_or("");
  // group key -> value -> run, in report order.
  std::vector<std::string> group_order;
  std::map<std::string, std::vector<std::pair<std::string, const RunRecord*>>> groups;
  for (const RunRecord& r : report.runs) {
    const std::string value = field_value(r.key, field);
    if (base.empty()) base = value;
    const std::string group = without_field(r.key, field).to_string();
    if (!groups.count(group)) group_order.push_back(group);
    groups[group].push_back({value, &r});
  }
  for (const std::string& group : group_order) {
    const auto& members = groups[group];
    auto base_it = std::find_if(members.begin(), members.end(),
                                [&](const auto& m) { return m.first == base; });
    if (base_it == members.end()) {
      for (const auto& [value, run] : members)
        c.unmatched.push_back(fmt::format("no {}={} run for: {} ({})", field, base, group, value));
      continue;
    }
    for (const auto& [value, run] : members)
      if (value != base)
        c.rows.push_back(compare_runs(*base_it->second, *run, group, base, value, o));
  }
  finish(c);
  return c;
}

std::string format_console(const Comparison& c, const CompareOptions& o, bool colour) {
  std::string out = fmt::format(
      "threshold {:.1f}%, alpha {}: a run regressed when its median time "
      "rose by more than the threshold with p below alpha\n",
      100 * o.threshold, o.alpha);
  const char* row = "{:<10} {:>7} {:>8} {:>12} {:>12} {:>7}  {} -> {}  {}\n";
  out += fmt::format(row, "verdict", "time x", "p", "base median", "new median", "n", "base", "new",
                     "run");
  for (const RunComparison& r : c.rows) {
    // Pad before colouring, so escape codes do not shift the columns.
    std::string verdict = fmt::format("{:<10}", verdict_name(r.verdict));
    if (colour && is_bad(r.verdict))
      verdict = "\033[31m" + verdict + "\033[0m";
    else if (colour && (r.verdict == Verdict::improved || r.verdict == Verdict::fixed))
      verdict = "\033[32m" + verdict + "\033[0m";
    if (r.base_n == 0) {
      out += fmt::format("{} {:>7} {:>8} {:>12} {:>12} {:>7}  {} -> {}  {}  ({})\n", verdict, "-",
                         "-", "-", "-", "-", r.base_label, r.new_label, r.key, r.note);
      continue;
    }
    out += fmt::format(row, verdict, fmt::format("{:.3f}", r.ratio), fmt::format("{:.2g}", r.p),
                       human_seconds(r.base_median), human_seconds(r.new_median),
                       fmt::format("{}/{}", r.base_n, r.new_n), r.base_label, r.new_label, r.key);
  }
  out +=
      fmt::format("geomean time ratio {:.3f} over {} run(s)\n", c.geomean_ratio, c.geomean_count);
  for (const std::string& u : c.unmatched) out += "unmatched: " + u + "\n";
  return out;
}

std::string format_markdown(const Comparison& c, const CompareOptions& o) {
  std::string out = fmt::format(
      "Threshold {:.1f}%, alpha {}. Time ratio = new median / base median (above 1 is slower).\n\n"
      "| verdict | time × | p | base median | new median | n | base → new | run |\n"
      "|---|---:|---:|---:|---:|---:|---|---|\n",
      100 * o.threshold, o.alpha);
  for (const RunComparison& r : c.rows) {
    if (r.base_n == 0)
      out += fmt::format("| {} | - | - | - | - | - | {} → {} | {} ({}) |\n",
                         verdict_name(r.verdict), r.base_label, r.new_label, r.key, r.note);
    else
      out += fmt::format("| {} | {:.3f} | {:.2g} | {} | {} | {}/{} | {} → {} | `{}` |\n",
                         verdict_name(r.verdict), r.ratio, r.p, human_seconds(r.base_median),
                         human_seconds(r.new_median), r.base_n, r.new_n, r.base_label, r.new_label,
                         r.key);
  }
  out += fmt::format("\nGeomean time ratio **{:.3f}** over {} run(s).\n", c.geomean_ratio,
                     c.geomean_count);
  if (!c.unmatched.empty()) {
    out += "\nUnmatched runs:\n\n";
    for (const std::string& u : c.unmatched) out += "- " + u + "\n";
  }
  return out;
}

std::string format_json(const Comparison& c, const CompareOptions& o) {
  nlohmann::json rows = nlohmann::json::array();
  for (const RunComparison& r : c.rows)
    rows.push_back({{"key", r.key},
                    {"workload", r.workload},
                    {"series", r.series},
                    {"base", r.base_label},
                    {"new", r.new_label},
                    {"base_median", r.base_median},
                    {"new_median", r.new_median},
                    {"ratio", r.ratio},
                    {"p", r.p},
                    {"exact_p", r.exact},
                    {"base_n", r.base_n},
                    {"new_n", r.new_n},
                    {"verdict", verdict_name(r.verdict)},
                    {"note", r.note}});
  return nlohmann::json{{"threshold", o.threshold},
                        {"alpha", o.alpha},
                        {"rows", rows},
                        {"unmatched", c.unmatched},
                        {"geomean_ratio", c.geomean_ratio},
                        {"geomean_count", c.geomean_count},
                        {"regressed", c.any_regressed()}}
             .dump(2) +
         "\n";
}

std::string format_junit(const Comparison& c, const CompareOptions& o) {
  size_t failures = 0;
  for (const RunComparison& r : c.rows) failures += is_bad(r.verdict) ? 1 : 0;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format("<testsuites name=\"capbench compare\" tests=\"{}\" failures=\"{}\">\n",
                     c.rows.size(), failures);
  out += fmt::format(
      "  <testsuite name=\"capbench compare\" tests=\"{}\" failures=\"{}\" "
      "skipped=\"{}\">\n",
      c.rows.size(), failures,
      std::count_if(c.rows.begin(), c.rows.end(),
                    [](const RunComparison& r) { return r.verdict == Verdict::not_comparable; }));
  for (const RunComparison& r : c.rows) {
    out += fmt::format("    <testcase classname=\"capbench.{}\" name=\"{}\" time=\"{}\">\n",
                       escape_markup(r.workload), escape_markup(r.key), r.new_median);
    const std::string detail =
        r.base_n ? fmt::format(
                       "median {} -> {} (time x{:.3f}, p={:.3g}, threshold {:.1f}%, "
                       "alpha {}), {} -> {}",
                       human_seconds(r.base_median), human_seconds(r.new_median), r.ratio, r.p,
                       100 * o.threshold, o.alpha, r.base_label, r.new_label)
                 : r.note;
    if (is_bad(r.verdict))
      out += fmt::format("      <failure message=\"{}\">{}</failure>\n",
                         escape_markup(std::string(verdict_name(r.verdict)) + ": " + detail),
                         escape_markup(detail));
    else if (r.verdict == Verdict::not_comparable)
      out += fmt::format("      <skipped message=\"{}\"/>\n", escape_markup(detail));
    else
      out += fmt::format("      <system-out>{}</system-out>\n",
                         escape_markup(std::string(verdict_name(r.verdict)) + ": " + detail));
    out += "    </testcase>\n";
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

}  // namespace capbench
