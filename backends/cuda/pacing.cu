#include "backends/cuda/pacing.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace capbench {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CudaPacer: ") + what + ": " + cudaGetErrorString(err));
}

// Nanoseconds on the GPU's global timer (PTX %globaltimer): one clock for every SM.
__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void stamp_kernel(unsigned long long* slots, int slot) {
  slots[slot] = global_ns();
}

__global__ void pace_kernel(const unsigned long long* slots, int slot, double floor_ns,
                            double dilate, double extra_ns) {
  const unsigned long long start = slots[slot];
  if (start == 0) return;  // never stamped: no start to measure from, so no wait
  const double elapsed = static_cast<double>(global_ns() - start);
  const double wait = fmax(floor_ns, elapsed * dilate + extra_ns);
  const unsigned long long deadline = start + static_cast<unsigned long long>(wait);
  // One thread on one SM spins; the sleep keeps it from hammering the memory system.
  while (global_ns() < deadline) __nanosleep(200);
}

}  // namespace

CudaPacer::CudaPacer() {
  check(cudaMalloc(&slots_, sizeof(unsigned long long) * kSlots), "cudaMalloc");
  // Cleared and finished before any stamp: the first stamp may come on a non-blocking stream
  // (a green context's), which the legacy stream's memset would not be ordered with.
  check(cudaMemset(slots_, 0, sizeof(unsigned long long) * kSlots), "cudaMemset");
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

CudaPacer::~CudaPacer() {
  cudaFree(slots_);
}

void CudaPacer::stamp(void* stream, int slot) {
  if (slot < 0 || slot >= kSlots) throw std::out_of_range("CudaPacer::stamp: slot out of range");
  stamp_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(slots_, slot);
  check(cudaGetLastError(), "stamp launch");
}

void CudaPacer::pace(void* stream, int slot, const PaceRule& rule) {
  if (slot < 0 || slot >= kSlots) throw std::out_of_range("CudaPacer::pace: slot out of range");
  pace_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(slots_, slot, rule.floor_s * 1e9,
                                                              rule.dilate, rule.extra_s * 1e9);
  check(cudaGetLastError(), "pace launch");
}

}  // namespace capbench
