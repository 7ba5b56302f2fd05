// One self-contained HTML file (no scripts, no network) from a report: throughput bars per
// workload, sample distributions, a roofline of the per-op breakdown, and the tables.
#include "harness/html_report.h"

#include "harness/console.h"
#include "harness/markup.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <map>

namespace capbench {
namespace {

std::string esc(const std::string& s) {
  return escape_markup(s);
}

const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                          "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
std::string colour(size_t i) {
  return kPalette[i % (sizeof kPalette / sizeof *kPalette)];
}

std::string run_label(const RunRecord& r) {
  std::string s = r.key.backend + " · " + r.key.model + " · b" + std::to_string(r.key.batch);
  if (r.key.workload == "train_step")
    s += " × " + std::to_string(r.key.seq);
  else
    s += " p" + std::to_string(r.key.prompt) + " d" + std::to_string(r.key.decode_steps);
  if (!r.key.emulation_profile.empty()) s += " · " + r.key.emulation_profile;
  return s;
}

// The throughput a workload is judged by, and its unit.
std::pair<double, std::string> throughput(const RunRecord& r) {
  auto get = [&](const char* m) { return r.metrics.count(m) ? r.metrics.at(m) : 0.0; };
  if (r.key.workload == "train_step") return {get("tokens_per_s"), "train tokens/s"};
  if (r.metrics.count("decode_tokens_per_s"))
    return {get("decode_tokens_per_s"), "decode tokens/s"};
  return {get("prefill_tokens_per_s"), "prefill tokens/s"};
}

// Horizontal bars, one per run, for one throughput unit.
std::string bar_chart(const std::vector<const RunRecord*>& runs, const std::string& unit) {
  double max_v = 0;
  for (const RunRecord* r : runs) max_v = std::max(max_v, throughput(*r).first);
  const int left = 300, width = 420, bar = 22, gap = 8;
  const int height = static_cast<int>(runs.size()) * (bar + gap) + 40;
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' role='img' "
      "aria-label='{}'>\n",
      left + width + 90, height, esc(unit));
  for (size_t i = 0; i < runs.size(); ++i) {
    const double v = throughput(*runs[i]).first;
    const int y = 10 + static_cast<int>(i) * (bar + gap);
    const int w = max_v > 0 ? static_cast<int>(width * v / max_v) : 0;
    svg += fmt::format("<text x='{}' y='{}' text-anchor='end' class='lbl'>{}</text>\n", left - 8,
                       y + 16, esc(run_label(*runs[i])));
    svg += fmt::format(
        "<rect x='{}' y='{}' width='{}' height='{}' fill='{}'><title>{}: {:.1f} "
        "{}</title></rect>\n",
        left, y, std::max(w, 1), bar, colour(i), esc(run_label(*runs[i])), v, esc(unit));
    svg += fmt::format("<text x='{}' y='{}' class='val'>{}</text>\n", left + w + 6, y + 16,
                       human_rate(v, "tokens/s"));
  }
  svg += fmt::format("<text x='{}' y='{}' class='axis'>{}</text>\n</svg>\n", left, height - 6,
                     esc(unit));
  return svg;
}

// Every sample of each run's primary series over its median: spread is comparable across runs.
std::string distribution_chart(const std::vector<const RunRecord*>& runs) {
  const int left = 300, width = 420, row = 26;
  const double lo = 0.5, hi = 2.0;  // ratio to the median, log scale
  auto x_of = [&](double ratio) {
    ratio = std::clamp(ratio, lo, hi);
    return left + width * (std::log(ratio) - std::log(lo)) / (std::log(hi) - std::log(lo));
  };
  const int height = static_cast<int>(runs.size()) * row + 50;
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' role='img' "
      "aria-label='sample distributions'>\n",
      left + width + 40, height);
  for (double t : {0.5, 0.8, 1.0, 1.25, 2.0}) {
    const double x = x_of(t);
    svg += fmt::format(
        "<line x1='{0:.1f}' x2='{0:.1f}' y1='5' y2='{1}' class='grid'/>"
        "<text x='{0:.1f}' y='{2}' text-anchor='middle' class='axis'>{3}×</text>\n",
        x, height - 30, height - 14, t);
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = *runs[i];
    const int y = 18 + static_cast<int>(i) * row;
    const auto& samples = r.samples.at(r.primary);
    const double med = r.stats.at(r.primary).median;
    svg += fmt::format("<text x='{}' y='{}' text-anchor='end' class='lbl'>{} ({})</text>\n",
                       left - 8, y + 4, esc(run_label(r)), esc(r.primary));
    for (size_t j = 0; j < samples.size(); ++j) {
      const double jitter = static_cast<double>(j % 5) * 2.0 - 4.0;
      svg += fmt::format(
          "<circle cx='{:.1f}' cy='{:.1f}' r='2.5' fill='{}' fill-opacity='0.6'>"
          "<title>{:.4g} s</title></circle>\n",
          x_of(samples[j] / med), y + jitter, colour(i), samples[j]);
    }
  }
  svg += fmt::format(
      "<text x='{}' y='{}' class='axis'>sample / median (log scale, clipped "
      "to 0.5–2×)</text>\n</svg>\n",
      left, height - 1);
  return svg;
}

