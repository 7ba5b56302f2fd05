// One self-contained HTML file (no scripts, no network) from a report: the runs table, what each
// emulated chip costs relative to the reference chip, throughput bars per workload, sample
// distributions, a roofline of the per-op breakdown, and the per-op tables. Every string taken
// from the report is escaped: reports travel between machines, and a page must never run what
// one holds.
#include "harness/html_report.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <map>

#include "harness/console.h"
#include "harness/markup.h"
#include "harness/run_view.h"

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

// Pixels a label of 12 px system-ui text needs, generously (digits and capitals are widest).
int label_pixels(const std::string& text) {
  size_t chars = 0;
  for (unsigned char c : text) chars += (c & 0xC0) != 0x80;  // code points, not bytes
  return static_cast<int>(chars) * 7 + 16;
}

// The left margin that fits every label whole.
int margin_for(const std::vector<std::string>& labels, int at_least = 120) {
  int w = at_least;
  for (const std::string& l : labels) w = std::max(w, label_pixels(l));
  return w;
}

// A run's label in charts: the values of the report's distinguishing key fields, workload
// aside (each chart is of one workload).
std::string run_label(const RunRecord& r, const std::vector<KeyColumn>& columns) {
  std::string s;
  for (const KeyColumn& c : columns) {
    if (c.name == "workload") continue;
    const std::string v = c.value(r);
    if (v == "-") continue;
    s += (s.empty() ? "" : " · ") + v;
  }
  return s;
}

// Horizontal bars, one per run, for one throughput unit.
std::string bar_chart(const std::vector<const RunRecord*>& runs, const std::string& unit,
                      const std::vector<KeyColumn>& columns) {
  double max_v = 0;
  std::vector<std::string> labels;
  for (const RunRecord* r : runs) {
    max_v = std::max(max_v, headline(*r).throughput);
    labels.push_back(run_label(*r, columns));
  }
  const int left = margin_for(labels), width = 420, bar = 22, gap = 8;
  const int height = static_cast<int>(runs.size()) * (bar + gap) + 40;
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' role='img' "
      "aria-label='{}'>\n",
      left + width + 110, height, esc(unit));
  for (size_t i = 0; i < runs.size(); ++i) {
    const double v = headline(*runs[i]).throughput;
    const int y = 10 + static_cast<int>(i) * (bar + gap);
    const int w = max_v > 0 ? static_cast<int>(width * v / max_v) : 0;
    svg += fmt::format("<text x='{}' y='{}' text-anchor='end' class='lbl'>{}</text>\n", left - 8,
                       y + 16, esc(labels[i]));
    svg += fmt::format(
        "<rect x='{}' y='{}' width='{}' height='{}' fill='{}'><title>{}: {:.1f} "
        "{}</title></rect>\n",
        left, y, std::max(w, 1), bar, colour(i), esc(labels[i]), v, esc(unit));
    svg += fmt::format("<text x='{}' y='{}' class='val'>{}</text>\n", left + w + 6, y + 16,
                       esc(human_rate(v, "tokens/s")));
  }
  svg += fmt::format("<text x='{}' y='{}' class='axis'>{}</text>\n</svg>\n", left, height - 6,
                     esc(unit));
  return svg;
}

// Runs of one workload that differ only in the chip they emulate: the reference is the run that
// plays the chip the others are relative to (emulating its own relative_to), else the native one.
struct EmulationGroup {
  std::string label;  // the group's key, emulation aside
  const RunRecord* reference = nullptr;
  std::vector<const RunRecord*> others;
};

