#include "backends/throttle/device_profile.h"

#include "harness/json_access.h"

namespace capbench {
namespace {

// A published figure, within the range a real chip's can take: a profile with 0.5 FLOP/s or
// 1e300 B/s is a typo, and pacing to it would stall an op for ever or never.
Figure figure(const JsonView& v, double lo, double hi) {
  const JsonView o = v.object();
  Figure f;
  f.value = o.at("value").as_number_in(lo, hi);
  f.source = o.at("source").as_string();
  if (f.source.empty()) o.at("source").fail("a non-empty source (where the figure comes from)");
  f.kind = o.at("kind").as_string();
  if (f.kind != "vendor" && f.kind != "estimate" && f.kind != "measured")
    o.at("kind").fail("\"vendor\", \"estimate\" or \"measured\", got \"" + f.kind + "\"");
  return f;
}

}  // namespace

const Figure& DeviceProfile::flops(DType dtype) const {
  switch (dtype) {
    case DType::bf16:
      return bf16_flops;
    case DType::f16:
      return fp16_flops;
    default:
      return fp32_flops;
  }
}

DeviceProfile load_device_profile(const std::string& name_or_path, const std::string& config_dir) {
  const std::string file = config_file_path(name_or_path, config_dir, "devices");
  const json doc = load_json_file(file);
  const JsonView root = JsonView(doc, file).object();
  DeviceProfile p;
  p.file = file;
  p.name = root.at("name").as_string();
  p.vendor = root.get_string("vendor", "");
  p.description = root.get_string("description", "");
  const JsonView compute = root.at("compute");
  p.bf16_flops = figure(compute.at("bf16_flops"), kFlopsRange[0], kFlopsRange[1]);
  p.fp16_flops = figure(compute.at("fp16_flops"), kFlopsRange[0], kFlopsRange[1]);
  p.fp32_flops = figure(compute.at("fp32_flops"), kFlopsRange[0], kFlopsRange[1]);
  const JsonView memory = root.at("memory");
  p.memory_bytes_per_s =
      figure(memory.at("bandwidth_bytes_per_s"), kBandwidthRange[0], kBandwidthRange[1]);
  p.memory_capacity_bytes = figure(memory.at("capacity_bytes"), 1e8, 1e15);
  const JsonView link = root.at("scale_up");
  p.topology = link.at("topology").as_string();
  if (p.topology != "switch" && p.topology != "full_mesh")
    link.at("topology").fail("\"switch\" or \"full_mesh\", got \"" + p.topology + "\"");
  p.link_bytes_per_s = figure(link.at("link_bytes_per_s_per_direction"), 1e6, 1e14);
  p.link_latency_s = figure(link.at("latency_s"), 1e-9, 1e-1);
  p.max_peers = link.at("max_peers").as_int_in(1, 1 << 20);
  return p;
}

}  // namespace capbench
