// What the console table and the HTML page show of a run, in one place: the key fields that
// tell a report's runs apart, and each workload's headline figures.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "harness/report.h"

namespace capbench {

struct KeyColumn {
  std::string name;
  std::function<std::string(const RunRecord&)> value;
};

// backend, model and workload always; dtype, sizes, threads, device, emulation and parallel
// layout wherever they differ between the runs, so that no two rows look alike.
std::vector<KeyColumn> distinguishing_columns(const std::vector<RunRecord>& runs);

// "h20", "h20 rel. h100-sxm", with the mode when it is not the default; "-" for a native run;
// a trailing "*" when the host cannot reach the target in some dimension (limited_by).
std::string emulation_label(const RunRecord& r);
bool emulation_limited(const RunRecord& r);

// The figures a run's workload is judged by (its Headline), with the utilisation as a table
// shows it: "MFU 41.2%", "MFU ?" when it was left out (RunRecord::notes), "-" when unknown.
struct TableHeadline {
  double throughput = 0;
  std::string unit, latency, utilisation;
};
TableHeadline headline(const RunRecord& r);
// A layer slice's headline for its whole model, extrapolated ("" for a run that is no slice):
// "llama2-7b (32 layers, extrapolated from 2): 2.29 train tokens/s, step 27953.07 ms, MFU 42.4%".
std::string whole_model_summary(const RunRecord& r);

// A run over several ranks: its collectives and communication ("" for a single rank):
// "dp x2 (gloo): all_reduce 78 calls, 313.1 MB, busbw 0.56 GB/s; comm 183.5 ms a step, 36.7 ms
// exposed (overlap 80%); link model 89.7 ms on the host's link, 0.23 ms on the target's".
std::string parallel_summary(const RunRecord& r);

// The primary series' median, in seconds (0 when the run has none).
double primary_median(const RunRecord& r);
// The time scale an emulated run was played at (1: real time, or not emulated).
double time_scale_of(const RunRecord& r);
// The primary median on the target: the measured one times the time scale; "-" for a run that
// does not emulate.
std::string target_estimate(const RunRecord& r);

}  // namespace capbench
