#include "backends/comm/communicator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "backends/comm/link_model.h"

namespace capbench {

const char* collective_name(Collective c) {
  switch (c) {
    case Collective::all_reduce:
      return "all_reduce";
    case Collective::all_gather:
      return "all_gather";
    case Collective::reduce_scatter:
      return "reduce_scatter";
    case Collective::broadcast:
      return "broadcast";
    case Collective::barrier:
      return "barrier";
  }
  return "?";
}

std::runtime_error collective_failure(const std::string& what, const std::string& engine_line) {
  return std::runtime_error(what + " failed: " + engine_line +
                            " (a rank stopped, or the collective timeout passed)");
}

// ---- single -----------------------------------------------------------------------------------

namespace {
CommHandle done_now() {
  const double now = host_seconds_now();
  return std::make_shared<DoneWork>(now, now);
}
void copy_share(const Tensor& out, const Tensor& in) {
  if (out.bytes() != in.bytes())
    throw std::invalid_argument("a world of one: out and in must have the same size");
  if (out.data != in.data) std::memmove(out.data, in.data, in.bytes());
}
}  // namespace

CommHandle SingleCommunicator::all_reduce(const Tensor&, ReduceOp) {
  return done_now();
}
CommHandle SingleCommunicator::all_gather(const Tensor& out, const Tensor& in) {
  copy_share(out, in);
  return done_now();
}
CommHandle SingleCommunicator::reduce_scatter(const Tensor& out, const Tensor& in, ReduceOp) {
  copy_share(out, in);
  return done_now();
}
CommHandle SingleCommunicator::broadcast(const Tensor&, int) {
  return done_now();
}
CommHandle SingleCommunicator::barrier() {
  return done_now();
}

// ---- metering ---------------------------------------------------------------------------------

class MeteredWork final : public CommWork {
 public:
  MeteredWork(MeteredCommunicator& owner, Collective kind, size_t bytes, CommHandle inner)
      : owner_(owner), kind_(kind), bytes_(bytes), inner_(std::move(inner)) {}
  void wait() override {
    inner_->wait();
    std::lock_guard<std::mutex> lock(mutex_);
    if (!recorded_) owner_.record(kind_, bytes_, *inner_);
    recorded_ = true;
  }
  double started_s() const override { return inner_->started_s(); }
  double finished_s() const override { return inner_->finished_s(); }

 private:
  MeteredCommunicator& owner_;
  Collective kind_;
  size_t bytes_;
  CommHandle inner_;
  std::mutex mutex_;
  bool recorded_ = false;
};

CommHandle MeteredCommunicator::around(Collective kind, size_t bytes,
                                       const std::function<CommHandle()>& launch) {
  return std::make_shared<MeteredWork>(*this, kind, bytes, launch());
}

void MeteredCommunicator::record(Collective kind, size_t bytes, const CommWork& work) {
  std::lock_guard<std::mutex> lock(mutex_);
  CollectiveTotals& t = totals_[static_cast<size_t>(kind)];
  t.calls += 1;
  t.bytes += static_cast<double>(bytes);
  t.bus_bytes += static_cast<double>(bytes) * bus_factor(kind, world());
  t.seconds += std::max(0.0, work.finished_s() - work.started_s());
}

MeteredCommunicator::Totals MeteredCommunicator::totals() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return totals_;
}

void MeteredCommunicator::add(const Totals& per_pass, double times) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t k = 0; k < totals_.size(); ++k) {
    totals_[k].calls +=
        static_cast<int64_t>(std::llround(static_cast<double>(per_pass[k].calls) * times));
    totals_[k].bytes += per_pass[k].bytes * times;
    totals_[k].seconds += per_pass[k].seconds * times;
    totals_[k].bus_bytes += per_pass[k].bus_bytes * times;
  }
}

void MeteredCommunicator::reset() {
  std::lock_guard<std::mutex> lock(mutex_);
  totals_ = {};
}

// ---- rendezvous -------------------------------------------------------------------------------

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// An integer variable in [lo, hi]; throws naming it.
int env_int(const char* name, int lo, int hi, const std::string& why) {
  const char* text = env(name);
  if (!text) throw CommSetupError(std::string(name) + " is not set (" + why + ")");
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
    throw CommSetupError(std::string(name) + "=\"" + text + "\": expected an integer in [" +
                         std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(v);
}

// Slurm's tasks-per-node lists look like "2(x3),1": the first node's count.
int leading_int(const char* text) {
  return text ? std::atoi(text) : 0;
}

constexpr int kMaxWorld = 1 << 20;

}  // namespace

