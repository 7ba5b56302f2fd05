#include "backends/registry.h"

#include <stdexcept>

namespace capbench {

void Registry::add(BackendEntry entry) {
  if (find(entry.name)) throw std::logic_error("backend registered twice: " + entry.name);
  entries_.push_back(std::move(entry));
}

void Registry::add_unavailable(UnavailableBackend entry) {
  if (find(entry.name) || unavailable(entry.name))
    throw std::logic_error("backend registered twice: " + entry.name);
  unavailable_.push_back(std::move(entry));
}

const UnavailableBackend* Registry::unavailable(const std::string& name) const {
  for (const auto& u : unavailable_)
    if (u.name == name) return &u;
  return nullptr;
}

const BackendEntry* Registry::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

}  // namespace capbench
