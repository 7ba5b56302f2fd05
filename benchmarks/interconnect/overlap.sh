#!/bin/bash
# Overlap of the data-parallel step's all-reduces with its compute: the small model's train step
# on 2 local ranks (dp_small.json), three times; per run the step, the all-reduces' busy time
# (comm), the part the step waited for (exposed), compute / comm and exposed / comm (goal: under
# 0.2 where compute is at least twice comm). Usage: overlap.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in 1 2 3; do
  "$build/capbench" launch -n 2 -- run "$here/dp_small.json" --reps 7 --no-calibrate \
    --out "$out/run$i.json" >/dev/null 2>&1
done
python3 - "$out" <<'PY'
import glob, json, sys
print(f"{'run':<4} {'step ms':>8} {'comm ms':>8} {'exposed ms':>10} {'compute/comm':>12} {'exposed/comm':>12}")
for f in sorted(glob.glob(sys.argv[1] + "/run*.json")):
    r = json.load(open(f))["runs"][0]
    m = r["metrics"]
    step, comm, exposed = m["step_ms"], m["comm_ms"], m["exposed_comm_ms"]
    print(f"{f[-6]:<4} {step:>8.1f} {comm:>8.1f} {exposed:>10.1f} {(step - exposed) / comm:>12.2f} "
          f"{exposed / comm:>12.3f}")
PY
