// The only place that knows which optional backends this build has.
#include "backends/reference/reference_backend.h"
#include "backends/registry.h"
#ifdef CAPBENCH_HAVE_TORCH
#include "backends/torch/torch_backend.h"
#endif
#ifdef CAPBENCH_HAVE_ONEDNN
#include "backends/onednn/onednn_backend.h"
#endif

// Why configure turned an optional backend off, in its own words (set by CMakeLists.txt).
#ifndef CAPBENCH_TORCH_OFF_REASON
#define CAPBENCH_TORCH_OFF_REASON "libtorch not found at configure time"
#endif
#ifndef CAPBENCH_ONEDNN_OFF_REASON
#define CAPBENCH_ONEDNN_OFF_REASON "oneDNN not found at configure time"
#endif

namespace capbench {

const Registry& builtin_registry() {
  static const Registry registry = [] {
    Registry r;
    r.add({"reference", "cpu", "plain C++ loops, fp64 accumulation: the oracle", true,
           [](const BackendOptions&) { return std::make_unique<ReferenceBackend>(); }});
#ifdef CAPBENCH_HAVE_TORCH
    register_torch_backends(r);
#else
    for (const char* name : {"torch", "torch:cuda"})
      r.add_unavailable({name, name == std::string("torch") ? "cpu" : "cuda",
                         std::string("built without libtorch: ") + CAPBENCH_TORCH_OFF_REASON});
#endif
#ifdef CAPBENCH_HAVE_ONEDNN
    register_onednn_backends(r);
#else
    r.add_unavailable(
        {"onednn", "cpu", std::string("built without oneDNN: ") + CAPBENCH_ONEDNN_OFF_REASON});
#endif
    return r;
  }();
  return registry;
}

}  // namespace capbench
