// Force-included by check.sh for its second pass: the torch:cuda path as libtorch 2.11 compiles
// it (flash attention, fused AdamW), against 1.13's headers plus the 2.x declarations.
#pragma once

#include <torch/version.h>
#undef TORCH_VERSION_MAJOR
#undef TORCH_VERSION_MINOR
#undef TORCH_VERSION
#define TORCH_VERSION_MAJOR 2
#define TORCH_VERSION_MINOR 11
#define TORCH_VERSION "2.11.0 (syntax check)"

#include "torch2_ops.h"
