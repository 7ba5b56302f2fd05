// The c10d engine for CUDA memory: libtorch's ProcessGroupNCCL, built where the libtorch has CUDA
// (and type-checked without one by tests/torch_cuda_syntax/check.sh). It joins the rendezvous
// the host communicator serves (a TCPStore client under its own prefix) and leaves the host's
// agreements to that communicator. Each rank drives the GPU of its local rank. A handle's wait()
// blocks the host until the collective is complete, so that its times are known: c10d queues it
// after the work on the thread's current stream (the torch:cuda backend's own while it is alive).
// Its span starts when it was issued, so one issued while compute is still queued ahead of it
// (a data-parallel bucket) counts the rest of that compute too: an upper bound, never a span
// shorter than the collective (which would make its busbw impossible).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "backends/comm/communicator.h"
#include "backends/torch/torch_common.h"

namespace capbench {
namespace {

class NcclWork final : public CommWork {
 public:
  NcclWork(c10::intrusive_ptr<c10d::Work> work, std::string what, std::function<void()> after,
           c10::DeviceIndex device)
      : work_(std::move(work)),
        what_(std::move(what)),
        after_(std::move(after)),
        device_(device),
        started_(host_seconds_now()) {}
  void wait() override {
    if (done_) return;
    try {
      // c10d's wait() only orders the thread's current stream after the collective (unless
      // TORCH_NCCL_BLOCKING_WAIT is set); the host waits for that stream, so that the collective,
      // and the division of an average queued after it, are complete when the time is taken.
      work_->wait();
      if (after_) after_();
      c10::cuda::getCurrentCUDAStream(device_).synchronize();
    } catch (const std::exception& e) {
      throw collective_failure(what_, first_line(e.what()));
    }
    finished_ = host_seconds_now();
    done_ = true;
  }
  double started_s() const override { return started_; }
  double finished_s() const override { return finished_; }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string what_;
  std::function<void()> after_;
  c10::DeviceIndex device_;
  double started_, finished_ = 0;
  bool done_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(const Rendezvous& rv, double timeout_s, Communicator& host)
      : host_(host), rank_(rv.rank), world_(rv.world) {
    const int devices = static_cast<int>(c10::cuda::device_count());
    if (devices < 1) throw CommSetupError("NCCL needs a CUDA device; this process sees none");
    device_ = rv.local_rank % devices;
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_));
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(rv.master_port);
    store_options.isServer = false;  // the host communicator serves it
    store_options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1e3));
    store_ = c10::make_intrusive<c10d::TCPStore>(rv.master_addr, store_options);
    timeout_ = store_options.timeout;
    join("capbench-nccl");
  }

  // A sub-group: the host communicator's split of the same color serves its agreements.
  NcclCommunicator(const NcclCommunicator& parent, std::unique_ptr<Communicator> host_part,
                   const std::string& prefix)
      : owned_host_(std::move(host_part)),
        host_(*owned_host_),
        rank_(host_.rank()),
        world_(host_.world()),
        device_(parent.device_),
        store_(parent.store_),
        timeout_(parent.timeout_) {
    join(prefix);
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string engine() const override { return "nccl"; }

  std::unique_ptr<Communicator> split(int color) override {
    std::unique_ptr<Communicator> host_part = host_.split(color);
    const std::string prefix =
        "capbench-nccl/split" + std::to_string(++splits_) + "/color" + std::to_string(color);
    if (host_part->world() == 1) return std::make_unique<SingleCommunicator>();
    return std::make_unique<NcclCommunicator>(*this, std::move(host_part), prefix);
  }

  CommHandle all_reduce(const Tensor& data, ReduceOp op) override {
    std::vector<at::Tensor> tensors{device_tensor(data)};
    c10d::AllreduceOptions o;
    o.reduceOp = op == ReduceOp::max ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    const at::Tensor t = tensors[0];
    const int world = world_;
    return handle(group_->allreduce(tensors, o), "all_reduce",
                  op == ReduceOp::average
                      ? std::function<void()>([t, world]() mutable { t.div_(world); })
                      : std::function<void()>());
  }
  CommHandle all_gather(const Tensor& out, const Tensor& in) override {
    at::Tensor o = device_tensor(out), i = device_tensor(in);
    return handle(group_->_allgather_base(o, i), "all_gather", {});
  }
  CommHandle reduce_scatter(const Tensor& out, const Tensor& in, ReduceOp op) override {
    at::Tensor o = device_tensor(out), i = device_tensor(in);
    c10d::ReduceScatterOptions opts;
    opts.reduceOp = op == ReduceOp::max ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    const int world = world_;
    return handle(group_->_reduce_scatter_base(o, i, opts), "reduce_scatter",
                  op == ReduceOp::average
                      ? std::function<void()>([o, world]() mutable { o.div_(world); })
                      : std::function<void()>());
  }
  CommHandle broadcast(const Tensor& data, int root) override {
    std::vector<at::Tensor> tensors{device_tensor(data)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    return handle(group_->broadcast(tensors, o), "broadcast", {});
  }
  CommHandle barrier() override { return host_.barrier(); }
  void agree(std::vector<double>& values, ReduceOp op) override { host_.agree(values, op); }

 private:
  void join(const std::string& prefix) {
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>(prefix, store_);
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout_;
    group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank_, world_, options);
  }

  at::Tensor device_tensor(const Tensor& t) const {
    return at::from_blob(t.data, {t.numel()},
                         at::TensorOptions()
                             .dtype(scalar_type(t.dtype))
                             .device(at::kCUDA, static_cast<c10::DeviceIndex>(device_)));
  }
  CommHandle handle(c10::intrusive_ptr<c10d::Work> work, const char* what,
                    std::function<void()> after) {
    return std::make_shared<NcclWork>(std::move(work), what, std::move(after),
                                      static_cast<c10::DeviceIndex>(device_));
  }

  std::unique_ptr<Communicator> owned_host_;  // a sub-group's own host split
  Communicator& host_;
  int rank_, world_, device_ = 0;
  c10::intrusive_ptr<c10d::Store> store_;
  std::chrono::milliseconds timeout_{0};
  int splits_ = 0;
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> group_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const Rendezvous& rv, double timeout_s,
                                                     Communicator& host, std::string* why) {
  // NCCL takes one GPU per rank: more local ranks than devices would put two on one GPU, which
  // NCCL refuses only at the first collective, in the middle of a run; those runs are skipped
  // with this reason instead.
  const int devices = static_cast<int>(c10::cuda::device_count());
  if (rv.local_world > devices) {
    if (why)
      *why = std::to_string(rv.local_world) + " ranks on this host, " + std::to_string(devices) +
             " CUDA device(s) visible: NCCL needs one GPU per rank (more ranks than GPUs run as "
             "virtual ranks, in one process: \"parallel\": {\"virtual\": true})";
    return nullptr;
  }
  return std::make_unique<NcclCommunicator>(rv, timeout_s, host);
}

}  // namespace capbench
