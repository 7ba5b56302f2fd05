#!/usr/bin/env bash
# Tensor-parallel decode and train steps on 2 real ranks (c10d Gloo, 2 processes, one thread
# each) against 1 virtual rank of 2 (one thread) whose link model is the host link the real run
# measured; three rounds, each real run followed by its virtual twin. Reports go to OUT_DIR
# (default build/scale-out-bench). About 5 minutes on two cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
capbench="${CAPBENCH:-$root/build/capbench}"
out="${1:-$root/build/scale-out-bench}"
mkdir -p "$out"
pairs=()
for i in 1 2 3; do
  "$capbench" launch -n 2 -- run "$root/configs/suites/tensor-parallel.json" --out "$out/real-$i.json"
  python3 "$here/virtual_vs_real.py" suite "$out/real-$i.json" "$root/configs/suites/tensor-parallel.json" \
    "$out/virtual-suite-$i.json"
  "$capbench" run "$out/virtual-suite-$i.json" --out "$out/virtual-$i.json"
  pairs+=("$out/real-$i.json" "$out/virtual-$i.json")
done
python3 "$here/virtual_vs_real.py" compare "${pairs[@]}"
