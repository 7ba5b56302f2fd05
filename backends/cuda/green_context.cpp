#include "backends/cuda/green_context.h"

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace capbench {
namespace {

void check(CUresult result, const char* what) {
  if (result == CUDA_SUCCESS) return;
  const char* name = nullptr;
  cuGetErrorName(result, &name);
  throw std::runtime_error(std::string("green context: ") + what +
                           " failed: " + (name ? name : "unknown CUDA driver error"));
}

}  // namespace

SmPartition::SmPartition(int device, int sm_count) {
  if (sm_count <= 0) throw std::invalid_argument("green context: SM count must be positive");
  // The runtime's primary context must exist before the split: memory the backend allocates
  // lives there, and the green context's stream uses it.
  if (const cudaError_t err = cudaFree(nullptr); err != cudaSuccess)
    throw std::runtime_error(std::string("green context: no CUDA context: ") +
                             cudaGetErrorString(err));
  check(cuInit(0), "cuInit");
  CUdevice dev;
  check(cuDeviceGet(&dev, device), "cuDeviceGet");
  CUdevResource all{};
  check(cuDeviceGetDevResource(dev, &all, CU_DEV_RESOURCE_TYPE_SM), "cuDeviceGetDevResource");
  device_sms_ = static_cast<int>(all.sm.smCount);
  if (sm_count > device_sms_)
    throw std::invalid_argument("green context: " + std::to_string(sm_count) + " SMs asked for, " +
                                "the device has " + std::to_string(device_sms_));
  // One group of at least sm_count SMs; the rest of the device is left unused.
  CUdevResource group{}, rest{};
  unsigned int groups = 1;
  check(cuDevSmResourceSplitByCount(&group, &groups, &all, &rest, 0,
                                    static_cast<unsigned int>(sm_count)),
        "cuDevSmResourceSplitByCount");
  if (groups != 1) throw std::runtime_error("green context: the driver made no SM group");
  CUdevResourceDesc desc;
  check(cuDevResourceGenerateDesc(&desc, &group, 1), "cuDevResourceGenerateDesc");
  CUgreenCtx green;
  check(cuGreenCtxCreate(&green, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM), "cuGreenCtxCreate");
  green_ = green;
  CUstream stream;
  const CUresult made = cuGreenCtxStreamCreate(&stream, green, CU_STREAM_NON_BLOCKING, 0);
  if (made != CUDA_SUCCESS) {
    cuGreenCtxDestroy(green);
    check(made, "cuGreenCtxStreamCreate");
  }
  stream_ = stream;
  // What the stream really runs on: its green context, and that context's SMs.
  CUgreenCtx of_stream = nullptr;
  CUdevResource granted{};
  const CUresult asked = cuStreamGetGreenCtx(stream, &of_stream);
  const CUresult got = cuGreenCtxGetDevResource(green, &granted, CU_DEV_RESOURCE_TYPE_SM);
  if (asked != CUDA_SUCCESS || got != CUDA_SUCCESS || of_stream != green ||
      static_cast<int>(granted.sm.smCount) < sm_count) {
    cuStreamDestroy(stream);
    cuGreenCtxDestroy(green);
    stream_ = green_ = nullptr;
    check(asked, "cuStreamGetGreenCtx");
    check(got, "cuGreenCtxGetDevResource");
    throw std::runtime_error("green context: the stream got " + std::to_string(granted.sm.smCount) +
                             " SMs, " + std::to_string(sm_count) + " were asked for");
  }
  granted_ = static_cast<int>(granted.sm.smCount);
}

SmPartition::~SmPartition() {
  if (stream_) cuStreamDestroy(static_cast<CUstream>(stream_));
  if (green_) cuGreenCtxDestroy(static_cast<CUgreenCtx>(green_));
}

std::string sm_partition_label(const SmPartition& partition) {
  return std::to_string(partition.sm_count()) + " of " +
         std::to_string(partition.device_sm_count()) + " SMs (green context)";
}

}  // namespace capbench
