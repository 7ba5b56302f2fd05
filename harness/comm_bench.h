// `capbench comm-bench`: an nccl-tests-style sweep of the collectives over the job's ranks (sizes
// doubling, fp32 and bf16), each result checked against the values every rank can compute (a
// `wrong` count), with algbw = S / t and busbw = algbw × the bus factor (backends/comm/
// link_model.h); and the host link measurement that emulation scales (an all-reduce's busbw).
#pragma once

#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/bf16.h"
#include "backends/comm/communicator.h"

namespace capbench {

// `count` elements of fp32 or bf16 in host memory, read and written as floats: what the
// collectives of a host-memory communicator are checked with.
class HostBuffer {
 public:
  HostBuffer(DType dtype, int64_t count) : dtype_(dtype) {
    if (dtype == DType::bf16)
      halves_.resize(static_cast<size_t>(count));
    else
      floats_.resize(static_cast<size_t>(count));
  }
  int64_t size() const {
    return static_cast<int64_t>(dtype_ == DType::bf16 ? halves_.size() : floats_.size());
  }
  Tensor tensor() {
    return Tensor(dtype_ == DType::bf16 ? static_cast<void*>(halves_.data()) : floats_.data(),
                  dtype_, {size()});
  }
  void set(int64_t i, float v) {
    if (dtype_ == DType::bf16)
      halves_[static_cast<size_t>(i)] = float_to_bf16(v);
    else
      floats_[static_cast<size_t>(i)] = v;
  }
  float get(int64_t i) const {
    return dtype_ == DType::bf16 ? bf16_to_float(halves_[static_cast<size_t>(i)])
                                 : floats_[static_cast<size_t>(i)];
  }

 private:
  DType dtype_;
  std::vector<BF16> halves_;
  std::vector<float> floats_;
};

struct CommBenchOptions {
  int64_t min_bytes = int64_t{1} << 10;
  int64_t max_bytes = int64_t{256} << 20;
  std::vector<DType> dtypes{DType::f32, DType::bf16};
  std::vector<Collective> collectives{Collective::all_reduce, Collective::all_gather,
                                      Collective::reduce_scatter, Collective::broadcast};
  int64_t warmup = 1;
  int64_t min_iters = 3, max_iters = 20;
  double max_seconds_per_size = 1.0;  // repetitions stop after this (at least min_iters)
  bool check_results = true;          // false for virtual ranks, whose collectives move no data
};

struct CommBenchRow {
  Collective collective = Collective::all_reduce;
  DType dtype = DType::f32;
  int64_t bytes = 0;  // S: the whole array (all-gather's output, reduce-scatter's input)
  int64_t count = 0;  // elements of S
  int64_t iters = 0;
  double seconds = 0;  // median over the iterations of the slowest rank's time
  double algbw = 0, busbw = 0;
  int64_t wrong = 0;    // elements that differ from the expected result, summed over the ranks
  bool checked = true;  // false: nothing moved (virtual ranks), so `wrong` means nothing
};

std::vector<CommBenchRow> run_comm_bench(Communicator& comm, const CommBenchOptions& options,
                                         const std::function<void(const std::string&)>& progress);
nlohmann::json to_json(const std::vector<CommBenchRow>& rows, const Communicator& comm);
// The nccl-tests-style table of a report's comm_bench block.
void print_comm_bench(std::FILE* out, const nlohmann::json& block);

// The host's link between the job's ranks as the link model sees it: bandwidth from a 16 MiB
// fp32 all-reduce's busbw (median of 5, after one warm-up), latency per ring step from the mean
// of 16 KiB ones, each after a spell of work. Measured at the start of every run over several
// ranks, not cached: the link depends on how the job was placed, not on the machine alone.
struct HostLink {
  double bytes_per_s = 0;
  double latency_s = 0;
  std::string source;
};
HostLink measure_host_link(Communicator& comm);

}  // namespace capbench