std::vector<EmulationGroup> emulation_groups(const std::vector<const RunRecord*>& runs,
                                             const std::vector<KeyColumn>& columns) {
  std::vector<EmulationGroup> groups;
  std::map<std::string, size_t> index;
  for (const RunRecord* r : runs) {
    RunKey k = r->key;
    k.emulation_profile = k.emulation_mode = "";
    const std::string group_key = k.to_string() + "|rel:" + r->key.emulation_relative_to;
    if (!index.count(group_key)) {
      index[group_key] = groups.size();
      std::string label;
      for (const KeyColumn& c : columns)
        if (c.name != "workload" && c.name != "emulating" && c.value(*r) != "-")
          label += (label.empty() ? "" : " · ") + c.value(*r);
      groups.push_back({label, nullptr, {}});
    }
    EmulationGroup& g = groups[index[group_key]];
    const bool plays_reference = !r->key.emulation_relative_to.empty() &&
                                 r->key.emulation_profile == r->key.emulation_relative_to;
    const bool native = r->key.emulation_profile.empty();
    if (plays_reference || (native && !g.reference))
      g.reference = r;
    else
      g.others.push_back(r);
  }
  // A native run is only the reference where no run plays the reference chip.
  std::vector<EmulationGroup> out;
  for (EmulationGroup& g : groups) {
    std::vector<const RunRecord*> kept;
    for (const RunRecord* r : g.others)
      if (!r->key.emulation_profile.empty()) kept.push_back(r);
    g.others = kept;
    if (g.reference && !g.others.empty()) out.push_back(g);
  }
  return out;
}

std::string reference_name(const RunRecord& r) {
  return r.key.emulation_profile.empty() ? "the native run" : r.key.emulation_profile;
}

std::string group_header(const EmulationGroup& g) {
  return g.label + " (vs " + reference_name(*g.reference) + ")";
}

// "What an H20 costs": each emulated chip's median time over the reference chip's, per group.
std::string emulation_cost_chart(const std::vector<EmulationGroup>& groups) {
  std::vector<std::string> labels;
  double max_ratio = 1;
  for (const EmulationGroup& g : groups)
    for (const RunRecord* r : g.others) {
      labels.push_back(emulation_label(*r));
      max_ratio = std::max(max_ratio, primary_median(*r) / primary_median(*g.reference));
    }
  int left = margin_for(labels);
  for (const EmulationGroup& g : groups)  // headers are bold: a seventh wider
    left = std::max(left, label_pixels(group_header(g)) * 8 / 7);
  const int width = 420, bar = 18, gap = 6, header = 22;
  int height = 30;
  for (const EmulationGroup& g : groups)
    height += header + static_cast<int>(g.others.size()) * (bar + gap);
  auto x_of = [&](double ratio) { return left + width * ratio / max_ratio; };
  std::string svg = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' role='img' "
      "aria-label='time relative to the reference chip'>\n",
      left + width + 110, height);
  svg += fmt::format(
      "<line x1='{0:.1f}' x2='{0:.1f}' y1='4' y2='{1}' stroke='#333' stroke-dasharray='4 3'/>"
      "<text x='{0:.1f}' y='{2}' text-anchor='middle' class='axis'>1× (reference)</text>\n",
      x_of(1), height - 22, height - 8);
  int y = 4;
  size_t bar_index = 0;
  for (const EmulationGroup& g : groups) {
    svg += fmt::format("<text x='{}' y='{}' text-anchor='end' class='grp'>{}</text>\n", left - 8,
                       y + 15, esc(group_header(g)));
    y += header;
    for (const RunRecord* r : g.others) {
      const double ratio = primary_median(*r) / primary_median(*g.reference);
      const std::string label = emulation_label(*r);
      svg += fmt::format("<text x='{}' y='{}' text-anchor='end' class='lbl'>{}</text>\n", left - 8,
                         y + 13, esc(label));
      svg += fmt::format(
          "<rect x='{}' y='{}' width='{:.1f}' height='{}' fill='{}'><title>{}: {:.3f}× the "
          "time of {}</title></rect>\n",
          left, y, std::max(1.0, x_of(ratio) - left), bar, colour(bar_index++), esc(label), ratio,
          esc(reference_name(*g.reference)));
      svg += fmt::format("<text x='{:.1f}' y='{}' class='val'>{:.2f}×</text>\n", x_of(ratio) + 6,
                         y + 13, ratio);
      y += bar + gap;
    }
  }
  return svg + "</svg>\n";
}

