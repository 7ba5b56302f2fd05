#!/usr/bin/env bash
# One prepared check of capbench on a machine with an NVIDIA GPU, a CUDA toolkit and a PyTorch
# install, and no Debian packages: unpack the build dependencies' .deb files (fetched elsewhere
# with scripts/fetch-gpu-debs.sh), configure against the PyTorch's libtorch, build, run the GPU
# tests, configs/suites/gpu.json, benchmarks/pytorch_reference.py on the same suite, compare the
# two by backend, the CUDA pacing benchmark and `capbench fidelity` on torch:cuda.
#
#   scripts/gpu-check.sh [--out DIR] [--build DIR] [--debs DIR] [--budget SECONDS] [--prebuilt]
#
# --prebuilt uses the build already in --build instead of configuring and building one (a second
# try on the same machine, or a check of this script where there is no GPU).
# Each step has its own time limit and log, and the check goes on past a failed step; a step that
# needs a GPU where none is visible is reported as skipped, with the reason. What comes out, in
# --out (default: $OUT, else gpu-check-out/), is at most seven files: summary.md (every step's
# outcome and time, and the tables that matter), gpu.json (capbench's report), tp.json (virtual
# tensor parallelism's), ref.json (the PyTorch reference's), compare.txt, fidelity.json, and
# logs.tar.gz (every step's log). Exit 0 when no step failed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/gpu-check-out}
build=$root/build-gpu
debs=$root/.gpu-debs
budget=480
prebuilt=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --debs) debs=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --prebuilt) prebuilt=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (--help lists them)" >&2; exit 2 ;;
  esac
done
case $budget in ''|*[!0-9]*) echo "gpu-check: --budget must be whole seconds, got $budget" >&2; exit 2 ;; esac
mkdir -p "$out" || { echo "gpu-check: cannot create $out" >&2; exit 2; }
out=$(cd "$out" && pwd)
logs=$(mktemp -d /tmp/capbench-gpu-check.XXXXXX)
trap 'rm -rf "$logs"' EXIT
summary=$out/summary.md
start=$(date +%s)
failed=0

{
  echo "# capbench GPU check"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), revision $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown), budget ${budget} s"
  echo
  echo "| step | outcome | seconds |"
  echo "|---|---|---|"
} > "$summary"

record() {  # step, outcome, seconds
  echo "| $1 | $2 | $3 |" >> "$summary"
  echo "gpu-check: $1: $2 ($3 s)"
}

# step NAME LIMIT COMMAND...: runs COMMAND with its output in NAME.log, for at most LIMIT seconds
# and never past the budget.
step() {
  local name=$1 limit=$2; shift 2
  local left=$(( budget - ($(date +%s) - start) ))
  if [ "$left" -le 5 ]; then
    record "$name" "skipped: the time budget (${budget} s) is spent" 0
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0; t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$logs/$name.log" 2>&1
  local rc=$?
  local took=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then
    record "$name" ok "$took"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    record "$name" "TIMED OUT after ${limit} s (log: logs/$name.log)" "$took"
    failed=1
  else
    record "$name" "FAILED, exit $rc: $(tail -n 1 "$logs/$name.log" | cut -c1-160 | tr '|' '/')" "$took"
    failed=1
  fi
  return $rc
}

skip() {  # step, reason
  record "$1" "skipped: $2" 0
}

# ---- where things are ----------------------------------------------------------------------

python=""
for candidate in python3 /usr/bin/python3 python; do
  if command -v "$candidate" > /dev/null && "$candidate" -c "import torch" 2> /dev/null; then
    python=$candidate
    break
  fi
done
torch_prefix=""
gpu_reason=""
if [ -z "$python" ]; then
  gpu_reason="no Python with PyTorch here"
