// Backends by name. builtin_registry() holds what this build has: "reference" always, "torch"
// when libtorch was found, "torch:cuda" when that libtorch also sees a CUDA device at run time,
// "onednn" when oneDNN was found; the others it knows as unavailable, with the reason.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace capbench {

struct BackendOptions {
  int threads = 0;  // CPU threads; 0 = all cores
  // CUDA backends: run every kernel on this many SMs through a green context (rounded up to the
  // GPU's granularity); 0 = the whole GPU. CPU backends reject it.
  int sm_count = 0;
  // Accelerator backends: which of the visible devices to drive, modulo their count. A rank
  // passes its local rank, so the ranks of a host take one device each, the one its device
  // communicator (NCCL) uses. CPU backends ignore it.
  int device_ordinal = 0;
};

struct BackendEntry {
  std::string name;         // "torch:cuda"
  std::string device_kind;  // "cpu" | "cuda"
  std::string description;
  bool oracle = false;  // the reference: runs only the small test models in suites
  std::function<std::unique_ptr<Backend>(const BackendOptions&)> make;
};

// A backend capbench knows but this build or this machine cannot run, and why.
struct UnavailableBackend {
  std::string name;
  std::string device_kind;
  std::string reason;
};

class Registry {
 public:
  void add(BackendEntry entry);
  void add_unavailable(UnavailableBackend entry);
  const BackendEntry* find(const std::string& name) const;
  const std::vector<BackendEntry>& entries() const { return entries_; }
  std::vector<std::string> names() const;
  // Why `name` cannot run here; nullptr when it can, or when capbench has no such backend.
  const UnavailableBackend* unavailable(const std::string& name) const;
  const std::vector<UnavailableBackend>& unavailable() const { return unavailable_; }

 private:
  std::vector<BackendEntry> entries_;
  std::vector<UnavailableBackend> unavailable_;
};

const Registry& builtin_registry();

}  // namespace capbench