// Achieved FLOP/s against arithmetic intensity, per op, under the calibrated roof.
std::string roofline_chart(const std::vector<const RunRecord*>& runs, double peak_flops,
                           double peak_bw) {
  const int left = 70, top = 20, width = 560, height = 340;
  const double x_lo = -2, x_hi = 4;  // log10 FLOP/byte
  double y_hi = std::ceil(std::log10(std::max(peak_flops, 1.0)) + 0.3), y_lo = y_hi - 5;
  auto px = [&](double ai) { return left + width * (std::log10(ai) - x_lo) / (x_hi - x_lo); };
  auto py = [&](double f) {
    return top + height * (1 - (std::log10(std::max(f, 1e-300)) - y_lo) / (y_hi - y_lo));
  };
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' role='img' "
      "aria-label='roofline'>\n",
      left + width + 380, top + height + 50);
  for (double e = x_lo; e <= x_hi; e += 1)
    svg += fmt::format(
        "<line x1='{0:.1f}' x2='{0:.1f}' y1='{1}' y2='{2}' class='grid'/><text "
        "x='{0:.1f}' y='{3}' text-anchor='middle' class='axis'>1e{4}</text>\n",
        px(std::pow(10, e)), top, top + height, top + height + 16, e);
  for (double e = y_lo; e <= y_hi; e += 1)
    svg += fmt::format(
        "<line x1='{0}' x2='{1}' y1='{2:.1f}' y2='{2:.1f}' class='grid'/><text "
        "x='{3}' y='{4:.1f}' text-anchor='end' class='axis'>1e{5}</text>\n",
        left, left + width, py(std::pow(10, e)), left - 6, py(std::pow(10, e)) + 4, e);
  if (peak_flops > 0 && peak_bw > 0) {
    const double ridge = peak_flops / peak_bw;
    const double a0 = std::pow(10, x_lo), a1 = std::pow(10, x_hi);
    svg += fmt::format(
        "<polyline fill='none' stroke='#333' stroke-width='2' points='{:.1f},{:.1f} "
        "{:.1f},{:.1f} {:.1f},{:.1f}'><title>roof: {}, {}</title>"
        "</polyline>\n",
        px(a0), py(a0 * peak_bw), px(ridge), py(peak_flops), px(a1), py(peak_flops),
        human_rate(peak_flops, "FLOP/s"), human_rate(peak_bw, "B/s"));
  }
  int legend_y = top;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = *runs[i];
    for (const OpRecord& o : r.ops) {
      if (o.flops <= 0 || o.bytes <= 0 || o.seconds <= 0) continue;
      const double ai = o.flops / o.bytes, f = o.flops / o.seconds;
      svg += fmt::format(
          "<circle cx='{:.1f}' cy='{:.1f}' r='4' fill='{}' fill-opacity='0.75'>"
          "<title>{} · {}: {:.3g} FLOP/byte, {}</title>"
          "</circle>\n",
          px(std::clamp(ai, std::pow(10, x_lo), std::pow(10, x_hi))), py(f), colour(i),
          esc(run_label(r)), esc(o.op), ai, human_rate(f, "FLOP/s"));
    }
    svg += fmt::format(
        "<rect x='{}' y='{}' width='10' height='10' fill='{}'/><text x='{}' "
        "y='{}' class='lbl'>{} {}</text>\n",
        left + width + 12, legend_y, colour(i), left + width + 26, legend_y + 9, esc(run_label(r)),
        esc(r.key.workload));
    legend_y += 16;
  }
  svg += fmt::format(
      "<text x='{}' y='{}' class='axis'>arithmetic intensity (FLOP/byte, cost "
      "model)</text><text x='12' y='{}' class='axis' transform='rotate(-90 12 {})'>"
      "achieved FLOP/s</text>\n</svg>\n",
      left, top + height + 40, top + height / 2, top + height / 2);
  return svg;
}

std::string summary_table(const Report& report) {
  std::string t =
      "<table><tr><th>backend</th><th>model</th><th>workload</th><th>status</th>"
      "<th>throughput</th><th>median</th><th>CV</th><th>MFU / MBU</th>"
      "<th>roofline</th><th>valid</th><th>canaries</th></tr>\n";
  for (const RunRecord& r : report.runs) {
    std::string thr = "-", med = "-", cv = "-", util = "-", roof = "-", canaries;
    if (r.status == "ok") {
      const auto [v, unit] = throughput(r);
      thr = fmt::format("{:.1f} {}", v, unit);
      const Stats& s = r.stats.at(r.primary);
      med = fmt::format("{:.4g} ms ({})", s.median * 1e3, r.primary);
      cv = fmt::format("{:.1f}%", 100 * s.cv);
      for (const char* m : {"mfu", "mbu"})
        if (r.metrics.count(m)) util = fmt::format("{} {:.1f}%", m, 100 * r.metrics.at(m));
      if (r.roofline.available)
        roof = fmt::format("{:.4g} ms, {}-bound", r.roofline.seconds * 1e3, r.roofline.bound);
    }
    for (const Canary& c : r.canaries)
      canaries += fmt::format("<span class='{}'>{}</span> ", c.passed ? "ok" : "bad", esc(c.name));
    t += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class='{}'>{}{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        esc(r.key.backend), esc(r.key.model), esc(r.key.workload), r.status == "ok" ? "ok" : "bad",
        esc(r.status), r.reason.empty() ? "" : ": " + esc(r.reason), thr, med, cv, util, roof,
        r.status != "ok" ? "-" : (r.validity.valid ? "yes" : "no"), canaries);
  }
  return t + "</table>\n";
}

