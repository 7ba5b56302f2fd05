// Data parallelism's gradient synchronisation, as PyTorch DDP does it: the flat gradient buffer
// is cut into contiguous buckets from its end (the backward pass finishes the head first and the
// embedding last), the first at most first_bucket_bytes, the rest at most bucket_bytes; each
// bucket's all-reduce is launched as soon as the backward has passed its first element, so that
// it overlaps the rest of the backward. Each rank's loss is pre-scaled by 1/world, so a sum over
// the ranks is the gradient of the mean loss over the global batch (DDP divides before its
// all-reduce too).
#pragma once

#include <cstdint>
#include <vector>

#include "backends/comm/communicator.h"

namespace capbench {

// 25 MiB, and 1 MiB for the first bucket: DDP's defaults (bucket_cap_mb, and its first bucket).
constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;
constexpr int64_t kDefaultFirstBucketBytes = int64_t{1} << 20;

struct GradientBucket {
  int64_t begin = 0, end = 0;  // elements of the flat buffer
};

// Buckets over `count` elements of `element_bytes` each, from the end of the buffer.
std::vector<GradientBucket> gradient_buckets(int64_t count, size_t element_bytes,
                                             int64_t first_bucket_bytes, int64_t bucket_bytes);

class GradientSync {
 public:
  // grads: the flat fp32 gradient buffer [P].
  GradientSync(Communicator& comm, const Tensor& grads, int64_t first_bucket_bytes,
               int64_t bucket_bytes);
  // The backward pass has finished every gradient from element `from` to the end: launches the
  // all-reduces of the buckets that lie wholly there.
  void ready(int64_t from);
  // After the backward: launches what is left, waits for every bucket. Returns the seconds spent
  // waiting here (communication not hidden behind the backward).
  double finish();
  size_t bucket_count() const { return buckets_.size(); }
  // Of the last step: the summed busy time of its all-reduces, and the exposed part.
  double last_comm_s() const { return last_comm_s_; }
  double last_exposed_s() const { return last_exposed_s_; }

 private:
  Communicator& comm_;
  Tensor grads_;
  std::vector<GradientBucket> buckets_;  // from the end of the buffer
  std::vector<CommHandle> in_flight_;
  size_t launched_ = 0;
  double last_comm_s_ = 0, last_exposed_s_ = 0;
};

}  // namespace capbench
