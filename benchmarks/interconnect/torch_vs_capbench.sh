#!/bin/bash
# comm-bench's all-reduce busbw against torch.distributed's (Gloo, Debian's python3-torch), two
# local ranks, the same sizes, alternating five times in one run; prints each size's ratio of
# medians (capbench / torch). Usage: torch_vs_capbench.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
"$python" -c 'import torch.distributed' 2>/dev/null || { echo "needs python3-torch"; exit 77; }
sizes=1048576,16777216,67108864
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in 1 2 3 4 5; do
  port=$(( 29700 + round ))
  for rank in 0 1; do
    RANK=$rank WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$python" "$here/torch_allreduce.py" --sizes $sizes --iters 30 >>"$out/torch.$rank" &
  done
  wait
  "$build/capbench" launch -n 2 -- comm-bench --op all_reduce --dtype fp32 --min-size 1M \
    --max-size 64M --iters 30 --out "$out/cb.$round.json" >/dev/null
done
"$python" - "$out" <<'PY'
import json, statistics, sys, glob
out = sys.argv[1]
torch = {}
for line in open(out + "/torch.0"):
    size, _, bus = line.split()
    torch.setdefault(int(size), []).append(float(bus))
ours = {}
for f in sorted(glob.glob(out + "/cb.*.json")):
    for r in json.load(open(f))["comm_bench"]["results"]:
        ours.setdefault(r["bytes"], []).append(r["busbw_bytes_per_s"])
print(f"{'size':>10} {'capbench GB/s':>14} {'torch GB/s':>11} {'ratio':>6}")
for size in sorted(torch):
    if size not in ours:
        continue
    a, b = statistics.median(ours[size]), statistics.median(torch[size])
    print(f"{size:>10} {a/1e9:>14.3f} {b/1e9:>11.3f} {a/b:>6.3f}")
PY
