#include "workloads/data_parallel.h"

#include <algorithm>
#include <stdexcept>

namespace capbench {

std::vector<GradientBucket> gradient_buckets(int64_t count, size_t element_bytes,
                                             int64_t first_bucket_bytes, int64_t bucket_bytes) {
  if (first_bucket_bytes <= 0 || bucket_bytes <= 0)
    throw std::invalid_argument("gradient buckets must hold at least one byte");
  std::vector<GradientBucket> out;
  int64_t end = count;
  const int64_t size = static_cast<int64_t>(element_bytes);
  while (end > 0) {
    const int64_t cap = out.empty() ? first_bucket_bytes : bucket_bytes;
    const int64_t elements = std::max<int64_t>(1, cap / size);
    const int64_t begin = std::max<int64_t>(0, end - elements);
    out.push_back({begin, end});
    end = begin;
  }
  return out;
}

GradientSync::GradientSync(Communicator& comm, const Tensor& grads, int64_t first_bucket_bytes,
                           int64_t bucket_bytes)
    : comm_(comm),
      grads_(grads),
      buckets_(gradient_buckets(grads.numel(), dtype_size(grads.dtype), first_bucket_bytes,
                                bucket_bytes)) {}

void GradientSync::ready(int64_t from) {
  while (launched_ < buckets_.size() && buckets_[launched_].begin >= from) {
    const GradientBucket& b = buckets_[launched_++];
    const Tensor part(static_cast<char*>(grads_.data) + b.begin * dtype_size(grads_.dtype),
                      grads_.dtype, {b.end - b.begin});
    in_flight_.push_back(comm_.all_reduce(part, ReduceOp::sum));
  }
}

double GradientSync::finish() {
  const double t0 = host_seconds_now();
  ready(0);
  last_comm_s_ = 0;
  for (const CommHandle& h : in_flight_) {
    h->wait();
    last_comm_s_ += std::max(0.0, h->finished_s() - h->started_s());
  }
  in_flight_.clear();
  launched_ = 0;
  last_exposed_s_ = host_seconds_now() - t0;
  return last_exposed_s_;
}

}  // namespace capbench
