// torch on the CPU: ATen's ops with its OpenMP team and OpenBLAS set to the backend's thread
// count, host-clock pacing, no graph capture.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <thread>

#include "backends/torch/torch_backend.h"
#include "backends/torch/torch_common.h"

namespace capbench {
namespace {

// ATen's thread count does not reach OpenBLAS, which Debian's libtorch calls for matmuls and
// which runs its own threads (measured: --threads 1 still gave the 2-core GEMM rate). Set it too,
// when the BLAS in the process is OpenBLAS; looked up at run time, so another BLAS still links.
void set_blas_threads(int threads) {
  using SetThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    fn(threads);
}

// Which OpenBLAS build runs the matmuls: its threading decides how it shares the cores with
// ATen's OpenMP team (see prefer_openmp_openblas in harness/host_info.h).
std::string blas_threading() {
  using GetParallel = int (*)();
  auto fn = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  if (!fn) return "";
  switch (fn()) {
    case 0:
      return ", OpenBLAS (sequential)";
    case 1:
      return ", OpenBLAS (pthreads)";
    case 2:
      return ", OpenBLAS (OpenMP)";
    default:
      return ", OpenBLAS";
  }
}

class TorchCpuBackend final : public TorchBackend {
 public:
  explicit TorchCpuBackend(const BackendOptions& options) : TorchBackend(at::Device(at::kCPU)) {
    if (options.sm_count > 0)
      throw std::invalid_argument("torch on the CPU has no SMs to confine to (sm_count)");
    threads_ = options.threads > 0 ? options.threads
                                   : static_cast<int>(std::thread::hardware_concurrency());
    at::set_num_threads(threads_);
    set_blas_threads(threads_);
  }
  void activate() override {
    at::set_num_threads(threads_);
    set_blas_threads(threads_);
  }

  DeviceInfo device_info() const override {
    DeviceInfo info;
    info.backend = "torch";
    info.device_kind = "cpu";
    info.threads = threads_;
    info.library_version = std::string("libtorch ") + TORCH_VERSION + blas_threading();
    info.name = host_cpu_name();
    return info;
  }

  void synchronize() override {}  // ATen's CPU ops return when done
  Support can_capture() const override {
    return Support::no("torch on the CPU has no graph capture");
  }
  int pace_slots() const override { return HostPacer::kSlots; }
  void stamp(int slot) override { pacer_.stamp(slot); }
  void pace(int slot, const PaceRule& rule) override { pacer_.pace(slot, rule); }

 private:
  int threads_ = 0;
  HostPacer pacer_;
};

}  // namespace

std::unique_ptr<Backend> make_torch_cpu_backend(const BackendOptions& options) {
  return std::make_unique<TorchCpuBackend>(options);
}

}  // namespace capbench
