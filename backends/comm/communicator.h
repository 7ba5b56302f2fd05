// The communicator: the ranks of a job and the collectives between them, on the tensors of the
// backend in use. Every collective is asynchronous: it returns a handle to wait on, so that
// communication overlaps compute. Engines: c10d (Gloo for host memory, c10d_communicator.cpp),
// `single` for a world of one; decorators meter collectives (MeteredCommunicator) and pace them
// to a target's link model (ThrottledCommunicator, link_model.h).
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace capbench {

enum class Collective { all_reduce, all_gather, reduce_scatter, broadcast, barrier };
constexpr int kCollectiveCount = 5;
const char* collective_name(Collective c);

enum class ReduceOp { sum, average, max };

// A problem in how the job was set up (an environment variable, a flag, a port): the CLI
// prints it as one line and exits with code 2.
class CommSetupError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// How an engine reports a collective that failed: which one, the first line of the engine's
// message, and the likely causes.
std::runtime_error collective_failure(const std::string& what, const std::string& engine_line);

// One collective in flight. started_s / finished_s: host clock (host_seconds_now), set once
// wait() has returned: when the engine began it (after those queued before it) and when it was
// complete.
class CommWork {
 public:
  virtual ~CommWork() = default;
  // Blocks until the collective is complete; throws std::runtime_error when it failed (a rank
  // stopped, the collective timeout passed).
  virtual void wait() = 0;
  virtual double started_s() const = 0;
  virtual double finished_s() const = 0;
};
using CommHandle = std::shared_ptr<CommWork>;

// A collective that was complete when it was returned.
class DoneWork final : public CommWork {
 public:
  DoneWork(double started, double finished) : started_(started), finished_(finished) {}
  void wait() override {}
  double started_s() const override { return started_; }
  double finished_s() const override { return finished_; }

 private:
  double started_, finished_;
};

// Every collective takes fp32 or bf16 tensors (i32 where no arithmetic is involved), dense, in
// the backend's memory. Sizes are in elements; `n` is one rank's share.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual std::string engine() const = 0;  // "gloo", "single", ...

  // data: [n], reduced in place over the ranks.
  virtual CommHandle all_reduce(const Tensor& data, ReduceOp op) = 0;
  // out: [world·n], rank r's `in` [n] at out[r·n, (r+1)·n).
  virtual CommHandle all_gather(const Tensor& out, const Tensor& in) = 0;
  // out: [n], the reduction over the ranks of their in[rank·n, (rank+1)·n); in: [world·n].
  virtual CommHandle reduce_scatter(const Tensor& out, const Tensor& in, ReduceOp op) = 0;
  // data: [n], root's values on every rank.
  virtual CommHandle broadcast(const Tensor& data, int root) = 0;
  virtual CommHandle barrier() = 0;

  // Host values reduced over the ranks, at once: how the harness's ranks agree on a sample or a
  // decision. Neither metered nor paced.
  virtual void agree(std::vector<double>& values, ReduceOp op) = 0;

  // Whether collectives are queued on the backend's own timeline, in order with its ops (virtual
  // ranks paced there): the caller need not synchronise before one, and a device graph captures
  // it. Otherwise a collective runs on the host, outside any graph.
  virtual bool on_backend_timeline() const { return false; }

  // The ranks of this world that pass the same `color`, as a world of their own, ranked in this
  // world's order (MPI_Comm_split without a key): how tensor x data parallelism gets its tensor
  // groups and its data groups. Every rank calls it, as often and in the same order as the
  // others. This default serves a world of one; an engine without sub-groups throws
  // CommSetupError.
  virtual std::unique_ptr<Communicator> split(int color);
};

// Where this rank falls in split(color): its rank among the ranks of its color and their count
// (agreed over `comm`, so every rank of `comm` calls it).
struct SplitPlace {
  int rank = 0, world = 1;
};
SplitPlace split_place(Communicator& comm, int color);

// Tensor x data parallelism's groups of `ranks` (world = tp · dp): rank = replica · tp + tensor
// rank, a replica's tensor ranks adjacent (as Megatron places them, so that on a node they share
// the fast links). `tensor`: this rank's replica; `data`: the ranks holding the same shard.
struct TensorDataGroups {
  std::unique_ptr<Communicator> tensor, data;
};
TensorDataGroups split_tensor_data(Communicator& ranks, int tp);

// Every rank's `mine`, on every rank, indexed by rank (through agree: a sum of one-hot vectors).
std::vector<double> gather_values(Communicator& comm, double mine);