else
  torch_prefix=$("$python" -c "import torch; print(torch.utils.cmake_prefix_path)" 2> /dev/null)
  gpu_reason=$("$python" - <<'PY' 2>&1
import torch
if not torch.cuda.is_available():
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
    print(f"no CUDA device visible to PyTorch {torch.__version__} ({build})")
PY
)
fi

# The machine, for the record: each command bounded, none of them needed.
{
  for command in "nvidia-smi" "nvcc --version" "/usr/local/cuda/bin/nvcc --version" \
                 "cmake --version" "ninja --version" "${CXX:-c++} --version" "nproc"; do
    echo "== $command"
    timeout 20 $command 2>&1 | head -n 20 || echo "($command: not available)"
  done
  echo "== python"
  if [ -n "$python" ]; then
    timeout 60 "$python" -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, 'device available', torch.cuda.is_available())"
  else
    echo "no Python with PyTorch"
  fi
} > "$logs/environment.log" 2>&1
record environment "${gpu_reason:-a CUDA device is visible}" 0

# ---- build ---------------------------------------------------------------------------------

build=$(cd "$(dirname "$build")" && pwd)/$(basename "$build")
deps=$build/deps
prefix_path=$torch_prefix
dep_flags=()
if [ $prebuilt = 1 ]; then
  skip dependencies "--prebuilt: the build in $build is used as it is"
