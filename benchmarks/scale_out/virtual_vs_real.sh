#!/usr/bin/env bash
# Tensor-parallel decode and train steps on 2 real ranks (c10d Gloo, 2 processes, one thread
# each) against 1 virtual rank of 2 (one thread) whose link model is the host link the real run
# measured: calibrated at its start, and (a second twin) the latency its own all-reduces had;
# then that second twin again as two processes at once, so that, like the two real ranks, each
# shares the host's cores' memory bandwidth and caches with another rank's compute (a virtual
# rank alone has them to itself, which a rank on its own chip would too). Three rounds, each real
# run followed by its twins. Reports go to OUT_DIR (default build/scale-out-bench). About 9
# minutes on two cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
capbench="${CAPBENCH:-$root/build/capbench}"
out="${1:-$root/build/scale-out-bench}"
mkdir -p "$out"
pairs=() in_run_pairs=() paired_pairs=()
for i in 1 2 3; do
  "$capbench" launch -n 2 -- run "$root/configs/suites/tensor-parallel.json" --out "$out/real-$i.json"
  for link in calibrated in-run; do
    python3 "$here/virtual_vs_real.py" suite "$out/real-$i.json" \
      "$root/configs/suites/tensor-parallel.json" "$out/virtual-suite-$link-$i.json" "$link"
    "$capbench" run "$out/virtual-suite-$link-$i.json" --out "$out/virtual-$link-$i.json"
  done
  "$capbench" run "$out/virtual-suite-in-run-$i.json" --out "$out/virtual-paired-a-$i.json" &
  "$capbench" run "$out/virtual-suite-in-run-$i.json" --out "$out/virtual-paired-b-$i.json"
  wait
  pairs+=("$out/real-$i.json" "$out/virtual-calibrated-$i.json")
  in_run_pairs+=("$out/real-$i.json" "$out/virtual-in-run-$i.json")
  paired_pairs+=("$out/real-$i.json" "$out/virtual-paired-a-$i.json"
                 "$out/real-$i.json" "$out/virtual-paired-b-$i.json")
done
echo "== link calibrated at the start of the real run"
python3 "$here/virtual_vs_real.py" compare "${pairs[@]}" || true
echo "== latency the real run's own all-reduces had"
python3 "$here/virtual_vs_real.py" compare "${in_run_pairs[@]}" || true
echo "== the same, two virtual ranks computing at once as the two real ones do"
python3 "$here/virtual_vs_real.py" compare "${paired_pairs[@]}"
