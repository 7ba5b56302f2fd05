// Human-readable views of a report: the summary table, the per-op breakdown, and the fidelity
// checks.
#pragma once

#include <cstdio>

#include "harness/report.h"

namespace capbench {

// 1234567 "B/s" -> "1.23 MB/s".
std::string human_rate(double value, const char* unit);

void print_summary_table(std::FILE* out, const Report& report);
void print_op_breakdown(std::FILE* out, const Report& report);
// capbench fidelity's checks, backend by backend (nothing for a report without them).
void print_fidelity(std::FILE* out, const Report& report);

}  // namespace capbench
