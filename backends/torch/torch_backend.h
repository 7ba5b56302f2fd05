// The libtorch backend's only public surface: no ATen types here, so nothing outside
// backends/torch/ pays for libtorch's headers.
#pragma once

#include <memory>

#include "backends/registry.h"

namespace capbench {

// Adds "torch" (CPU) and, when this libtorch has CUDA and sees a device, "torch:cuda".
void register_torch_backends(Registry& registry);

}  // namespace capbench
