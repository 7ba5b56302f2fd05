// SIGINT and SIGTERM during a suite: the first one asks the runner to stop at the next
// repetition boundary, so that the runs already finished are written (marked as interrupted);
// a second one ends the process at once.
#pragma once

#include <stdexcept>
#include <string>

namespace capbench {

void install_interrupt_handlers();
// The signal that asked to stop (SIGINT, SIGTERM), or 0.
int interrupt_signal();
// Throws Interrupted when a stop was asked for.
void check_interrupted();
// For tests: as if the signal had arrived.
void request_interrupt(int signal);

class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signal);
  int signal() const { return signal_; }

 private:
  int signal_;
};

std::string signal_name(int signal);

}  // namespace capbench
