#pragma once

#include <string>

#include "harness/report.h"

namespace capbench {

// A self-contained HTML page (inline SVG, no scripts, nothing fetched) for one report.
std::string render_html(const Report& report, const std::string& title);

}  // namespace capbench