std::string op_tables(const Report& report) {
  std::string out;
  for (const RunRecord& r : report.runs) {
    if (r.ops.empty()) continue;
    double total = 0;
    for (const OpRecord& o : r.ops) total += o.seconds;
    std::vector<OpRecord> ops = r.ops;
    std::sort(ops.begin(), ops.end(),
              [](const OpRecord& a, const OpRecord& b) { return a.seconds > b.seconds; });
    out += fmt::format(
        "<details><summary>{} — {} ({}, {:.2f} ms profiled)</summary>\n<table>"
        "<tr><th>op</th><th>calls</th><th>ms</th><th>share</th><th>FLOP/s</th>"
        "<th>bytes/s</th><th>bound</th></tr>\n",
        esc(run_label(r)), esc(r.key.workload), esc(r.ops_unit), total * 1e3);
    for (const OpRecord& o : ops)
      out += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{:.3f}</td><td>{:.1f}%</td><td>{}</td>"
          "<td>{}</td><td>{}</td></tr>\n",
          esc(o.op), o.calls, o.seconds * 1e3, 100 * o.seconds / total,
          human_rate(o.seconds > 0 ? o.flops / o.seconds : 0, "FLOP/s"),
          human_rate(o.seconds > 0 ? o.bytes / o.seconds : 0, "B/s"),
          o.bound.empty() ? "-" : o.bound);
    out += "</table></details>\n";
  }
  return out;
}

}  // namespace

std::string render_html(const Report& report, const std::string& title) {
  std::vector<const RunRecord*> ok;
  for (const RunRecord& r : report.runs)
    if (r.status == "ok" && r.stats.count(r.primary)) ok.push_back(&r);
  std::map<std::string, std::vector<const RunRecord*>> by_unit;
  std::vector<std::string> units;
  for (const RunRecord* r : ok) {
    const std::string unit = throughput(*r).second;
    if (!by_unit.count(unit)) units.push_back(unit);
    by_unit[unit].push_back(r);
  }
  double peak_flops = 0, peak_bw = 0;
  for (const RunRecord* r : ok)
    if (r->roofline.available) {
      peak_flops = r->roofline.peak_flops;
      peak_bw = r->roofline.peak_bytes_per_s;
      break;
    }

  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{}</title>\n<style>\n"
      "body{{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}}\n"
      "h1{{font-size:22px}} h2{{font-size:17px;margin-top:28px}}\n"
      "table{{border-collapse:collapse;font-size:13px;margin:8px 0}}\n"
      "td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} th{{background:#f3f3f3}}\n"
      ".lbl{{font-size:12px}} .val{{font-size:11px;fill:#444}} .axis{{font-size:11px;fill:#555}}\n"
      ".grid{{stroke:#e4e4e4}} .ok{{color:#2a7a2a}} .bad{{color:#b22}} .meta{{color:#555;"
      "font-size:13px}}\n</style></head><body>\n<h1>{}</h1>\n",
      esc(title), esc(title));
  html += fmt::format(
      "<p class='meta'>suite {} · capbench {} ({}) · {} · {} · {} runs</p>\n", esc(report.suite),
      esc(report.capbench_version), esc(report.git_revision), esc(report.created_utc),
      esc(report.host.value("cpu", std::string("unknown host"))), report.runs.size());
  html += "<h2>Runs</h2>\n" + summary_table(report);
  for (const std::string& unit : units)
    html += "<h2>Throughput: " + esc(unit) + "</h2>\n" + bar_chart(by_unit[unit], unit);
  if (!ok.empty()) html += "<h2>Sample distributions</h2>\n" + distribution_chart(ok);
  html += "<h2>Roofline of the per-op breakdown</h2>\n";
  if (peak_flops > 0)
    html += fmt::format(
        "<p class='meta'>Roof from the calibrated peaks: {}, {}. Each "
        "point is one op kind of one run (hover for details).</p>\n",
        human_rate(peak_flops, "FLOP/s"), human_rate(peak_bw, "B/s"));
  else
    html += "<p class='meta'>No calibrated peaks in this report: points without a roof.</p>\n";
  html += roofline_chart(ok, peak_flops, peak_bw);
  html += "<h2>Per-op breakdown</h2>\n" + op_tables(report);
  html += "</body></html>\n";
  return html;
}

}  // namespace capbench
