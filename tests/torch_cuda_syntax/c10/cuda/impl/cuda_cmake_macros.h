// Stands in for the header a CUDA build of libtorch generates, which Debian's CPU libtorch-dev
// lacks; only the syntax check of the torch:cuda path (check.sh) includes it.
#pragma once
#define C10_CUDA_BUILD_SHARED_LIBS