Rendezvous rendezvous_from_env() {
  Rendezvous rv;
  if (env("RANK") || env("WORLD_SIZE")) {
    rv.source = "torchrun";
    rv.world = env_int("WORLD_SIZE", 1, kMaxWorld, "set with RANK by torchrun");
    rv.rank = env_int("RANK", 0, rv.world - 1, "set with WORLD_SIZE by torchrun");
    rv.local_rank = env("LOCAL_RANK") ? env_int("LOCAL_RANK", 0, rv.world - 1, "") : 0;
    rv.local_world = env("LOCAL_WORLD_SIZE") ? env_int("LOCAL_WORLD_SIZE", 1, rv.world, "") : 1;
    if (rv.local_rank >= rv.local_world)
      throw CommSetupError("LOCAL_RANK=" + std::to_string(rv.local_rank) +
                           " is not below LOCAL_WORLD_SIZE=" + std::to_string(rv.local_world));
    const std::string agent_store =
        env("TORCHELASTIC_USE_AGENT_STORE") ? env("TORCHELASTIC_USE_AGENT_STORE") : "";
    rv.store_is_served = agent_store == "True" || agent_store == "1";
  } else if (env("SLURM_PROCID") && env("SLURM_NTASKS")) {
    rv.source = "slurm";
    rv.world = env_int("SLURM_NTASKS", 1, kMaxWorld, "set by srun");
    rv.rank = env_int("SLURM_PROCID", 0, rv.world - 1, "set by srun");
    rv.local_rank = env("SLURM_LOCALID") ? env_int("SLURM_LOCALID", 0, rv.world - 1, "") : 0;
    const int per_node = leading_int(env("SLURM_NTASKS_PER_NODE"))
                             ? leading_int(env("SLURM_NTASKS_PER_NODE"))
                             : leading_int(env("SLURM_TASKS_PER_NODE"));
    rv.local_world = std::max(1, std::min(per_node, rv.world));
    const int nodes = env("SLURM_NNODES") ? env_int("SLURM_NNODES", 1, kMaxWorld, "") : 1;
    if (!env("MASTER_ADDR") && nodes > 1)
      throw CommSetupError(
          "MASTER_ADDR is not set: under Slurm on several nodes it must name the node of rank 0 "
          "(e.g. export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head "
          "-n1))");
    // A port per job, so that two jobs on one node do not meet.
    const int job = env("SLURM_JOB_ID") ? std::atoi(env("SLURM_JOB_ID")) : 0;
    rv.master_port = 20000 + job % 20000;
  } else {
    return rv;  // a world of one
  }
  if (const char* addr = env("MASTER_ADDR"))
    rv.master_addr = addr;
  else if (rv.source == "torchrun" && rv.world > 1)
    throw CommSetupError("MASTER_ADDR is not set (set by torchrun with RANK and WORLD_SIZE)");
  if (env("MASTER_PORT"))
    rv.master_port = env_int("MASTER_PORT", 1, 65535, "");
  else if (rv.source == "torchrun" && rv.world > 1)
    throw CommSetupError("MASTER_PORT is not set (set by torchrun with RANK and WORLD_SIZE)");
  return rv;
}

// ---- link model -------------------------------------------------------------------------------

double bus_factor(Collective kind, int world) {
  if (world <= 1) return 1;
  const double n = world;
  switch (kind) {
    case Collective::all_reduce:
      return 2 * (n - 1) / n;
    case Collective::all_gather:
    case Collective::reduce_scatter:
      return (n - 1) / n;
    case Collective::broadcast:
      return 1;
    case Collective::barrier:
      return 0;
  }
  return 1;
}

int ring_steps(Collective kind, int world) {
  if (world <= 1) return 0;
  return kind == Collective::all_reduce ? 2 * (world - 1) : world - 1;
}

double LinkModel::bandwidth(int world) const {
  double bw = link_bytes_per_s;
  if (topology == "full_mesh") bw *= std::max(1, world - 1);
  if (ranks_per_node > 0 && world > ranks_per_node && scale_out_bytes_per_s > 0)
    bw = std::min(bw, scale_out_bytes_per_s);
  return bw;
}

double LinkModel::seconds(Collective kind, double bytes, int world, int64_t calls) const {
  if (world <= 1) return 0;
  const double bw = bandwidth(world);
  const double transfer =
      kind == Collective::barrier || !(bw > 0) ? 0 : bytes * bus_factor(kind, world) / bw;
  return static_cast<double>(calls) * latency_s * ring_steps(kind, world) + transfer;
}

std::vector<double> gather_values(Communicator& comm, double mine) {
  std::vector<double> each(static_cast<size_t>(comm.world()), 0.0);
  each[static_cast<size_t>(comm.rank())] = mine;
  comm.agree(each, ReduceOp::sum);
  return each;
}

SplitPlace split_place(Communicator& comm, int color) {
  const std::vector<double> colors = gather_values(comm, static_cast<double>(color));
  SplitPlace place;
  place.world = 0;
  for (int r = 0; r < comm.world(); ++r) {
    if (colors[static_cast<size_t>(r)] != static_cast<double>(color)) continue;
    if (r == comm.rank()) place.rank = place.world;
    ++place.world;
  }
  return place;
}

TensorDataGroups split_tensor_data(Communicator& ranks, int tp) {
  if (tp < 1 || ranks.world() % tp != 0)
    throw std::invalid_argument("tensor x data groups: tp " + std::to_string(tp) +
                                " does not divide the world of " + std::to_string(ranks.world()));
  TensorDataGroups groups;
  groups.tensor = ranks.split(ranks.rank() / tp);
  groups.data = ranks.split(ranks.rank() % tp);
  return groups;
}

