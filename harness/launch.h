// `capbench launch -n N -- COMMAND ...`: N local ranks of capbench, as torchrun would start them
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT on a free port). A
// signal to the launcher goes to every rank; when a rank fails, the others get `grace_s` to
// finish on their own (their collectives fail, their report records why), then are stopped.
#pragma once

#include <string>
#include <vector>

namespace capbench {

struct LaunchOptions {
  int ranks = 2;
  int port = 0;         // 0: a free one
  double grace_s = 60;  // after a rank failed, before the others are stopped
};

// Returns the job's exit code: 0 when every rank exited 0; else rank 0's code when it failed,
// else the first failed rank's (128 + the signal for one killed by a signal).
int launch_local_ranks(const LaunchOptions& options, const std::vector<std::string>& command);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_local_port();

}  // namespace capbench
