// The link model, in one place: what a collective costs on a scale-up domain (and between
// nodes), which the interconnect throttle paces to, the roofline's communication term uses and
// the reports' algbw / busbw follow.
//
// Bus bytes are nccl-tests' (S the collective's whole array): all-reduce S·2(n−1)/n, all-gather
// and reduce-scatter S·(n−1)/n, broadcast S. A collective lasts at least
//   latency × steps + bus bytes / bandwidth,
// with ring steps (all-reduce 2(n−1), the others n−1) and the bandwidth of the topology:
// `switch` (every rank reaches a fabric at its own link rate: NVSwitch), `full_mesh` (a link
// per peer, all n−1 in use at once: an Ascend 910B node, where 2 ranks see one link and 8 see
// seven). Ranks on several nodes are bounded by the scale-out bandwidth per node as well.
#pragma once

#include <mutex>
#include <string>
#include <utility>

#include "backends/comm/communicator.h"

namespace capbench {

// nccl-tests' bus factor of a collective over `world` ranks (1 for a world of one).
double bus_factor(Collective kind, int world);
// Latency steps of a ring implementation.
int ring_steps(Collective kind, int world);

struct LinkModel {
  std::string topology = "switch";   // "switch" | "full_mesh"
  double link_bytes_per_s = 0;       // per direction: to the switch, or to each peer
  double latency_s = 0;              // per step
  double scale_out_bytes_per_s = 0;  // per node, between nodes; 0: unknown
  int ranks_per_node = 0;            // 0: every rank on one node

  // The bandwidth a collective over `world` ranks sees: the topology's, bounded by scale-out
  // when the ranks span nodes.
  double bandwidth(int world) const;
  // The least time a collective of S = `bytes` takes over `world` ranks; with `calls`, the
  // least time of that many collectives whose sizes sum to `bytes`.
  double seconds(Collective kind, double bytes, int world, int64_t calls = 1) const;
  // Every rate multiplied by `scale` (the time scale s) and the latency divided by it.
  LinkModel scaled(double scale) const;
};

// A modelled link's timeline on the host clock: collectives occupy it one after another, as on
// one stream, each for its link-model time; one that arrives while another is modelled as busy
// starts when that one ends.
class LinkTimeline {
 public:
  // Throws std::invalid_argument for a topology other than switch or full_mesh, or no bandwidth.
  explicit LinkTimeline(LinkModel link);
  const LinkModel& link() const { return link_; }
  // The [start, end) on the link of a collective of S = `bytes` over `world` ranks arriving now.
  std::pair<double, double> occupy(Collective kind, double bytes, int world);

 private:
  LinkModel link_;
  std::mutex mutex_;
  double free_s_ = 0;
};

// The interconnect throttle: every collective lasts at least its link-model time on the link's
// timeline. Barriers pass unpaced.
class ThrottledCommunicator final : public ForwardingCommunicator {
 public:
  ThrottledCommunicator(Communicator& inner, LinkModel link);
  const LinkModel& link() const { return timeline_.link(); }

 protected:
  CommHandle around(Collective kind, size_t bytes,
                    const std::function<CommHandle()>& launch) override;

 private:
  LinkTimeline timeline_;
};

// One rank of a world that is not there (virtual ranks): collectives move no data and last
// their link-model time, one after another on the modelled link, on the host's clock. What the
// rank computes is its own shard; the others' shares are never read or written.
// With a `timeline` backend that can pace, a collective is instead a pause of its link-model time
// queued on that backend's own timeline (stamp + pace: on a GPU, kernels on the op stream), so it
// sits between the ops around it without a host round trip and a device graph (CUDA graphs)
// captures and replays it with them; wait() then returns at once. For collectives that are
// waited on as soon as they are issued (tensor parallelism's); overlapped ones (data parallel
// gradient buckets) need the host timeline, which lets compute run under them.
class VirtualCommunicator final : public Communicator {
 public:
  VirtualCommunicator(int world, LinkModel link, Backend* timeline = nullptr);
  int rank() const override { return 0; }
  int world() const override { return world_; }
  std::string engine() const override { return "virtual"; }
  bool on_backend_timeline() const override { return timeline_backend_ != nullptr; }
  const LinkModel& link() const { return timeline_.link(); }
  CommHandle all_reduce(const Tensor& data, ReduceOp op) override;
  CommHandle all_gather(const Tensor& out, const Tensor& in) override;
  CommHandle reduce_scatter(const Tensor& out, const Tensor& in, ReduceOp op) override;
  CommHandle broadcast(const Tensor& data, int root) override;
  CommHandle barrier() override;
  void agree(std::vector<double>&, ReduceOp) override {}  // one process: already agreed

 private:
  CommHandle modelled(Collective kind, size_t bytes);
  int world_;
  LinkTimeline timeline_;
  Backend* timeline_backend_ = nullptr;  // null: the host timeline
  int slot_ = 0;
};

}  // namespace capbench
