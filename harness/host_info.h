#pragma once

#include <nlohmann/json.hpp>

#include "backends/registry.h"

namespace capbench {

// The machine and the software a report was measured with: CPU, cores, OS, kernel, compiler,
// and each built backend's device and library version.
nlohmann::json host_info(const Registry& registry);

}  // namespace capbench
