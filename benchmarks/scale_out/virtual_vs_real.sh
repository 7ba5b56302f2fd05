#!/usr/bin/env bash
# Tensor-parallel decode and train steps on 2 real ranks (c10d Gloo, 2 processes, one thread
# each) against 1 virtual rank of 2 (one thread) whose link model is the host link the real run
# measured: calibrated at its start, and (a second twin) the latency its own all-reduces had;
# three rounds, each real run followed by its two virtual twins. Reports go to OUT_DIR (default
# build/scale-out-bench). About 7 minutes on two cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
capbench="${CAPBENCH:-$root/build/capbench}"
out="${1:-$root/build/scale-out-bench}"
mkdir -p "$out"
pairs=() in_run_pairs=()
for i in 1 2 3; do
  "$capbench" launch -n 2 -- run "$root/configs/suites/tensor-parallel.json" --out "$out/real-$i.json"
  for link in calibrated in-run; do
    python3 "$here/virtual_vs_real.py" suite "$out/real-$i.json" \
      "$root/configs/suites/tensor-parallel.json" "$out/virtual-suite-$link-$i.json" "$link"
    "$capbench" run "$out/virtual-suite-$link-$i.json" --out "$out/virtual-$link-$i.json"
  done
  pairs+=("$out/real-$i.json" "$out/virtual-calibrated-$i.json")
  in_run_pairs+=("$out/real-$i.json" "$out/virtual-in-run-$i.json")
done
echo "== link calibrated at the start of the real run"
python3 "$here/virtual_vs_real.py" compare "${pairs[@]}" || true
echo "== latency the real run's own all-reduces had"
python3 "$here/virtual_vs_real.py" compare "${in_run_pairs[@]}"