// A world of one: nothing moves; all_gather and reduce_scatter copy their one share.
class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  std::string engine() const override { return "single"; }
  CommHandle all_reduce(const Tensor& data, ReduceOp op) override;
  CommHandle all_gather(const Tensor& out, const Tensor& in) override;
  CommHandle reduce_scatter(const Tensor& out, const Tensor& in, ReduceOp op) override;
  CommHandle broadcast(const Tensor& data, int root) override;
  CommHandle barrier() override;
  void agree(std::vector<double>&, ReduceOp) override {}
};

// A decorator that forwards everything to an inner communicator.
class ForwardingCommunicator : public Communicator {
 public:
  explicit ForwardingCommunicator(Communicator& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int world() const override { return inner_.world(); }
  std::string engine() const override { return inner_.engine(); }
  CommHandle all_reduce(const Tensor& data, ReduceOp op) override {
    return around(Collective::all_reduce, data.bytes(),
                  [&] { return inner_.all_reduce(data, op); });
  }
  CommHandle all_gather(const Tensor& out, const Tensor& in) override {
    return around(Collective::all_gather, out.bytes(), [&] { return inner_.all_gather(out, in); });
  }
  CommHandle reduce_scatter(const Tensor& out, const Tensor& in, ReduceOp op) override {
    return around(Collective::reduce_scatter, in.bytes(),
                  [&] { return inner_.reduce_scatter(out, in, op); });
  }
  CommHandle broadcast(const Tensor& data, int root) override {
    return around(Collective::broadcast, data.bytes(),
                  [&] { return inner_.broadcast(data, root); });
  }
  CommHandle barrier() override {
    return around(Collective::barrier, 0, [&] { return inner_.barrier(); });
  }
  void agree(std::vector<double>& values, ReduceOp op) override { inner_.agree(values, op); }
  bool on_backend_timeline() const override { return inner_.on_backend_timeline(); }

 protected:
  // `bytes`: the collective's size S as nccl-tests counts it (the whole array: all-gather's
  // output, reduce-scatter's input).
  virtual CommHandle around(Collective kind, size_t bytes,
                            const std::function<CommHandle()>& launch) {
    return launch();
  }
  Communicator& inner_;
};

// Calls, bytes and busy time of one kind of collective.
struct CollectiveTotals {
  int64_t calls = 0;
  double bytes = 0;      // sum of S
  double seconds = 0;    // sum of started -> finished
  double bus_bytes = 0;  // sum of S × bus factor
};

// Records every collective that passes through, once it has been waited on.
class MeteredCommunicator final : public ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;
  using Totals = std::array<CollectiveTotals, kCollectiveCount>;
  Totals totals() const;
  void reset();
  // Adds `times` × `per_pass`: collectives issued without passing through (a replayed device
  // graph's, counted when it was captured).
  void add(const Totals& per_pass, double times);

 protected:
  CommHandle around(Collective kind, size_t bytes,
                    const std::function<CommHandle()>& launch) override;

 private:
  void record(Collective kind, size_t bytes, const CommWork& work);
  mutable std::mutex mutex_;
  Totals totals_{};
  friend class MeteredWork;
};

// The rank layout a launcher gave this process.
struct Rendezvous {
  int rank = 0, world = 1;
  int local_rank = 0, local_world = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "single";  // "torchrun", "slurm", "single"
  // torchrun's agent already serves the store on master_port: every rank connects as a client.
  bool store_is_served = false;
};

// From torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), else Slurm's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, ...), else a world of
// one. Throws CommSetupError naming the variable that is missing or malformed.
Rendezvous rendezvous_from_env();

// The communicator of this process's rank: `single` for a world of one, else the engine for the
// device kind ("cpu": c10d Gloo). Throws CommSetupError when the build has no engine for it or
// the rendezvous fails (a port in use); `timeout_s` bounds every collective.
std::unique_ptr<Communicator> make_communicator(const Rendezvous& rv, double timeout_s);
// Whether this build has a multi-process engine, and why not.
bool comm_engine_available(std::string* why);
// The communicator for `device_kind` memory ("cuda": c10d NCCL) beside the host one, which
// serves its rendezvous and its agreements. Null, with *why, where this build has none.
std::unique_ptr<Communicator> make_device_communicator(const Rendezvous& rv, double timeout_s,
                                                       const std::string& device_kind,
                                                       Communicator& host, std::string* why);

}  // namespace capbench
