// Runs a suite: for each run spec, the backend stack (profiler -> throttle when emulating ->
// backend), the workload built on it, warm-up, repetitions until a minimum count and time are
// met and the primary median is known to the bound, the canaries, one profiled pass, and one
// RunRecord. The workload says what a repetition, a canary and a metric are
// (workloads/workload.h); the rates come from harness/rates.h. A run that throws is recorded as
// failed and the suite goes on; a signal stops the suite and keeps the runs that finished.
#pragma once

#include "harness/progress.h"
#include "harness/rates.h"
#include "harness/report.h"
#include "harness/suite.h"

namespace capbench {

RunRecord execute_run(const RunSpec& spec, const SuiteContext& context, Progress& progress);

Report run_suite(const Suite& suite, const SuiteContext& context, Progress& progress);

}  // namespace capbench
