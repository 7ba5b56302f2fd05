// onednn's decode attention with its two ways of sharing one token's work among the threads:
// heads (each thread a run of the query heads, so half of every position's slice of the cache)
// against positions (each thread a contiguous span of positions, all heads, partial softmaxes
// combined). Before a call "from memory" a 64 MiB buffer is read, so the cache comes from memory
// as in a decode step, whose weights have streamed through the caches since the last call; a
// "warm" call follows the last one directly. The two splits alternate call by call in one
// process; it prints each one's median time per call and the ratio positions / heads.
//   build/benchmarks/decode_attention [fp32|bf16] [heads] [kv heads] [head dim] [positions] [calls]
//   (default: bf16 16 8 64 145 400: llama-350m's shape, a 128-token prompt's 17th new token)
#include <fmt/format.h>
#include <cstdlib>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/bf16.h"
#include "backends/onednn/onednn_attention.h"
#include "harness/statistics.h"

using namespace capbench;

namespace {

template <class T>
void compare(int64_t heads, int64_t kv_heads, int64_t d, int64_t positions, int calls) {
  const int64_t capacity = positions + 32;
  std::vector<T> k(static_cast<size_t>(capacity * kv_heads * d)), v(k.size()),
      q(static_cast<size_t>(heads * d)), out(q.size());
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (std::vector<T>* x : {&k, &v, &q})
    for (T& e : *x) {
      if constexpr (std::is_same_v<T, BF16>)
        e = float_to_bf16(normal(rng));
      else
        e = normal(rng);
    }
  const DType dtype = std::is_same_v<T, BF16> ? DType::bf16 : DType::f32;
  const Tensor tk(k.data(), dtype, {1, capacity, kv_heads, d});
  const Tensor tv(v.data(), dtype, {1, capacity, kv_heads, d});
  const Tensor tq(q.data(), dtype, {1, 1, heads, d}), to(out.data(), dtype, {1, 1, heads, d});
  std::vector<uint64_t> evict(size_t{8} << 20, 1);  // 64 MiB
  uint64_t sink = 0;
  for (const bool from_memory : {false, true}) {
    std::vector<double> by_split[2];  // [0]: heads, [1]: positions
    for (int call = 0; call < 2 * calls; ++call) {
      if (from_memory)
        for (size_t i = 0; i < evict.size(); i += 8) sink += evict[i];
      const int split = call % 2;
      const double t0 = host_seconds_now();
      onednn::attention_decode<T>(
          to, tq, tk, tv, positions - 1,
          split ? onednn::DecodeSplit::positions : onednn::DecodeSplit::heads);
      by_split[split].push_back(host_seconds_now() - t0);
    }
    const double heads_s = median(by_split[0]), positions_s = median(by_split[1]);
    fmt::print("{}: heads {:.1f} us, positions {:.1f} us per call: positions / heads {:.3f}\n",
               from_memory ? "from memory" : "warm", heads_s * 1e6, positions_s * 1e6,
               positions_s / heads_s);
  }
  if (sink == 0) fmt::print("(nothing read)\n");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dtype = argc > 1 ? argv[1] : "bf16";
  const int64_t heads = argc > 2 ? std::atoll(argv[2]) : 16;
  const int64_t kv_heads = argc > 3 ? std::atoll(argv[3]) : 8;
  const int64_t d = argc > 4 ? std::atoll(argv[4]) : 64;
  const int64_t positions = argc > 5 ? std::atoll(argv[5]) : 145;
  const int calls = argc > 6 ? std::atoi(argv[6]) : 400;
  if ((dtype != "bf16" && dtype != "fp32") || heads < 1 || kv_heads < 1 || heads % kv_heads ||
      d < 1 || positions < 1 || calls < 1) {
    fmt::print(stderr,
               "usage: decode_attention [fp32|bf16] [heads] [kv heads] [head dim] [positions] "
               "[calls]\n");
    return 2;
  }
  fmt::print("{} heads, {} kv heads, head dim {}, {} positions, {}, {} calls each\n", heads,
             kv_heads, d, positions, dtype, calls);
  if (dtype == "bf16")
    compare<BF16>(heads, kv_heads, d, positions, calls);
  else
    compare<float>(heads, kv_heads, d, positions, calls);
  return 0;
}