elif compgen -G "$debs/*.deb" > /dev/null; then
  if step dependencies 120 "${python:-python3}" "$root/scripts/deb_extract.py" "$deps" "$debs"/*.deb; then
    arch_lib=$deps/usr/lib/x86_64-linux-gnu
    prefix_path="$prefix_path;$deps/usr"
    # Debian keeps CMake packages under lib/<triplet> and share/: named directly, so that hosts
    # whose CMake searches neither still find them.
    dep_flags=(-Dnlohmann_json_DIR="$deps/usr/share/cmake/nlohmann_json"
               -DCLI11_DIR="$deps/usr/share/cmake/CLI11"
               -Dfmt_DIR="$arch_lib/cmake/fmt"
               -DGTest_DIR="$arch_lib/cmake/GTest"
               -DSQLite3_INCLUDE_DIR="$deps/usr/include"
               -DSQLite3_LIBRARY="$arch_lib/libsqlite3.so")
    export LD_LIBRARY_PATH="$arch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
else
  skip dependencies "no .deb files in $debs: the system's packages are used"
fi

configured=0
if [ $prebuilt = 1 ]; then
  if [ -x "$build/capbench" ]; then
    skip configure "--prebuilt"
  else
    record configure "FAILED: --prebuilt, but $build/capbench does not exist" 0
    failed=1
  fi
elif [ -z "$torch_prefix" ]; then
  skip configure "no PyTorch to build against ($gpu_reason)"
elif export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} &&
     step configure 180 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
       -DCMAKE_PREFIX_PATH="$prefix_path" "${dep_flags[@]}"; then
  configured=1
fi
grep "capbench:" "$logs/configure.log" 2> /dev/null | sed 's/^-- /    /' >> "$logs/configure-summary.txt"

built=0
if [ $prebuilt = 1 ]; then
  [ -x "$build/capbench" ] && built=1 && skip build "--prebuilt"
elif [ $configured = 1 ]; then
  targets=(capbench capbench_tests)
  grep -q "cuda_pacing_fidelity" "$build/build.ninja" && targets+=(cuda_pacing_fidelity)
  step build 360 cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" && built=1
else
  skip build "not configured"
fi

# ---- on the GPU ----------------------------------------------------------------------------

capbench=$build/capbench
if [ $built = 1 ] && ! "$capbench" list 2> /dev/null | grep -q "^  torch:cuda  *cuda  *libtorch"; then
  why=$("$capbench" list 2> /dev/null | grep "torch:cuda" | sed 's/.*not available here: //')
  [ -n "$gpu_reason" ] || gpu_reason="torch:cuda is not available: ${why:-not in this build}"
fi
gpu_ok() {  # step name: true when the step can run on a GPU; else records why not
  if [ $built != 1 ]; then skip "$1" "not built"; return 1; fi
  if [ -n "$gpu_reason" ]; then skip "$1" "$gpu_reason"; return 1; fi
  return 0
}

if gpu_ok gpu-tests; then
  step gpu-tests 150 ctest --test-dir "$build" --output-on-failure -j 4 -R "torch_cuda|Graphs"
fi
if gpu_ok gpu-suite; then
  step gpu-suite 170 "$capbench" run "$root/configs/suites/gpu.json" --out "$out/gpu.json"
fi
if gpu_ok virtual-tp; then
  # Virtual tensor parallelism: each decode step with its all-reduces paced on the GPU's stream,
  # captured and replayed as one CUDA graph (device.graphs.used in tp.json).
  step virtual-tp 120 "$capbench" run "$root/configs/suites/tp-serving.json" --backend cuda \
    --emulate h20 --reps 3 --out "$out/tp.json"
fi
if gpu_ok pytorch-reference; then
  step pytorch-reference 150 "$python" "$root/benchmarks/pytorch_reference.py" \
    --suite "$root/configs/suites/gpu.json" --device cuda --modes eager,graph,compile \
    --out "$out/ref.json"
fi
if [ -s "$out/gpu.json" ] && [ -s "$out/ref.json" ]; then
  step compare 30 "$capbench" compare "$out/gpu.json" "$out/ref.json" --by backend \
    --base pytorch:eager --threshold 0.5
  cp "$logs/compare.log" "$out/compare.txt"
else
  skip compare "needs both reports (gpu.json, ref.json)"
fi
if gpu_ok cuda-pacing-fidelity; then
  if [ -x "$build/benchmarks/cuda_pacing_fidelity" ]; then
    step cuda-pacing-fidelity 60 "$build/benchmarks/cuda_pacing_fidelity"
  else
    skip cuda-pacing-fidelity "not built (no CUDA compiler at configure time)"
  fi
fi
if gpu_ok fidelity; then
  step fidelity 150 "$capbench" fidelity --backend torch:cuda --reps 7 --out "$out/fidelity.json"
fi

# ---- what came out -------------------------------------------------------------------------

{
  echo
  echo "total $(( $(date +%s) - start )) s"
  if [ -s "$logs/configure-summary.txt" ]; then
    echo; echo "## configure"; echo; cat "$logs/configure-summary.txt"
  fi
  for name in compare cuda-pacing-fidelity fidelity; do
    [ -s "$logs/$name.log" ] || continue
    echo; echo "## $name"; echo; echo '```'; tail -n 40 "$logs/$name.log"; echo '```'
  done
  if [ -s "$out/tp.json" ] && [ -n "$python" ]; then
    echo; echo "## virtual tensor parallelism (tp.json)"; echo
    "$python" - "$out/tp.json" << 'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    k, g = r["key"], r.get("device", {}).get("graphs", {})
    ar = r.get("parallel", {}).get("tp_collectives", {}).get("all_reduce", {})
    step = r.get("stats", {}).get("decode_step_s", {}).get("median")
    print(f"- {k['model']} tp {k.get('tp')} b{k['batch']}: {r['status']} {r.get('reason', '')}; "
          f"graphs {g.get('used')} ({g.get('reason')}); all-reduces {ar.get('calls')}; "
          f"decode step {step * 1e3 if step else float('nan'):.3f} ms")
PY
  fi
  if [ -s "$logs/gpu-suite.log" ]; then
    echo; echo "## gpu suite"; echo; echo '```'; grep -v "^\[" "$logs/gpu-suite.log" | tail -n 30; echo '```'
  fi
} >> "$summary"
tar -czf "$out/logs.tar.gz" -C "$logs" . 2> /dev/null
echo "gpu-check: summary in $summary"
exit $failed