// Every sample of each run's primary series over its median: spread is comparable across runs.
std::string distribution_chart(const std::vector<const RunRecord*>& runs,
                               const std::vector<KeyColumn>& columns) {
  std::vector<std::string> labels;
  for (const RunRecord* r : runs)
    labels.push_back(run_label(*r, columns) + " · " + r->key.workload + " (" + r->primary + ")");
  const int left = margin_for(labels), width = 420, row = 26;
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
    svg += fmt::format("<text x='{}' y='{}' text-anchor='end' class='lbl'>{}</text>\n", left - 8,
                       y + 4, esc(labels[i]));
    for (size_t j = 0; j < samples.size(); ++j) {
      const double jitter = static_cast<double>(j % 5) * 2.0 - 4.0;
      svg += fmt::format(
          "<circle cx='{:.1f}' cy='{:.1f}' r='2.5' fill='{}' fill-opacity='0.6'>"
          "<title>{:.4g} s</title></circle>\n",
          x_of(med > 0 ? samples[j] / med : 1), y + jitter, colour(i), samples[j]);
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
                           double peak_bw, const std::vector<KeyColumn>& columns) {
  std::vector<std::string> legend;
  for (const RunRecord* r : runs)
    legend.push_back(run_label(*r, columns) + " · " + r->key.workload);
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
      left + width + 40 + margin_for(legend, 0),
      std::max(top + height + 50, top + 16 * static_cast<int>(runs.size()) + 20));
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
        esc(human_rate(peak_flops, "FLOP/s")), esc(human_rate(peak_bw, "B/s")));
  }
  int legend_y = top;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = *runs[i];
    for (const OpRecord& o : r.ops) {
      if (!(o.flops > 0 && o.bytes > 0 && o.seconds > 0)) continue;
      const double ai = o.flops / o.bytes, f = o.flops / o.seconds;
      svg += fmt::format(
          "<circle cx='{:.1f}' cy='{:.1f}' r='4' fill='{}' fill-opacity='0.75'>"
          "<title>{} · {}: {:.3g} FLOP/byte, {}</title>"
          "</circle>\n",
          px(std::clamp(ai, std::pow(10, x_lo), std::pow(10, x_hi))), py(f), colour(i),
          esc(legend[i]), esc(o.op), ai, esc(human_rate(f, "FLOP/s")));
    }
    svg += fmt::format(
        "<rect x='{}' y='{}' width='10' height='10' fill='{}'/><text x='{}' "
        "y='{}' class='lbl'>{}</text>\n",
        left + width + 12, legend_y, colour(i), left + width + 26, legend_y + 9, esc(legend[i]));
    legend_y += 16;
  }
  svg += fmt::format(
      "<text x='{}' y='{}' class='axis'>arithmetic intensity (FLOP/byte, cost "
      "model)</text><text x='12' y='{}' class='axis' transform='rotate(-90 12 {})'>"
      "achieved FLOP/s</text>\n</svg>\n",
      left, top + height + 40, top + height / 2, top + height / 2);
  return svg;
}

