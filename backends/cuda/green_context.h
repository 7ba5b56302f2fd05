// A green context (CUDA 12.4+ driver): kernels launched on its stream run on a subset of the
// GPU's SMs. It is the physical way to take compute away from a GPU, as a thread count is on a
// CPU, and so the check of the throttle's dilate mode: "this GPU with k SMs" emulated on all SMs
// against really running on k (docs/emulation.md). One split of the device's SMs, made once
// per partition object. No CUDA header here, so users stay plain C++; the stream is a
// cudaStream_t cast to void*. Memory allocated in the device's primary context is usable from
// the partition's stream.
#pragma once

#include <string>

namespace capbench {

class SmPartition {
 public:
  // Confines to at least `sm_count` SMs of `device` (the driver rounds up to the architecture's
  // granularity: sm_count() says what was granted). Throws std::runtime_error naming the
  // driver's error when the split or the context cannot be made.
  SmPartition(int device, int sm_count);
  ~SmPartition();
  SmPartition(const SmPartition&) = delete;
  SmPartition& operator=(const SmPartition&) = delete;

  void* stream() const { return stream_; }
  int sm_count() const { return granted_; }
  int device_sm_count() const { return device_sms_; }

 private:
  void* green_ = nullptr;   // CUgreenCtx
  void* stream_ = nullptr;  // CUstream, usable as a cudaStream_t
  int granted_ = 0, device_sms_ = 0;
};

// "k of N SMs (green context)", for reports and device names.
std::string sm_partition_label(const SmPartition& partition);

}  // namespace capbench
