#include "harness/progress.h"

#include <fmt/format.h>
#include <unistd.h>

namespace capbench {

Progress Progress::for_stderr() {
  return Progress(isatty(STDERR_FILENO) == 1);
}

void Progress::begin(size_t index, size_t total, const std::string& label) {
  prefix_ = fmt::format("[{}/{}] {}", index + 1, total, label);
  if (enabled_) fmt::print(stderr, "\r\033[K{} ...", prefix_);
}

void Progress::update(const std::string& status) {
  if (enabled_) fmt::print(stderr, "\r\033[K{}: {}", prefix_, status);
}

void Progress::end(const std::string& outcome) {
  if (enabled_) fmt::print(stderr, "\r\033[K{}: {}\n", prefix_, outcome);
}

}  // namespace capbench