std::unique_ptr<Communicator> Communicator::split(int) {
  if (world() <= 1) return std::make_unique<SingleCommunicator>();
  throw CommSetupError("the " + engine() + " engine has no process sub-groups");
}

LinkModel LinkModel::scaled(double scale) const {
  LinkModel m = *this;
  m.link_bytes_per_s *= scale;
  m.scale_out_bytes_per_s *= scale;
  m.latency_s /= scale;
  return m;
}

// ---- the interconnect throttle ----------------------------------------------------------------

namespace {
class PacedWork final : public CommWork {
 public:
  PacedWork(CommHandle inner, double model_start, double model_end)
      : inner_(std::move(inner)), model_start_(model_start), model_end_(model_end) {}
  void wait() override {
    inner_->wait();
    wait_until_host_seconds(model_end_);
  }
  // On the modelled link it began at model_start (the engine's own start is engine latency,
  // not link time); it ended when both the model and the engine were done.
  double started_s() const override { return model_start_; }
  double finished_s() const override { return std::max(inner_->finished_s(), model_end_); }

 private:
  CommHandle inner_;
  double model_start_, model_end_;
};
}  // namespace

LinkTimeline::LinkTimeline(LinkModel link) : link_(std::move(link)) {
  if (link_.topology != "switch" && link_.topology != "full_mesh")
    throw std::invalid_argument("link topology must be switch or full_mesh, got " + link_.topology);
  if (!(link_.link_bytes_per_s > 0))
    throw std::invalid_argument("a modelled link needs a bandwidth above 0");
}

std::pair<double, double> LinkTimeline::occupy(Collective kind, double bytes, int world) {
  const double now = host_seconds_now();
  const double modelled = link_.seconds(kind, bytes, world);
  std::lock_guard<std::mutex> lock(mutex_);
  const double start = std::max(now, free_s_);
  free_s_ = start + modelled;
  return {start, free_s_};
}

ThrottledCommunicator::ThrottledCommunicator(Communicator& inner, LinkModel link)
    : ForwardingCommunicator(inner), timeline_(std::move(link)) {}

CommHandle ThrottledCommunicator::around(Collective kind, size_t bytes,
                                         const std::function<CommHandle()>& launch) {
  if (kind == Collective::barrier) return launch();
  // The model's clock starts once the engine has the collective (launching is asynchronous).
  CommHandle inner = launch();
  const auto [start, end] = timeline_.occupy(kind, static_cast<double>(bytes), world());
  return std::make_shared<PacedWork>(std::move(inner), start, end);
}

// ---- virtual ranks ----------------------------------------------------------------------------

VirtualCommunicator::VirtualCommunicator(int world, LinkModel link, Backend* timeline)
    : world_(world), timeline_(std::move(link)) {
  if (world < 2) throw std::invalid_argument("virtual ranks: a world of at least 2");
  if (timeline && timeline->pace_slots() > 0) {
    timeline_backend_ = timeline;
    // Any slot will do: a stamp and its pace are queued back to back, and whatever else stamps
    // this slot (the throttle cycles through all of them) is ordered before or after the pair on
    // the same timeline.
    slot_ = timeline->pace_slots() - 1;
  }
}

// Nothing moves: a collective is its time on the modelled link alone.
CommHandle VirtualCommunicator::modelled(Collective kind, size_t bytes) {
  if (timeline_backend_) {
    const double seconds = timeline_.link().seconds(kind, static_cast<double>(bytes), world_);
    const double now = host_seconds_now();
    PaceRule rule;
    rule.floor_s = seconds;
    timeline_backend_->stamp(slot_);
    timeline_backend_->pace(slot_, rule);
    // Its span as the model has it (on a device the pause runs later, when the stream gets there).
    return std::make_shared<DoneWork>(now, now + seconds);
  }
  const auto [start, end] = timeline_.occupy(kind, static_cast<double>(bytes), world_);
  return std::make_shared<PacedWork>(std::make_shared<DoneWork>(start, start), start, end);
}

CommHandle VirtualCommunicator::all_reduce(const Tensor& data, ReduceOp) {
  return modelled(Collective::all_reduce, data.bytes());
}
CommHandle VirtualCommunicator::all_gather(const Tensor& out, const Tensor&) {
  return modelled(Collective::all_gather, out.bytes());
}
CommHandle VirtualCommunicator::reduce_scatter(const Tensor&, const Tensor& in, ReduceOp) {
  return modelled(Collective::reduce_scatter, in.bytes());
}
CommHandle VirtualCommunicator::broadcast(const Tensor& data, int) {
  return modelled(Collective::broadcast, data.bytes());
}
CommHandle VirtualCommunicator::barrier() {
  const double now = host_seconds_now();
  return std::make_shared<DoneWork>(now, now);
}

}  // namespace capbench
