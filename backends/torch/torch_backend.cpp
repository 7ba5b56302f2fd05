// The torch backends this build has: "torch" always, "torch:cuda" when the libtorch found at
// configure time has CUDA (torch_cuda.cpp) and sees a device at run time.
#include "backends/torch/torch_backend.h"

#include <torch/version.h>

namespace capbench {

std::unique_ptr<Backend> make_torch_cpu_backend(const BackendOptions& options);
#ifdef CAPBENCH_TORCH_CUDA
std::unique_ptr<Backend> make_torch_cuda_backend(const BackendOptions& options);
bool torch_sees_cuda();
#endif

void register_torch_backends(Registry& registry) {
  registry.add({"torch", "cpu", "libtorch (ATen) on the CPU", false, make_torch_cpu_backend});
#ifdef CAPBENCH_TORCH_CUDA
  if (torch_sees_cuda())
    registry.add(
        {"torch:cuda", "cuda", "libtorch (ATen) on the GPU", false, make_torch_cuda_backend});
  else
    registry.add_unavailable({"torch:cuda", "cuda",
                              std::string("libtorch ") + TORCH_VERSION +
                                  " has CUDA, but sees no CUDA device (driver, "
                                  "CUDA_VISIBLE_DEVICES)"});
#else
  registry.add_unavailable(
      {"torch:cuda", "cuda",
       std::string("this build's libtorch ") + TORCH_VERSION +
           " is a CPU build; configure against a CUDA PyTorch (README: NVIDIA GPUs)"});
#endif
}

}  // namespace capbench
