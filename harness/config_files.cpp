#include "harness/config_files.h"

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

ModelConfig load_model_config(const std::string& name_or_path, const std::string& config_dir) {
  const std::string file = config_file_path(name_or_path, config_dir, "models");
  const json doc = load_json_file(file);
  const JsonView root = JsonView(doc, file).object();
  ModelConfig cfg;
  cfg.name = root.get_string("name", name_or_path);
  // Bounds above any published model, so that no size arithmetic can overflow.
  cfg.d_model = root.at("d_model").as_int_in(1, kMaxModelDim);
  cfg.n_layers = root.at("n_layers").as_int_in(1, kMaxLayers);
  cfg.n_heads = root.at("n_heads").as_int_in(1, kMaxHeads);
  cfg.n_kv_heads = root.at("n_kv_heads").as_int_in(1, kMaxHeads);
  cfg.d_ff = root.at("d_ff").as_int_in(1, kMaxFfnDim);
  cfg.vocab = root.at("vocab").as_int_in(1, kMaxVocab);
  cfg.max_seq = root.at("max_seq").as_int_in(1, kMaxSeq);
  if (root.has("rope_theta")) cfg.rope_theta = root.at("rope_theta").as_number_in(1e-3, 1e12);
  if (root.has("norm_eps")) cfg.norm_eps = root.at("norm_eps").as_number_in(1e-30, 1.0);
  if (cfg.d_model % cfg.n_heads != 0)
    root.at("n_heads").fail("a divisor of d_model (" + std::to_string(cfg.d_model) + "), got " +
                            std::to_string(cfg.n_heads));
  if (cfg.n_heads % cfg.n_kv_heads != 0)
    root.at("n_kv_heads")
        .fail("a divisor of n_heads (" + std::to_string(cfg.n_heads) + "), got " +
              std::to_string(cfg.n_kv_heads));
  if (cfg.head_dim() % 2 != 0)
    root.at("n_heads").fail("a head dimension d_model/n_heads that is even (RoPE rotates pairs)");
  return cfg;
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
  p.scale_out_bytes_per_s =
      figure(root.at("scale_out").object().at("bytes_per_s_per_node"), 1e6, 1e14);
  if (root.has("launch")) {
    const JsonView launch = root.at("launch").object();
    p.launch_eager_s = figure(launch.at("eager_s"), 1e-8, 1e-2);
    p.launch_graphs_s = figure(launch.at("graphs_s"), 1e-8, 1e-2);
  }
  return p;
}

}  // namespace capbench
