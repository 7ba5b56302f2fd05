#!/bin/bash
# benchmarks/pytorch_reference.py on the CPU, tiny model: both workloads run and print
# capbench's metrics, the report it writes is one capbench reads and compares with its own by
# backend, modes that cannot run here are skipped with a reason, and bad input exits 2.
# Exit 77 (ctest: skipped) when no Python here has PyTorch.
# Usage: pytorch_reference_smoke.sh SOURCE_DIR CAPBENCH_BINARY
set -u
src=$1 capbench=$2
python=""
for candidate in /usr/bin/python3 python3; do
  if "$candidate" -c "import torch" 2>/dev/null; then python=$candidate; break; fi
done
[ -z "$python" ] && { echo "skipped: no Python with PyTorch (Debian: python3-torch)"; exit 77; }
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
script=$src/benchmarks/pytorch_reference.py
fail() { echo "FAIL: $*"; exit 1; }

# Device and modes are named: on a GPU machine the default would be CUDA and every mode, and
# torch.compile needs Triton and a compiler that such a machine may lack.
"$python" "$script" --model tiny --workload train_step --batch 2 --seq 16 --reps 3 \
  --device cpu --modes eager --out "$work/train.json" > "$work/train.txt" ||
  fail "train run exited $?: $(cat "$work/train.txt")"
grep -q "pytorch:eager .* tok/s  step .* ms" "$work/train.txt" || fail "no eager train row: $(cat "$work/train.txt")"
"$python" "$script" --model tiny --workload inference --batch 2 --prompt 8 --decode-steps 4 \
  --dtype bf16 --reps 3 --modes eager,graph --device cpu --out "$work/infer.json" > "$work/infer.txt" ||
  fail "inference run exited $?: $(cat "$work/infer.txt")"
grep -q "pytorch:eager .*TPOT .* ms  TTFT .* ms" "$work/infer.txt" || fail "no eager decode row: $(cat "$work/infer.txt")"
grep -q "pytorch:graph .*skipped: CUDA graphs need a CUDA device" "$work/infer.txt" ||
  fail "graph mode on the CPU should be skipped with its reason: $(cat "$work/infer.txt")"

# capbench reads the reports, and compares its own runs with them by backend.
"$capbench" show "$work/infer.json" > /dev/null || fail "capbench cannot read the reference's report"
CAPBENCH_CACHE_DIR="$work/cache" "$capbench" run --model tiny --backend reference \
  --workload train_step --batch 2 --seq 16 --reps 3 --emulate none --no-calibrate \
  --out "$work/capbench.json" > /dev/null 2>&1 || fail "capbench run failed"
"$capbench" compare "$work/capbench.json" "$work/train.json" --by backend --base pytorch:eager \
  --format json --threshold 0.99 > "$work/compare.json" || fail "compare exited $?"
"$python" - "$work/compare.json" <<'PY' || fail "compare did not match the runs: $(cat "$work/compare.json")"
import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
assert all(r["base"] == "pytorch:eager" for r in rows), rows
assert any(r["new"] == "reference" and r["ratio"] > 0 and r["base_n"] == 3 for r in rows), rows
PY

"$python" "$script" --modes bogus > /dev/null 2> "$work/err.txt"
[ $? = 2 ] || fail "bad --modes should exit 2"
grep -q "expected eager, compile or graph" "$work/err.txt" || fail "bad --modes message: $(cat "$work/err.txt")"
echo "ok"
