// The oneDNN backend's only public surface: oneDNN's headers stay inside backends/onednn/.
#pragma once

#include "backends/registry.h"

namespace capbench {

// Adds "onednn" (CPU).
void register_onednn_backends(Registry& registry);

}  // namespace capbench
