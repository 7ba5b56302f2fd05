// Data parallelism's gradient synchronisation, as PyTorch DDP does it: the flat gradient buffer
// is cut into contiguous buckets from its end (the backward pass finishes the head first and the
// embedding last), the first at most first_bucket_bytes, the rest at most bucket_bytes; each
// bucket's all-reduce is launched as soon as the backward has passed its first element, so that
// it overlaps the rest of the backward, and each bucket's optimizer update runs as soon as it is
// reduced, overlapping the buckets still in flight (the embedding's, computed last, above all).
// Each rank's loss is pre-scaled by 1/world, so a sum over the ranks is the gradient of the mean
// loss over the global batch (DDP divides before its all-reduce too).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backends/comm/communicator.h"

namespace capbench {

// 25 MiB, and 1 MiB for the first bucket: DDP's defaults (bucket_cap_mb, and its first bucket).
constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;
constexpr int64_t kDefaultFirstBucketBytes = int64_t{1} << 20;

struct GradientBucket {
  int64_t begin = 0, end = 0;  // elements of the flat buffer
};

// Buckets over `count` elements of `element_bytes` each, from the end of the buffer; no bucket
// spans element `cut` (0: none).
std::vector<GradientBucket> gradient_buckets(int64_t count, size_t element_bytes,
                                             int64_t first_bucket_bytes, int64_t bucket_bytes,
                                             int64_t cut = 0);

class GradientSync {
 public:
  // grads: the flat fp32 gradient buffer [P]. `last_ready`: the flat offset from which on the
  // gradients are final before the last piece of the backward (the embedding's, which follows
  // every layer): that piece gets buckets of its own, so the layers' last bucket is not held
  // back for it.
  GradientSync(Communicator& comm, const Tensor& grads, int64_t first_bucket_bytes,
               int64_t bucket_bytes, int64_t last_ready = 0);
  // The backward pass has finished every gradient from element `from` to the end: launches the
  // all-reduces of the buckets that lie wholly there.
  void ready(int64_t from);
  // After the backward: launches what is left, then, bucket by bucket in launch order, waits
  // for it and calls `reduced(begin, end)` (the optimizer over those elements), so that each
  // bucket's update overlaps the all-reduces still in flight. The time spent waiting counts as
  // exposed; the step's accounts are closed.
  void finish(const std::function<void(int64_t begin, int64_t end)>& reduced);
  size_t bucket_count() const { return buckets_.size(); }
  // Of the last step: the summed busy time of its all-reduces, and the part of it the step
  // waited for (communication not hidden behind compute).
  double last_comm_s() const { return last_comm_s_; }
  double last_exposed_s() const { return last_exposed_s_; }

 private:
  Communicator& comm_;
  Tensor grads_;
  std::vector<GradientBucket> buckets_;  // from the end of the buffer
  std::vector<CommHandle> in_flight_;    // per launched bucket
  size_t launched_ = 0;
  double last_comm_s_ = 0, last_exposed_s_ = 0;
};

}  // namespace capbench
