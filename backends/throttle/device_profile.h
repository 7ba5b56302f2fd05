// A chip's published figures (configs/devices/*.json): the throttle's targets. Every figure
// carries its source and whether it is the vendor's figure or an estimate.
#pragma once

#include <string>

#include "backends/backend.h"

namespace capbench {

// Plausible ranges of a chip's rates (a CPU core to well past any accelerator): profiles and
// calibrations outside them are rejected rather than paced to.
constexpr double kFlopsRange[2] = {1e8, 1e18};
constexpr double kBandwidthRange[2] = {1e8, 1e15};

struct Figure {
  double value = 0;
  std::string source;
  std::string kind;  // "vendor" | "estimate" | "measured"
};

struct DeviceProfile {
  std::string name, vendor, description, file;
  Figure bf16_flops, fp16_flops, fp32_flops;  // dense peak
  Figure memory_bytes_per_s, memory_capacity_bytes;
  std::string topology;     // "switch" | "full_mesh"
  Figure link_bytes_per_s;  // per direction: to the switch (switch), to each peer (full_mesh)
  Figure link_latency_s;
  int64_t max_peers = 0;         // devices in one scale-up domain besides this one
  Figure scale_out_bytes_per_s;  // per node, between nodes (InfiniBand / RoCE)
  // What one kernel costs the chip beyond its work: launched one by one (eager), and replayed
  // from a captured graph. 0 where the profile gives none.
  Figure launch_eager_s, launch_graphs_s;

  const Figure& flops(DType dtype) const;
};

}  // namespace capbench
