// Device-side pacing for CUDA backends (docs/emulation.md): stamp and pace are one-thread kernels
// that read and spin on the GPU's %globaltimer, queued on the op's own stream. They order with the
// op without a host round trip, and a CUDA graph captures them with it. No CUDA header here, so
// backends that include this stay plain C++; streams are passed as cudaStream_t cast to void*.
#pragma once

#include "backends/backend.h"

namespace capbench {

class CudaPacer {
 public:
  static constexpr int kSlots = 64;
  // Allocates and clears the slot array on the current device, synchronously. Not to be made
  // while a CUDA graph is being captured (a cudaMalloc there is illegal): backends make theirs
  // when they are constructed.
  CudaPacer();
  ~CudaPacer();
  CudaPacer(const CudaPacer&) = delete;
  CudaPacer& operator=(const CudaPacer&) = delete;

  // Writes the GPU clock into `slot` when the stream reaches this point.
  void stamp(void* stream, int slot);
  // Holds the stream until max(floor_s, dilate · elapsed + extra_s) has passed since the stamp,
  // elapsed being the time from the stamp to this kernel's start. A slot never stamped (zero)
  // holds nothing.
  void pace(void* stream, int slot, const PaceRule& rule);

 private:
  unsigned long long* slots_ = nullptr;  // device memory, kSlots GPU-clock readings in ns
};

}  // namespace capbench
