#include "backends/throttle/device_profile.h"

namespace capbench {

const Figure& DeviceProfile::flops(DType dtype) const {
  switch (dtype) {
    case DType::bf16:
      return bf16_flops;
    case DType::f16:
      return fp16_flops;
    default:
      return fp32_flops;
  }
}

}  // namespace capbench
