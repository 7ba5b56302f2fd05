// A device's rates: compute (FLOP/s) and memory (bytes/s). What the throttle paces to, what the
// roofline predicts with, and what utilisations divide by; 0 means unknown.
#pragma once

namespace capbench {

struct Rates {
  double flops = 0;
  double bytes_per_s = 0;
};

}  // namespace capbench