std::string summary_table(const Report& report, const std::vector<KeyColumn>& columns) {
  std::string t = "<table><tr>";
  for (const KeyColumn& c : columns) t += "<th>" + esc(c.name) + "</th>";
  t += "<th>status</th><th>throughput</th><th>median</th><th>CI95 of the median</th><th>CV</th>"
       "<th>utilisation</th><th>roofline</th><th>valid</th><th>canaries</th></tr>\n";
  for (const RunRecord& r : report.runs) {
    std::string thr = "-", med = "-", ci = "-", cv = "-", util = "-", roof = "-", canaries;
    if (r.status == "ok") {
      const TableHeadline h = headline(r);
      thr = esc(fmt::format("{:.1f} {}", h.throughput, h.unit));
      util = h.utilisation;
      const Stats& s = r.stats.at(r.primary);
      med = fmt::format("{:.4g} ms ({})", s.median * 1e3, r.primary);
      ci = fmt::format("±{:.1f}% ({} outlier(s) of {})", 100 * s.median_ci_relative(), s.outliers,
                       s.n);
      cv = fmt::format("{:.1f}%", 100 * s.cv);
      if (r.roofline.available)
        roof = fmt::format("{:.4g} ms, {}-bound", r.roofline.seconds * 1e3, r.roofline.bound);
      const std::string whole = whole_model_summary(r);
      if (!whole.empty())
        thr += "<br><small title='" + esc(r.extrapolation.value("formula", std::string())) +
               "'>whole model " + esc(whole) + "</small>";
      const std::string parallel = parallel_summary(r);
      if (!parallel.empty()) thr += "<br><small>" + esc(parallel) + "</small>";
    }
    for (const Canary& c : r.canaries)
      canaries += fmt::format("<span class='{}' title='{}'>{}</span> ", c.passed ? "ok" : "bad",
                              esc(c.detail), esc(c.name));
    t += "<tr>";
    for (const KeyColumn& c : columns) t += "<td>" + esc(c.value(r)) + "</td>";
    std::string notes;
    for (const std::string& why : r.validity.reasons)
      notes += "<br><small>" + esc(why) + "</small>";
    for (const std::string& n : r.notes) notes += "<br><small>" + esc(n) + "</small>";
    t += fmt::format(
        "<td class='{}'>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}{}</td><td>{}</td></tr>\n",
        r.status == "ok" ? "ok" : "bad", esc(r.status),
        r.reason.empty() ? "" : ": " + esc(r.reason), thr, esc(med), esc(ci), esc(cv), esc(util),
        esc(roof), r.status != "ok" ? "-" : (r.validity.valid ? "yes" : "no"), notes, canaries);
  }
  return t + "</table>\n";
}

std::string op_tables(const Report& report, const std::vector<KeyColumn>& columns) {
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
        esc(run_label(r, columns)), esc(r.key.workload), esc(r.ops_unit), total * 1e3);
    for (const OpRecord& o : ops)
      out += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{:.3f}</td><td>{:.1f}%</td><td>{}</td>"
          "<td>{}</td><td>{}</td></tr>\n",
          esc(o.op), o.calls, o.seconds * 1e3, total > 0 ? 100 * o.seconds / total : 0.0,
          esc(human_rate(o.seconds > 0 ? o.flops / o.seconds : 0, "FLOP/s")),
          esc(human_rate(o.seconds > 0 ? o.bytes / o.seconds : 0, "B/s")),
          o.bound.empty() ? "-" : esc(o.bound));
    out += "</table></details>\n";
  }
  return out;
}

}  // namespace

// capbench fidelity's checks: one table per backend, each check with its ratio, goal and verdict.
std::string fidelity_section(const Report& report) {
  std::string out;
  for (const FidelityResult& f : report.fidelity) {
    out += fmt::format(
        "<h2>Emulation fidelity: {} on {}</h2>\n<p class='meta'>Each ratio is of two things "
        "measured in one run, medians of {} repetitions: <span class='{}'>{}</span>.</p>\n",
        esc(f.backend), esc(f.device), f.reps, f.passed() ? "ok" : "bad",
        f.passed() ? "every check meets its goal" : "some checks miss their goal");
    out +=
        "<table><tr><th>check</th><th>what</th><th>ratio</th><th>goal</th><th>verdict</th>"
        "<th>measured</th></tr>\n";
    for (const FidelityCheck& c : f.checks)
      out += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{:.4f}</td><td>{}</td><td class='{}'>{}</td>"
          "<td>{}</td></tr>\n",
          esc(c.kind), esc(c.name), c.ratio,
          c.informational ? std::string("none (informational)")
                          : fmt::format("{:.2f} .. {:.2f}", c.goal_low, c.goal_high),
          c.informational ? "meta"
          : c.passed      ? "ok"
                          : "bad",
          c.informational ? "info"
          : c.passed      ? "meets"
                          : "misses",
          esc(c.detail));
    out += "</table>\n";
    for (const std::string& note : f.notes) out += "<p class='meta'>" + esc(note) + "</p>\n";
  }
  return out;
}

