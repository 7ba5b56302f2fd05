// The throttle's device-side pacing on a GPU, without libtorch (cuBLAS and the CUDA runtime only),
// each figure a ratio of two things measured in this one run, medians of repetitions:
//  1. pacing accuracy: a bf16 GEMM paced (floor) to half its measured rate, a device copy paced
//     to a quarter of its bandwidth: achieved / target (goal: within 3%);
//  2. dilation: a GEMM paced with dilate 2: paced / unpaced time (goal: 2 within 3%);
//  3. overhead inside a CUDA graph: 256 decode-sized GEMMs (1 x 4096 x 4096) with stamp/pace
//     (dilate 1) around each, against the same graph without (goal: under 2%).
//   build/benchmarks/cuda_pacing_fidelity [reps]
// Exit code 2 when there is no GPU.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/cuda/pacing.h"
#include "harness/statistics.h"

using namespace capbench;

namespace {

void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}
void cublas_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(st));
}

int failures = 0;
void report(const std::string& what, double value, double lo, double hi) {
  const bool ok = value >= lo && value <= hi;
  failures += ok ? 0 : 1;
  fmt::print("  {:<62} {:.4f}  [{}: goal {:.2f}..{:.2f}]\n", what, value, ok ? "meets" : "MISSES",
             lo, hi);
}

// Median seconds of `fn` on `stream`, timed with events, after one warm-up.
double time_on(cudaStream_t stream, int reps, const std::function<void()>& fn) {
  cudaEvent_t a, b;
  cuda_check(cudaEventCreate(&a), "event");
  cuda_check(cudaEventCreate(&b), "event");
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    cuda_check(cudaEventRecord(a, stream), "record");
    fn();
    cuda_check(cudaEventRecord(b, stream), "record");
    cuda_check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    cuda_check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    t.push_back(ms * 1e-3);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return median(t);
}

struct Gemm {
  cublasHandle_t handle;
  int m, n, k;
  void *a, *b, *c;
  // C[m,n] = A[m,k] · B[n,k]ᵀ in row-major terms (a linear layer), bf16 in, fp32 accumulation.
  void run() const {
    const float one = 1.0f, zero = 0.0f;
    cublas_check(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, b, CUDA_R_16BF, k, a,
                              CUDA_R_16BF, k, &zero, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  }
  double flops() const { return 2.0 * m * n * k; }
};

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  cuda_check(cudaMalloc(&p, bytes), "cudaMalloc");
  cuda_check(cudaMemset(p, 0, bytes), "cudaMemset");
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(3, std::atoi(argv[1])) : 11;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    fmt::print(stderr, "cuda_pacing_fidelity: no CUDA device here\n");
    return 2;
  }
  cudaDeviceProp prop{};
  cuda_check(cudaGetDeviceProperties(&prop, 0), "properties");
  fmt::print("{} ({} SMs), medians of {}\n", prop.name, prop.multiProcessorCount, reps);

  cudaStream_t stream;
  cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  cublasHandle_t handle;
  cublas_check(cublasCreate(&handle), "cublasCreate");
  cublas_check(cublasSetStream(handle, stream), "cublasSetStream");
  // A fixed workspace, so cuBLAS allocates nothing while a graph is being captured.
  void* workspace = device_alloc(size_t{64} << 20);
  cublas_check(cublasSetWorkspace(handle, workspace, size_t{64} << 20), "cublasSetWorkspace");
  CudaPacer pacer;

  // ---- 1. pacing accuracy --------------------------------------------------------------------
  const int n = 8192;
  const Gemm big{handle,
                 n,
                 n,
                 n,
                 device_alloc(size_t{2} * n * n),
                 device_alloc(size_t{2} * n * n),
                 device_alloc(size_t{2} * n * n)};
  const double t_gemm = time_on(stream, reps, [&] { big.run(); });
  fmt::print("1. pacing accuracy (floor mode): GEMM {}^3 bf16 unpaced {:.1f} TFLOP/s\n", n,
             big.flops() / t_gemm / 1e12);
  const double gemm_target = big.flops() / t_gemm / 2;
  const double t_paced = time_on(stream, reps, [&] {
    pacer.stamp(stream, 0);
    big.run();
    pacer.pace(stream, 0, PaceRule{big.flops() / gemm_target, 1.0, 0.0});
  });
  report(fmt::format("GEMM paced to {:.1f} TFLOP/s: achieved / target", gemm_target / 1e12),
         big.flops() / t_paced / gemm_target, 0.97, 1.03);

  const size_t bytes = size_t{1} << 30;
  void* src = device_alloc(bytes);
  void* dst = device_alloc(bytes);
  auto copy = [&] {
    cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream), "copy");
  };
  const double t_copy = time_on(stream, reps, copy);
  const double copy_target = 2.0 * bytes / t_copy / 4;
  const double t_copy_paced = time_on(stream, reps, [&] {
    pacer.stamp(stream, 1);
    copy();
    pacer.pace(stream, 1, PaceRule{2.0 * bytes / copy_target, 1.0, 0.0});
  });
  report(fmt::format("1 GiB copy paced to {:.0f} GB/s: achieved / target", copy_target / 1e9),
         2.0 * bytes / t_copy_paced / copy_target, 0.97, 1.03);

  // ---- 2. dilation ---------------------------------------------------------------------------
  fmt::print("2. dilation:\n");
  const double t_dilated = time_on(stream, reps, [&] {
    pacer.stamp(stream, 2);
    big.run();
    pacer.pace(stream, 2, PaceRule{0.0, 2.0, 0.0});
  });
  report("GEMM dilated by 2: paced / unpaced", t_dilated / t_gemm, 1.94, 2.06);

  // ---- 3. overhead inside a CUDA graph -------------------------------------------------------
  fmt::print("3. overhead inside a CUDA graph (256 GEMMs of 1 x 4096 x 4096, dilate 1):\n");
  const int calls = 256, d = 4096;
  std::vector<Gemm> layers;
  void* x = device_alloc(size_t{2} * d);
  void* y = device_alloc(size_t{2} * d);
  for (int i = 0; i < calls; ++i)
    layers.push_back({handle, 1, d, d, x, device_alloc(size_t{2} * d * d), y});
  auto capture = [&](bool paced) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    cuda_check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    for (int i = 0; i < calls; ++i) {
      const int slot = i % CudaPacer::kSlots;
      if (paced) pacer.stamp(stream, slot);
      layers[static_cast<size_t>(i)].run();
      if (paced) pacer.pace(stream, slot, PaceRule{0.0, 1.0, 0.0});
    }
    cuda_check(cudaStreamEndCapture(stream, &graph), "end capture");
    cuda_check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    cudaGraphDestroy(graph);
    return exec;
  };
  const cudaGraphExec_t plain = capture(false), paced = capture(true);
  // Interleaved, so drift on a shared machine hits both alike.
  std::vector<double> t_plain, t_paced_graph;
  for (int r = 0; r < reps; ++r) {
    t_plain.push_back(
        time_on(stream, 1, [&] { cuda_check(cudaGraphLaunch(plain, stream), "launch"); }));
    t_paced_graph.push_back(
        time_on(stream, 1, [&] { cuda_check(cudaGraphLaunch(paced, stream), "launch"); }));
  }
  fmt::print("  graph without pacing {:.3f} ms, with {:.3f} ms\n", median(t_plain) * 1e3,
             median(t_paced_graph) * 1e3);
  report("paced graph / plain graph", median(t_paced_graph) / median(t_plain), 0.0, 1.02);
  return failures == 0 ? 0 : 1;
}
