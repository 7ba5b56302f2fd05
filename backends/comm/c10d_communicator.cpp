// The c10d engine: libtorch's ProcessGroupGloo on host memory, rendezvous through a TCPStore.
//
// Collectives run one after another on one communication thread per process, in the order they
// were issued: every rank issues them in the same order, so they meet, and they overlap the
// caller's compute. Gloo in libtorch 1.13 reduces fp32, fp64 and integers but not bf16, has no
// AVG, and no reduce-scatter; so bf16 all-reduce and every reduce-scatter move their data as
// bytes with Gloo's all-to-all (each rank receives every rank's copy of its share: the (n−1)/n·S
// a ring reduce-scatter moves), reduce the share locally in fp32, and (all-reduce) all-gather
// the reduced shares as bytes. Averages are sums divided by the world. A sub-group (split) is a
// ProcessGroupGloo of its own over the same store under its own key prefix, with its own thread,
// so that a tensor group's and a data group's collectives run side by side.
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <future>
#include <thread>

#include "backends/comm/communicator.h"
#include "backends/torch/torch_common.h"

namespace capbench {
namespace {

// A view of a tensor's memory: as its own dtype, or as bytes (what Gloo moves of any dtype).
at::Tensor as_elements(const Tensor& t) {
  return at::from_blob(t.data, {t.numel()}, at::TensorOptions().dtype(scalar_type(t.dtype)));
}
at::Tensor as_bytes(const Tensor& t) {
  return at::from_blob(t.data, {static_cast<int64_t>(t.bytes())},
                       at::TensorOptions().dtype(at::kByte));
}
at::Tensor bytes_of(const at::Tensor& t) {
  return at::from_blob(t.data_ptr(), {t.numel() * static_cast<int64_t>(t.element_size())},
                       at::TensorOptions().dtype(at::kByte));
}

c10d::ReduceOp gloo_op(ReduceOp op) {
  return op == ReduceOp::max ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
}

class QueuedWork final : public CommWork {
 public:
  std::promise<void> promise;
  std::shared_future<void> future = promise.get_future().share();
  double started = 0, finished = 0;
  std::string what;  // the collective, for messages

