#include "harness/host_info.h"

#include <sys/utsname.h>
#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace capbench {
namespace {

std::string os_pretty_name() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
  return "unknown";
}

// The variables that decide how the CPU libraries thread; they change results severalfold.
nlohmann::json threading_env() {
  nlohmann::json env = nlohmann::json::object();
  for (const char* name : {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS",
                           "MKL_NUM_THREADS", "GOMP_SPINCOUNT", "LD_LIBRARY_PATH"})
    if (const char* v = std::getenv(name)) env[name] = v;
  return env;
}

}  // namespace

nlohmann::json host_info(const Registry& registry, int device_ordinal) {
  utsname u{};
  uname(&u);
  nlohmann::json backends = nlohmann::json::array();
  for (const BackendEntry& e : registry.entries()) {
    nlohmann::json b = {{"name", e.name}, {"device_kind", e.device_kind}};
    try {
      BackendOptions options;
      options.device_ordinal = device_ordinal;  // a rank asks after its own device only
      const DeviceInfo info = e.make(options)->device_info();
      b["device"] = info.name;
      b["library"] = info.library_version;
    } catch (const std::exception& err) {
      b["error"] = err.what();
    }
    backends.push_back(b);
  }
  return {{"cpu", host_cpu_name()},
          {"logical_cores", std::thread::hardware_concurrency()},
          {"os", os_pretty_name()},
          {"kernel", std::string(u.sysname) + " " + u.release},
          {"machine", u.machine},
          {"hostname", u.nodename},
#ifdef __clang__
          {"compiler", std::string("clang ") + __clang_version__},
#else
          {"compiler", std::string("g++ ") + __VERSION__},
#endif
          {"threading_env", threading_env()},
          {"backends", backends}};
}

double host_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

void prefer_openmp_openblas(char** argv) {
  if (std::getenv("CAPBENCH_KEEP_BLAS") != nullptr) return;
  const char* current = std::getenv("LD_LIBRARY_PATH");
  const std::string path = current ? current : "";
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu/openblas-openmp",
                          "/usr/lib/aarch64-linux-gnu/openblas-openmp"}) {
    if (!std::filesystem::exists(std::string(dir) + "/libopenblas.so.0")) continue;
    if (path.find(dir) != std::string::npos) return;
    setenv("LD_LIBRARY_PATH", path.empty() ? dir : (std::string(dir) + ":" + path).c_str(), 1);
    setenv("CAPBENCH_KEEP_BLAS", "1", 1);  // one re-execution at most
    execv("/proc/self/exe", argv);
    return;  // if re-execution fails, carry on with the pthreads build: slower, not wrong
  }
}

}  // namespace capbench
