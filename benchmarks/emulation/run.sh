#!/usr/bin/env bash
# Emulation v2 measured on this machine: the fidelity checks three times per CPU backend, the
# time-scaled targets and the layer slices (three times), then check.py's verdicts. Reports go to OUT_DIR
# (default build/emulation-bench). Takes about 30 minutes on two cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
capbench="${CAPBENCH:-$root/build/capbench}"
out="${1:-$root/build/emulation-bench}"
mkdir -p "$out"
status=0
for backend in ${BACKENDS:-onednn torch}; do
  for i in 1 2 3; do
    "$capbench" fidelity --backend "$backend" --reps 7 --out "$out/fidelity-$backend-$i.json" ||
      status=1
  done
done
"$capbench" run "$here/targets.json" --out "$out/targets.json" || status=1
for i in 1 2 3; do
  "$capbench" run "$here/slices.json" --out "$out/slices-$i.json" || status=1
done
python3 "$here/check.py" "$out/targets.json" "$out"/slices-{1,2,3}.json || status=1
exit $status
