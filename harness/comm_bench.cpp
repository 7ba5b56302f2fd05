#include "harness/comm_bench.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

#include "backends/bf16.h"
#include "backends/comm/link_model.h"
#include "harness/statistics.h"

namespace capbench {
namespace {

// Element i of rank r's input: small integers, exact in bf16 and in any sum of a few ranks.
float input_value(int rank, int64_t i) {
  return static_cast<float>((rank + 1) * (i % 5 + 1));
}

struct Case {
  Collective kind;
  HostBuffer in, out;  // in place (all-reduce, broadcast): `in` alone
  int64_t share;       // one rank's elements
};

void fill_input(Case& c, int rank) {
  for (int64_t i = 0; i < c.in.size(); ++i) c.in.set(i, input_value(rank, i));
}

CommHandle launch(Communicator& comm, Case& c) {
  switch (c.kind) {
    case Collective::all_reduce:
      return comm.all_reduce(c.in.tensor(), ReduceOp::sum);
    case Collective::all_gather:
      return comm.all_gather(c.out.tensor(), c.in.tensor());
    case Collective::reduce_scatter:
      return comm.reduce_scatter(c.out.tensor(), c.in.tensor(), ReduceOp::sum);
    case Collective::broadcast:
      return comm.broadcast(c.in.tensor(), 0);
    case Collective::barrier:
      return comm.barrier();
  }
  return comm.barrier();
}

// Elements of this rank's result that differ from what the collective must give.
int64_t count_wrong(const Case& c, int rank, int world) {
  const double ranks_sum = world * (world + 1) / 2.0;
  int64_t wrong = 0;
  const auto check = [&](float got, double want) {
    if (!(std::fabs(got - want) <= 1e-6 * std::fabs(want))) ++wrong;
  };
  switch (c.kind) {
    case Collective::all_reduce:
      for (int64_t i = 0; i < c.share; ++i) check(c.in.get(i), ranks_sum * (i % 5 + 1));
      break;
    case Collective::all_gather:
      for (int r = 0; r < world; ++r)
        for (int64_t i = 0; i < c.share; ++i) check(c.out.get(r * c.share + i), input_value(r, i));
      break;
    case Collective::reduce_scatter:
      for (int64_t i = 0; i < c.share; ++i)
        check(c.out.get(i), ranks_sum * ((rank * c.share + i) % 5 + 1));
      break;
    case Collective::broadcast:
      for (int64_t i = 0; i < c.share; ++i) check(c.in.get(i), input_value(0, i));
      break;
    case Collective::barrier:
      break;
  }
  return wrong;
}

// Seconds of one collective: the slowest rank's. The ranks meet first, so that one rank's
// filling or checking of its buffers is not counted as another's collective time.
double timed_collective(Communicator& comm, Case& c) {
  comm.barrier()->wait();
  const double t0 = host_seconds_now();
  launch(comm, c)->wait();
  std::vector<double> t{host_seconds_now() - t0};
  comm.agree(t, ReduceOp::max);
  return t[0];
}

}  // namespace

std::vector<CommBenchRow> run_comm_bench(Communicator& comm, const CommBenchOptions& o,
                                         const std::function<void(const std::string&)>& progress) {
  const int world = comm.world(), rank = comm.rank();
  std::vector<CommBenchRow> rows;
  for (const Collective kind : o.collectives)
    for (const DType dtype : o.dtypes)
      for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= 2) {
        // S rounded down to whole elements that split evenly over the ranks.
        const int64_t unit = static_cast<int64_t>(dtype_size(dtype)) * world;
        const int64_t count = std::max<int64_t>(1, bytes / unit) * world;
        const bool whole_in = kind == Collective::reduce_scatter;
        const bool whole_out = kind == Collective::all_gather;
        const int64_t share =
            kind == Collective::all_reduce || kind == Collective::broadcast ? count : count / world;
        Case c{kind, HostBuffer(dtype, whole_in ? count : share),
               HostBuffer(dtype, whole_out ? count : (whole_in ? share : 0)), share};
        progress(fmt::format("{} {} {} B", collective_name(kind), dtype_name(dtype),
                             count * static_cast<int64_t>(dtype_size(dtype))));
        for (int64_t i = 0; i < o.warmup; ++i) {
          fill_input(c, rank);
          timed_collective(comm, c);
        }
        std::vector<double> times;
        int64_t wrong = 0;
        double spent = 0;
        for (;;) {
          fill_input(c, rank);
          const double t = timed_collective(comm, c);
          times.push_back(t);
          spent += t;
          if (o.check_results) wrong += count_wrong(c, rank, world);
          // Every rank sees the same (agreed) times, so every rank stops at the same iteration.
          if (static_cast<int64_t>(times.size()) >= o.max_iters) break;
          if (static_cast<int64_t>(times.size()) >= o.min_iters && spent >= o.max_seconds_per_size)
            break;
        }
        std::vector<double> total_wrong{static_cast<double>(wrong)};
        comm.agree(total_wrong, ReduceOp::sum);
        CommBenchRow row;
        row.collective = kind;
        row.dtype = dtype;
        row.count = count;
        row.bytes = count * static_cast<int64_t>(dtype_size(dtype));
        row.iters = static_cast<int64_t>(times.size());
        row.seconds = median(times);
        row.algbw = row.seconds > 0 ? static_cast<double>(row.bytes) / row.seconds : 0;
        row.busbw = row.algbw * bus_factor(kind, world);
        row.wrong = static_cast<int64_t>(total_wrong[0]);
        row.checked = o.check_results;
        rows.push_back(row);
      }
  return rows;
}

