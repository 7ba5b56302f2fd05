// Which communication engines this build has: the one translation unit that knows.
#include "backends/comm/communicator.h"

namespace capbench {

#ifdef CAPBENCH_HAVE_GLOO
std::unique_ptr<Communicator> make_gloo_communicator(const Rendezvous& rv, double timeout_s);
#endif

#ifdef CAPBENCH_HAVE_NCCL
std::unique_ptr<Communicator> make_nccl_communicator(const Rendezvous& rv, double timeout_s,
                                                     Communicator& host, std::string* why);
#endif

std::unique_ptr<Communicator> make_device_communicator(const Rendezvous& rv, double timeout_s,
                                                       const std::string& device_kind,
                                                       Communicator& host, std::string* why) {
  if (device_kind == "cuda") {
#ifdef CAPBENCH_HAVE_NCCL
    return make_nccl_communicator(rv, timeout_s, host, why);
#else
    if (why) *why = "this build's libtorch has no CUDA, so no c10d NCCL";
    return nullptr;
#endif
  }
  if (why) *why = "no communicator for " + device_kind + " memory";
  return nullptr;
}

bool comm_engine_available(std::string* why) {
#ifdef CAPBENCH_HAVE_GLOO
  return true;
#else
  if (why) *why = CAPBENCH_GLOO_OFF_REASON;
  return false;
#endif
}

std::unique_ptr<Communicator> make_communicator(const Rendezvous& rv, double timeout_s) {
  if (rv.world <= 1) return std::make_unique<SingleCommunicator>();
  if (!(timeout_s > 0)) throw CommSetupError("the collective timeout must be above 0 seconds");
#ifdef CAPBENCH_HAVE_GLOO
  return make_gloo_communicator(rv, timeout_s);
#else
  throw CommSetupError(
      std::string("a world of ") + std::to_string(rv.world) +
      " ranks needs c10d Gloo, which this build lacks: " + CAPBENCH_GLOO_OFF_REASON);
#endif
}

}  // namespace capbench
