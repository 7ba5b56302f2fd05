// Human-readable views of a report: the summary table, and the per-op breakdown.
#pragma once

#include <cstdio>

#include "harness/report.h"

namespace capbench {

void print_summary_table(std::FILE* out, const Report& report);
void print_op_breakdown(std::FILE* out, const Report& report);

}  // namespace capbench
