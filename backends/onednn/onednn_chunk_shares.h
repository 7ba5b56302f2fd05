// Work shares with stealing from the back, for loops that stream memory: each thread owns a
// contiguous share cut into chunks and takes its own chunks front to back (one sequential stream,
// as a static split gives); a thread done with its share takes the chunks still left of another
// share from that share's back, so the owner's stream stays unbroken and the team ends together.
// A share's remaining chunks are a front and a back cursor packed in one atomic word, which only
// its owner touches until a thief comes: an owner's claim is an uncontended compare-and-swap.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace capbench::onednn {

class ChunkShares {
 public:
  explicit ChunkShares(int team) : shares_(static_cast<size_t>(team)) {}
  // Gives `share` chunks 0 … chunks − 1; before the team starts.
  void reset(int share, uint32_t chunks) { shares_[share].cursors.store(pack(0, chunks)); }
  // The next chunk of `share` from its front (owner) or its back (thief); false when none left.
  bool take_front(int share, uint32_t* chunk) { return take(share, chunk, true); }
  bool take_back(int share, uint32_t* chunk) { return take(share, chunk, false); }
  // What thread `own` of the team does: work(share, chunk) on each chunk of its own share front
  // to back, then on the chunks left of every other share, from their backs (also the shares of
  // threads the runtime did not start).
  template <class Work>
  void run(int own, Work&& work) {
    const int team = static_cast<int>(shares_.size());
    uint32_t chunk;
    while (take_front(own, &chunk)) work(own, chunk);
    for (int i = 1; i < team; ++i)
      while (take_back((own + i) % team, &chunk)) work((own + i) % team, chunk);
  }

 private:
  struct alignas(64) Share {
    std::atomic<uint64_t> cursors{0};  // front in the low half, back (one past) in the high
  };
  static uint64_t pack(uint32_t front, uint32_t back) { return uint64_t{back} << 32 | front; }
  bool take(int share, uint32_t* chunk, bool front_end) {
    std::atomic<uint64_t>& cursors = shares_[share].cursors;
    uint64_t seen = cursors.load(std::memory_order_relaxed);
    for (;;) {
      const uint32_t front = static_cast<uint32_t>(seen), back = static_cast<uint32_t>(seen >> 32);
      if (front >= back) return false;
      const uint64_t next = front_end ? pack(front + 1, back) : pack(front, back - 1);
      if (cursors.compare_exchange_weak(seen, next, std::memory_order_relaxed)) {
        *chunk = front_end ? front : back - 1;
        return true;
      }
    }
  }
  std::vector<Share> shares_;
};

}  // namespace capbench::onednn
