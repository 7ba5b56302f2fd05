// Progress on stderr for long work (calibration, each run's phases). On a terminal one line per
// item, rewritten in place; in a log (a CI job, a file) one line as each item ends and, for an
// item still running, a line every half minute at most, so a long job shows it is alive
// without flooding its log.
#pragma once

#include <string>

namespace capbench {

class Progress {
 public:
  enum class Style { terminal, log, silent };
  explicit Progress(Style style) : style_(style) {}
  static Progress for_stderr();
  void begin(size_t index, size_t total, const std::string& label);
  void update(const std::string& status);
  void end(const std::string& outcome);
  bool on_terminal() const { return style_ == Style::terminal; }

  static constexpr double kLogInterval = 30;  // seconds between a running item's log lines

 private:
  Style style_;
  std::string prefix_;
  double last_line_s_ = 0;
};

}  // namespace capbench
