// Backends by name. builtin_registry() holds what this build has: "reference" always, "torch"
// when libtorch was found, "torch:cuda" when that libtorch also sees a CUDA device at run time.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace capbench {

struct BackendOptions {
  int threads = 0;  // CPU threads; 0 = all cores
};

struct BackendEntry {
  std::string name;         // "torch:cuda"
  std::string device_kind;  // "cpu" | "cuda"
  std::string description;
  bool oracle = false;  // the reference: runs only the small test models in suites
  std::function<std::unique_ptr<Backend>(const BackendOptions&)> make;
};

class Registry {
 public:
  void add(BackendEntry entry);
  const BackendEntry* find(const std::string& name) const;
  const std::vector<BackendEntry>& entries() const { return entries_; }
  std::vector<std::string> names() const;

 private:
  std::vector<BackendEntry> entries_;
};

const Registry& builtin_registry();

}  // namespace capbench
