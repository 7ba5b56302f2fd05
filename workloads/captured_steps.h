// Replays fixed-shape steps as device graphs (CUDA graphs) where the backend can capture them:
// launch overhead dominates a step of many small kernels without one. Each step, told apart by
// a key (a decode step by its position), runs eagerly the first time - lazy initialisation,
// such as cuBLAS handles and workspaces, stays outside the capture - is captured and replayed
// the second time, and is replayed from then on.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "backends/backend.h"

namespace capbench {

class CapturedSteps {
 public:
  explicit CapturedSteps(Backend& backend) : be_(backend) {}
  // Graphs on when `wanted` and the backend can capture; returns whether they are on. Turning
  // them off leaves the graphs captured so far for a later enable.
  bool enable(bool wanted);
  // Runs the step `key`; returns what the step returned when it last ran as code (its output
  // tensors sit at fixed addresses, so a replay fills the same ones).
  Tensor run(int64_t key, const std::function<Tensor()>& step);

 private:
  struct Entry {
    int graph = -1;  // -1: ran eagerly once, not captured yet
    Tensor result;
  };
  Backend& be_;
  bool enabled_ = false;
  std::map<int64_t, Entry> steps_;
};

}  // namespace capbench
