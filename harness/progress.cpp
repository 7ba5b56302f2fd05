#include "harness/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include "backends/backend.h"

namespace capbench {

Progress Progress::for_stderr() {
  return Progress(isatty(STDERR_FILENO) == 1 ? Style::terminal : Style::log);
}

void Progress::begin(size_t index, size_t total, const std::string& label) {
  prefix_ = fmt::format("[{}/{}] {}", index + 1, total, label);
  last_line_s_ = host_seconds_now();
  if (style_ == Style::terminal) fmt::print(stderr, "\r\033[K{} ...", prefix_);
}

void Progress::update(const std::string& status) {
  if (style_ == Style::terminal) {
    fmt::print(stderr, "\r\033[K{}: {}", prefix_, status);
  } else if (style_ == Style::log && host_seconds_now() - last_line_s_ >= kLogInterval) {
    last_line_s_ = host_seconds_now();
    fmt::print(stderr, "{}: {}\n", prefix_, status);
  }
}

void Progress::end(const std::string& outcome) {
  if (style_ == Style::terminal)
    fmt::print(stderr, "\r\033[K{}: {}\n", prefix_, outcome);
  else if (style_ == Style::log)
    fmt::print(stderr, "{}: {}\n", prefix_, outcome);
}

}  // namespace capbench
