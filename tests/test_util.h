// Helpers shared by the tests: random host data, tensors mirrored on two backends, and the
// normalised error every comparison uses.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backends/bf16.h"
#include "backends/registry.h"
#include "workloads/train_step.h"

namespace capbench::testing {

// fp32 comparisons: ops differ from the fp64-accumulating oracle by rounding alone, a few ulps
// times the square root of the reduction length (≤ ~1e-6 here); a wrong formula is off by > 1e-2.
constexpr double kTolF32 = 2e-5;
// bf16 storage: rounding an output to bf16 alone gives ~2^-9/sqrt(3) ≈ 1.1e-3; operands rounded
// inside an op (attention's probabilities) add as much again. A wrong formula is off by > 1e-1.
constexpr double kTolBF16 = 1e-2;

// An empty folder of the running test's own, named after the prefix, this process and the test
// (so parallel ctest processes and the tests of one process never share one).
inline std::filesystem::path fresh_test_folder(const std::string& prefix) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      (prefix + "_" + std::to_string(getpid()) + "_" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Runs a shell command; returns its exit code (-1 if it did not exit) and what it printed.
inline std::pair<int, std::string> run_command(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Every backend tested against the oracle: those of this build, and those capbench knows but
// cannot run here (torch:cuda without a CUDA libtorch or a GPU), whose tests skip saying why.
inline std::vector<std::string> backends_under_test() {
  std::vector<std::string> out;
  for (const BackendEntry& e : builtin_registry().entries())
    if (!e.oracle) out.push_back(e.name);
  for (const UnavailableBackend& u : builtin_registry().unavailable()) out.push_back(u.name);
  return out;
}

// The backend, or null with the reason this build or machine cannot run it.
inline std::unique_ptr<Backend> make_backend_or_why(const std::string& name, std::string* why) {
  if (const UnavailableBackend* u = builtin_registry().unavailable(name)) {
    *why = name + " is not available here: " + u->reason;
    return nullptr;
  }
  const BackendEntry* e = builtin_registry().find(name);
  if (!e) throw std::runtime_error("no backend " + name);
  return e->make(BackendOptions{});
}

// Tests parameterised by backend name: be_ is the backend, or the test is skipped with the
// reason this build or machine cannot run it.
class BackendFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    be_ = make_backend_or_why(GetParam(), &why);
    if (!be_) GTEST_SKIP() << why;
  }
  std::unique_ptr<Backend> be_;
};

// Runs `steps` train steps; returns the loss of each.
inline std::vector<double> run_steps(TrainStep& work, int steps) {
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    work.run();
    losses.push_back(work.loss());
  }
  return losses;
}

// "torch:cuda" -> "torch_cuda": GoogleTest names allow letters, digits and underscores only.
inline std::string backend_test_name(const ::testing::TestParamInfo<std::string>& param_info) {
  std::string n = param_info.param;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

inline std::unique_ptr<Backend> make_backend(const std::string& name) {
  const BackendEntry* e = builtin_registry().find(name);
  if (!e) throw std::runtime_error("no backend " + name);
  return e->make(BackendOptions{});
}

// ||a - b||₂ / max(||b||₂, floor·sqrt(n)), b the reference. Test inputs are O(1), so outputs
// are too; the floor (an RMS of 1e-3) only matters where the exact answer is zero, e.g. dq of an
// attention with one key, where relative error would divide rounding noise by rounding noise.
inline double normalized_error(const std::vector<float>& a, const std::vector<float>& b,
                               double rms_floor = 1e-3) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    ref += static_cast<double>(b[i]) * b[i];
  }
  const double floor = rms_floor * std::sqrt(static_cast<double>(a.size()));
  return std::sqrt(diff) / std::max(std::sqrt(ref), floor);
}

inline std::vector<float> random_floats(std::mt19937_64& rng, int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// One tensor on two backends with the same contents: the oracle's side at dtype_a, the tested
// side at dtype_b. When b is bf16 and a fp32, values are rounded to bf16 first, so both sides
// start from the same numbers; reads widen bf16 back to fp32.
class Mirror {
 public:
  Mirror(Backend& a, Backend& b, DType dtype_a, DType dtype_b, std::initializer_list<int64_t> dims)
      : ta_(nullptr, dtype_a, dims),
        tb_(nullptr, dtype_b, dims),
        buf_a_(a, ta_.bytes()),
        buf_b_(b, tb_.bytes()),
        be_a_(&a),
        be_b_(&b) {
    ta_.data = buf_a_.data();
    tb_.data = buf_b_.data();
  }
  Mirror(Backend& a, Backend& b, DType dtype, std::initializer_list<int64_t> dims)
      : Mirror(a, b, dtype, dtype, dims) {}
  const Tensor& a() const { return ta_; }
  const Tensor& b() const { return tb_; }
  int64_t numel() const { return ta_.numel(); }

  Mirror& set(std::vector<float> host) {
    if (ta_.dtype == DType::bf16 || tb_.dtype == DType::bf16)
      for (float& x : host) x = bf16_to_float(float_to_bf16(x));
    initial_ = host;
    upload(*be_a_, ta_, host);
    upload(*be_b_, tb_, host);
    return *this;
  }
  Mirror& set_ints(const std::vector<int32_t>& host) {
    be_a_->copy_to_device(ta_.data, host.data(), ta_.bytes());
    be_b_->copy_to_device(tb_.data, host.data(), tb_.bytes());
    return *this;
  }
  Mirror& randomize(std::mt19937_64& rng, float scale = 1.0f) {
    return set(random_floats(rng, numel(), scale));
  }
  std::vector<float> host_a() const { return download(*be_a_, ta_); }
  const std::vector<float>& initial() const { return initial_; }  // as last set
  std::vector<float> host_b() const { return download(*be_b_, tb_); }

 private:
  static void upload(Backend& be, const Tensor& t, const std::vector<float>& host) {
    upload_floats(be, t, host.data(), host.size());
  }
  static std::vector<float> download(Backend& be, const Tensor& t) {
    be.synchronize();
    return download_floats(be, t);
  }
  Tensor ta_, tb_;
  DeviceBuffer buf_a_, buf_b_;
  Backend *be_a_, *be_b_;
  std::vector<float> initial_;
};

}  // namespace capbench::testing