nlohmann::json to_json(const std::vector<CommBenchRow>& rows, const Communicator& comm) {
  nlohmann::json results = nlohmann::json::array();
  for (const CommBenchRow& r : rows)
    results.push_back({{"collective", collective_name(r.collective)},
                       {"dtype", dtype_name(r.dtype)},
                       {"bytes", r.bytes},
                       {"count", r.count},
                       {"iters", r.iters},
                       {"seconds", r.seconds},
                       {"algbw_bytes_per_s", r.algbw},
                       {"busbw_bytes_per_s", r.busbw},
                       {"wrong", r.checked ? nlohmann::json(r.wrong) : nlohmann::json(nullptr)}});
  return {{"world", comm.world()}, {"engine", comm.engine()}, {"results", results}};
}

void print_comm_bench(std::FILE* out, const nlohmann::json& block) {
  if (!block.is_object()) return;
  fmt::print(out, "comm-bench: {} ranks ({})\n", block.value("world", 0),
             block.value("engine", std::string("?")));
  fmt::print(out, "{:<15} {:<5} {:>12} {:>11} {:>6} {:>11} {:>12} {:>12} {:>6}\n", "collective",
             "dtype", "size (B)", "count", "iters", "time (us)", "algbw (GB/s)", "busbw (GB/s)",
             "wrong");
  int64_t wrong = 0;
  bool unchecked = false;
  for (const nlohmann::json& r : block.value("results", nlohmann::json::array())) {
    // null: not checked (virtual ranks); a result without the field counts as none wrong.
    const nlohmann::json row_wrong = r.value("wrong", nlohmann::json(0));
    unchecked = unchecked || row_wrong.is_null();
    if (!row_wrong.is_null()) wrong += row_wrong.get<int64_t>();
    fmt::print(out, "{:<15} {:<5} {:>12} {:>11} {:>6} {:>11.1f} {:>12.3f} {:>12.3f} {:>6}\n",
               r.value("collective", ""), r.value("dtype", ""), r.value("bytes", int64_t{0}),
               r.value("count", int64_t{0}), r.value("iters", int64_t{0}),
               r.value("seconds", 0.0) * 1e6, r.value("algbw_bytes_per_s", 0.0) / 1e9,
               r.value("busbw_bytes_per_s", 0.0) / 1e9,
               row_wrong.is_null() ? std::string("-") : row_wrong.dump());
  }
  if (unchecked)
    fmt::print(out, "wrong results: not checked (virtual ranks move no data)\n");
  else
    fmt::print(out, "wrong results: {}\n", wrong);
}

HostLink measure_host_link(Communicator& comm) {
  CommBenchOptions o;
  o.min_bytes = o.max_bytes = int64_t{16} << 20;
  o.dtypes = {DType::f32};
  o.collectives = {Collective::all_reduce};
  o.warmup = 1;
  o.min_iters = o.max_iters = 5;
  const CommBenchRow row = run_comm_bench(comm, o, [](const std::string&) {}).at(0);
  // Latency: small all-reduces as a layer's come, each after a spell of the rank's own work
  // (0.3 ms, about what a small model's decode computes between two), and the mean of their
  // times: on a busy host they have a long tail (measured with Gloo on 2 cores, 2 KiB: median
  // 0.45 ms with a barrier before each, mean 1.85 ms back to back), and a step pays the sum.
  const int64_t count = 4096;  // 16 KiB of fp32
  HostBuffer small(DType::f32, count);
  const Tensor t = small.tensor();
  comm.all_reduce(t, ReduceOp::sum)->wait();
  comm.barrier()->wait();
  const int calls = 40;
  double spent = 0;
  for (int i = 0; i < calls; ++i) {
    for (const double until = host_seconds_now() + 3e-4; host_seconds_now() < until;) {
    }
    const double t0 = host_seconds_now();
    comm.all_reduce(t, ReduceOp::sum)->wait();
    spent += host_seconds_now() - t0;
  }
  std::vector<double> mean{spent / calls};
  comm.agree(mean, ReduceOp::max);
  const double bus =
      static_cast<double>(count * 4) * bus_factor(Collective::all_reduce, comm.world());
  HostLink link;
  link.bytes_per_s = row.busbw;
  link.latency_s =
      std::max(0.0, mean[0] - bus / row.busbw) / ring_steps(Collective::all_reduce, comm.world());
  link.source = fmt::format(
      "all_reduce over {} ranks ({}): busbw of 16 MiB fp32 (median of 5); latency per ring step "
      "from the mean of {} 16 KiB ones, each after 0.3 ms of work; measured at the start of this "
      "run",
      comm.world(), comm.engine(), calls);
  return link;
}

}  // namespace capbench