std::string render_html(const Report& report, const std::string& title) {
  const std::vector<KeyColumn> columns = distinguishing_columns(report.runs);
  std::vector<const RunRecord*> ok;
  for (const RunRecord& r : report.runs)
    if (r.status == "ok" && r.stats.count(r.primary)) ok.push_back(&r);
  std::map<std::string, std::vector<const RunRecord*>> by_unit, by_workload;
  std::vector<std::string> units, workloads;
  for (const RunRecord* r : ok) {
    const std::string unit = headline(*r).unit;
    if (!by_unit.count(unit)) units.push_back(unit);
    by_unit[unit].push_back(r);
    if (!by_workload.count(r->key.workload)) workloads.push_back(r->key.workload);
    by_workload[r->key.workload].push_back(r);
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
      "body{{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}}\n"
      "h1{{font-size:22px}} h2{{font-size:17px;margin-top:28px}}\n"
      "table{{border-collapse:collapse;font-size:13px;margin:8px 0}}\n"
      "td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}}"
      " th{{background:#f3f3f3}}\n"
      ".lbl{{font-size:12px}} .grp{{font-size:12px;font-weight:600}} .val{{font-size:11px;"
      "fill:#444}} .axis{{font-size:11px;fill:#555}}\n"
      ".grid{{stroke:#e4e4e4}} .ok{{color:#2a7a2a}} .bad{{color:#b22}} .meta{{color:#555;"
      "font-size:13px}} svg{{display:block;overflow:visible}}\n</style></head><body>\n"
      "<h1>{}</h1>\n",
      esc(title), esc(title));
  html += fmt::format(
      "<p class='meta'>suite {} · capbench {} ({}) · {} · {} · {} runs</p>\n", esc(report.suite),
      esc(report.capbench_version), esc(report.git_revision), esc(report.created_utc),
      esc(report.host.is_object() && report.host.contains("cpu") && report.host["cpu"].is_string()
              ? report.host["cpu"].get<std::string>()
              : std::string("unknown host")),
      report.runs.size());
  if (report.interrupted.is_object())
    html += fmt::format(
        "<p class='bad'>Interrupted by {} during {}: the {} run(s) below finished, {} did not "
        "run.</p>\n",
        esc(report.interrupted.value("signal", std::string("a signal"))),
        esc(report.interrupted.value("during", std::string("the suite"))), report.runs.size(),
        report.interrupted.value("runs_not_run", 0));
  html += fidelity_section(report);
  if (!report.runs.empty() || report.fidelity.empty())
    html += "<h2>Runs</h2>\n" + summary_table(report, columns);
  for (const std::string& workload : workloads) {
    const std::vector<EmulationGroup> groups = emulation_groups(by_workload[workload], columns);
    if (groups.empty()) continue;
    html += "<h2>What each emulated chip costs: " + esc(workload) + "</h2>\n";
    html += "<p class='meta'>Median time of the primary series (" +
            esc(groups.front().reference->primary) +
            ") on each emulated chip over the reference chip's, per backend and shape; above "
            "1× is slower. * the host cannot reach that chip in some dimension "
            "(emulation.limited_by).</p>\n";
    html += emulation_cost_chart(groups);
  }
  for (const std::string& unit : units)
    html += "<h2>Throughput: " + esc(unit) + "</h2>\n" + bar_chart(by_unit[unit], unit, columns);
  if (!ok.empty()) html += "<h2>Sample distributions</h2>\n" + distribution_chart(ok, columns);
  html += "<h2>Roofline of the per-op breakdown</h2>\n";
  if (peak_flops > 0)
    html += fmt::format(
        "<p class='meta'>Roof from the calibrated peaks: {}, {}. Each "
        "point is one op kind of one run (hover for details).</p>\n",
        esc(human_rate(peak_flops, "FLOP/s")), esc(human_rate(peak_bw, "B/s")));
  else
    html += "<p class='meta'>No calibrated peaks in this report: points without a roof.</p>\n";
  html += roofline_chart(ok, peak_flops, peak_bw, columns);
  html += "<h2>Per-op breakdown</h2>\n" + op_tables(report, columns);
  html += "</body></html>\n";
  return html;
}

}  // namespace capbench