  void wait() override {
    try {
      future.get();
    } catch (const std::exception& e) {
      throw collective_failure(what, first_line(e.what()));
    }
  }
  double started_s() const override { return started; }
  double finished_s() const override { return finished; }
};

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(const Rendezvous& rv, double timeout_s) : rank_(rv.rank), world_(rv.world) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1e3));
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(rv.master_port);
    store_options.isServer = rv.rank == 0 && !rv.store_is_served;
    store_options.numWorkers = static_cast<std::size_t>(rv.world);
    store_options.waitWorkers = false;
    store_options.timeout = timeout;
    where_ = rv.master_addr + ":" + std::to_string(rv.master_port);
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(rv.master_addr, store_options);
    } catch (const std::exception& e) {
      throw CommSetupError(std::string(store_options.isServer
                                           ? "MASTER_PORT " + std::to_string(rv.master_port) +
                                                 ": cannot serve the rendezvous store: "
                                           : "MASTER_ADDR:MASTER_PORT " + where_ +
                                                 ": cannot reach the rendezvous store: ") +
                           first_line(e.what()));
    }
    options_ = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      options_->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (rv.master_addr == "127.0.0.1" || rv.master_addr == "localhost")
      options_->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      options_->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    options_->threads = 2;
    join("capbench");
  }

  // A sub-group of `parent`: the same store and devices, its own keys, connections and thread.
  GlooCommunicator(const GlooCommunicator& parent, SplitPlace place, const std::string& prefix)
      : rank_(place.rank),
        world_(place.world),
        store_(parent.store_),
        options_(parent.options_),
        where_(parent.where_) {
    join(prefix);
  }

  ~GlooCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    thread_.join();
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string engine() const override { return "gloo"; }

  std::unique_ptr<Communicator> split(int color) override {
    const SplitPlace place = split_place(*this, color);
    // Every rank counts its splits alike, so a split's keys are unique in the store.
    const std::string prefix =
        "capbench/split" + std::to_string(++splits_) + "/color" + std::to_string(color);
    if (place.world == 1) return std::make_unique<SingleCommunicator>();
    return std::make_unique<GlooCommunicator>(*this, place, prefix);
  }

  CommHandle all_reduce(const Tensor& data, ReduceOp op) override {
    return enqueue("all_reduce", [this, data, op] {
      if (data.dtype == DType::bf16) {
        reduce_by_shares(data, op, /*gather=*/true, Tensor{});
        return;
      }
      std::vector<at::Tensor> tensors{as_elements(data)};
      c10d::AllreduceOptions o;
      o.reduceOp = gloo_op(op);
      group_->allreduce(tensors, o)->wait();
      if (op == ReduceOp::average) tensors[0].div_(world_);
    });
  }

  CommHandle all_gather(const Tensor& out, const Tensor& in) override {
    check_multiple(out, in, "all_gather");
    return enqueue("all_gather", [this, out, in] {
      const at::Tensor all = as_bytes(out);
      std::vector<std::vector<at::Tensor>> outputs(1);
      for (const at::Tensor& share : all.chunk(world_)) outputs[0].push_back(share);
      std::vector<at::Tensor> inputs{as_bytes(in)};
      group_->allgather(outputs, inputs)->wait();
    });
  }

  CommHandle reduce_scatter(const Tensor& out, const Tensor& in, ReduceOp op) override {
    check_multiple(in, out, "reduce_scatter");
    return enqueue("reduce_scatter",
                   [this, out, in, op] { reduce_by_shares(in, op, /*gather=*/false, out); });
  }

  CommHandle broadcast(const Tensor& data, int root) override {
    if (root < 0 || root >= world_)
      throw std::invalid_argument("broadcast: root " + std::to_string(root) + " outside the world");
    return enqueue("broadcast", [this, data, root] {
      std::vector<at::Tensor> tensors{as_bytes(data)};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      group_->broadcast(tensors, o)->wait();
    });
  }

  CommHandle barrier() override {
    return enqueue("barrier", [this] { group_->barrier()->wait(); });
  }

  void agree(std::vector<double>& values, ReduceOp op) override {
    if (values.empty()) return;
    enqueue("agreement between ranks", [this, &values, op] {
      std::vector<at::Tensor> tensors{at::from_blob(values.data(),
                                                    {static_cast<int64_t>(values.size())},
                                                    at::TensorOptions().dtype(at::kDouble))};
      c10d::AllreduceOptions o;
      o.reduceOp = gloo_op(op);
      group_->allreduce(tensors, o)->wait();
      if (op == ReduceOp::average) tensors[0].div_(world_);
    })->wait();
  }

 private:
  // Connects this world's ranks through the store under `prefix`; starts the collectives' thread.
  void join(const std::string& prefix) {
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>(prefix, store_);
    try {
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank_, world_, options_);
    } catch (const std::exception& e) {
      throw CommSetupError("rendezvous of " + std::to_string(world_) + " ranks at " + where_ +
                           " failed: " + first_line(e.what()));
    }
    thread_ = std::thread([this] { serve(); });
  }

  void check_multiple(const Tensor& whole, const Tensor& share, const char* what) const {
    if (whole.numel() != share.numel() * world_ || whole.dtype != share.dtype)
      throw std::invalid_argument(std::string(what) + ": the whole tensor must hold world (" +
                                  std::to_string(world_) + ") shares of the same dtype");
  }

  // `whole` [n] is split into world shares (padded to equal sizes); rank r receives every rank's
  // share r through an all-to-all of bytes and reduces it in fp32. gather: the reduced shares are
  // all-gathered back into `whole` (an all-reduce); else the share goes to `out`.
  void reduce_by_shares(const Tensor& whole, ReduceOp op, bool gather, const Tensor& out) {
    const int64_t n = whole.numel();
    const int64_t share = (n + world_ - 1) / world_;
    const auto type = at::TensorOptions().dtype(scalar_type(whole.dtype));
    at::Tensor padded = at::zeros({world_ * share}, type);
    padded.narrow(0, 0, n).copy_(as_elements(whole));
    at::Tensor received = at::empty({world_ * share}, type);
    at::Tensor send_bytes = bytes_of(padded), recv_bytes = bytes_of(received);
    std::vector<int64_t> counts;  // empty: equal splits
    group_->alltoall_base(recv_bytes, send_bytes, counts, counts)->wait();
    const at::Tensor parts = received.view({world_, share}).to(at::kFloat);
    at::Tensor reduced = op == ReduceOp::max ? std::get<0>(parts.max(0)) : parts.sum(0);
    if (op == ReduceOp::average) reduced.div_(world_);
    const at::Tensor mine = reduced.to(scalar_type(whole.dtype));
    if (!gather) {
      as_elements(out).copy_(mine);
      return;
    }
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (const at::Tensor& s : bytes_of(padded).chunk(world_)) outputs[0].push_back(s);
    std::vector<at::Tensor> inputs{bytes_of(mine)};
    group_->allgather(outputs, inputs)->wait();
    as_elements(whole).copy_(padded.narrow(0, 0, n));
  }

  CommHandle enqueue(const std::string& what, std::function<void()> body) {
    auto work = std::make_shared<QueuedWork>();
    work->what = what;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.emplace_back(work, std::move(body));
    }
    ready_.notify_one();
    return work;
  }

  void serve() {
    for (;;) {
      std::pair<std::shared_ptr<QueuedWork>, std::function<void()>> item;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      QueuedWork& work = *item.first;
      work.started = host_seconds_now();
      try {
        item.second();
        work.finished = host_seconds_now();
        work.promise.set_value();
      } catch (...) {
        work.finished = host_seconds_now();
        work.promise.set_exception(std::current_exception());
      }
    }
  }

  int rank_, world_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo::Options> options_;
  std::string where_;  // MASTER_ADDR:MASTER_PORT, for messages
  int splits_ = 0;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::pair<std::shared_ptr<QueuedWork>, std::function<void()>>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Communicator> make_gloo_communicator(const Rendezvous& rv, double timeout_s) {
  return std::make_unique<GlooCommunicator>(rv, timeout_s);
}

}  // namespace capbench
