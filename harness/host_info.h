#pragma once

#include <nlohmann/json.hpp>

#include "backends/registry.h"

namespace capbench {

// The machine and the software a report was measured with: CPU, cores, OS, kernel, compiler,
// and each built backend's device and library version (accelerators: the one of
// `device_ordinal`, a rank's local rank, as BackendOptions::device_ordinal).
nlohmann::json host_info(const Registry& registry, int device_ordinal = 0);

// The machine's physical memory in bytes (what a CPU backend's footprint must fit in).
double host_memory_bytes();

// Debian's libtorch calls OpenBLAS, whose default (pthreads) build runs its own thread pool
// beside ATen's and oneDNN's OpenMP team; on a small CPU the two pools steal cycles from each
// other whatever libgomp's wait policy: spinning OpenMP threads slowed torch's small train step
// from ~620 to 1530 ms, and sleeping ones (OMP_WAIT_POLICY=PASSIVE) cost each oneDNN op a team
// wake-up (70-220 us; decode at batch 1 ran at 137 instead of 199 tokens/s). The OpenMP build of
// OpenBLAS (Debian's libopenblas0-openmp) shares the one OpenMP team, and with libgomp's default
// policy both backends ran at their best (2 cores: torch train 988, decode 119 tokens/s). The
// dynamic loader reads LD_LIBRARY_PATH at start-up, so capbench re-executes itself once with
// that build first on the path, when it is installed and the user has not chosen otherwise.
// Call first thing in main(); every capbench program (the CLI, the benchmarks) does.
void prefer_openmp_openblas(char** argv);

}  // namespace capbench
