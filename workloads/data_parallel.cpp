#include "workloads/data_parallel.h"

#include <algorithm>
#include <stdexcept>

namespace capbench {

std::vector<GradientBucket> gradient_buckets(int64_t count, size_t element_bytes,
                                             int64_t first_bucket_bytes, int64_t bucket_bytes,
                                             int64_t cut) {
  if (first_bucket_bytes <= 0 || bucket_bytes <= 0)
    throw std::invalid_argument("gradient buckets must hold at least one byte");
  std::vector<GradientBucket> out;
  int64_t end = count;
  const int64_t size = static_cast<int64_t>(element_bytes);
  while (end > 0) {
    const int64_t cap = out.empty() ? first_bucket_bytes : bucket_bytes;
    const int64_t elements = std::max<int64_t>(1, cap / size);
    const int64_t floor = end > cut ? cut : 0;
    const int64_t begin = std::max<int64_t>(floor, end - elements);
    out.push_back({begin, end});
    end = begin;
  }
  return out;
}

GradientSync::GradientSync(Communicator& comm, const Tensor& grads, int64_t first_bucket_bytes,
                           int64_t bucket_bytes, int64_t last_ready)
    : comm_(comm),
      grads_(grads),
      buckets_(gradient_buckets(grads.numel(), dtype_size(grads.dtype), first_bucket_bytes,
                                bucket_bytes, last_ready)) {}

void GradientSync::ready(int64_t from) {
  while (launched_ < buckets_.size() && buckets_[launched_].begin >= from) {
    const GradientBucket& b = buckets_[launched_++];
    const Tensor part(static_cast<char*>(grads_.data) + b.begin * dtype_size(grads_.dtype),
                      grads_.dtype, {b.end - b.begin});
    in_flight_.push_back(comm_.all_reduce(part, ReduceOp::sum));
  }
}

void GradientSync::finish(const std::function<void(int64_t begin, int64_t end)>& reduced) {
  ready(0);
  double comm = 0, exposed = 0;
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    const double t0 = host_seconds_now();
    in_flight_[i]->wait();
    exposed += host_seconds_now() - t0;
    comm += std::max(0.0, in_flight_[i]->finished_s() - in_flight_[i]->started_s());
    reduced(buckets_[i].begin, buckets_[i].end);
  }
  in_flight_.clear();
  launched_ = 0;
  last_comm_s_ = comm;
  last_exposed_s_ = exposed;
}

}  // namespace capbench
