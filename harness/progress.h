// Progress lines on stderr for long work (calibration, each run's phases), only when stderr is
// a terminal: one line per item, rewritten in place.
#pragma once

#include <string>

namespace capbench {

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  static Progress for_stderr();
  void begin(size_t index, size_t total, const std::string& label);
  void update(const std::string& status);
  void end(const std::string& outcome);
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  std::string prefix_;
};

}  // namespace capbench
