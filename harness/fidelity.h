// capbench fidelity: how far emulation can be trusted on this machine, backend by backend. Three
// kinds of check, each a ratio of two things measured in one run (medians of repetitions), with
// its goal:
//   pacing    an op paced to rates below the host's (floor rule): achieved rate / target.
//   overhead  a train step and a decode step throttled to the host's own rates / unthrottled:
//             what pacing costs when it should cost nothing.
//   physical  fewer compute units emulated on all of them / really run on fewer: half the
//             threads on a CPU, k SMs through green contexts on a GPU. The target's rates are
//             calibrated on the smaller machine exactly as the host's are, shape class by shape
//             class, so the check asks whether pacing to measured rates reproduces a real machine.
//             Its goal holds the floor rule (what absolute emulation uses); the relative rules
//             (dilate, shift) are measured beside it and reported as informational: they assume
//             an op's efficiency carries over, which a machine with fewer cores does not keep.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/registry.h"

namespace capbench {

class JsonView;

struct FidelityCheck {
  std::string kind;  // pacing | overhead | physical
  std::string name;  // what was compared: "decode step, dilate: emulated / real"
  double ratio = 0;
  double goal_low = 0, goal_high = 0;
  bool passed = false;
  std::string detail;  // the two figures behind the ratio
  // Measured and shown, without a goal: not part of the verdict.
  bool informational = false;
};

struct FidelityResult {
  std::string backend, device;
  int reps = 0;
  std::vector<FidelityCheck> checks;
  std::vector<std::string> notes;  // a check that could not run here, and why
  bool passed() const;
};

struct FidelityOptions {
  int reps = 9;
  // The physical check's modes; empty: floor (held to the goal), dilate and shift.
  std::vector<std::string> modes;
  std::string config_dir;  // where the step checks' models are (models/small.json)
};

// Runs every check on one backend (its own device; the CPU at all its threads). Throws
// std::runtime_error for a backend that cannot pace.
FidelityResult measure_fidelity(const BackendEntry& entry, const FidelityOptions& options,
                                const std::function<void(const std::string&)>& progress = {});

nlohmann::json to_json(const FidelityResult& result);
// Throws ConfigError naming `file` and the JSON path on a malformed block.
FidelityResult fidelity_from_json(const JsonView& v);

}  // namespace capbench
