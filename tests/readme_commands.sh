#!/usr/bin/env bash
# Runs every `build/capbench` command of README.md's shell blocks, in the order they appear, in a
# scratch folder that sees the repository's configs/ and the build as the README does.
#
#   tests/readme_commands.sh SOURCE_DIR BUILD_DIR [--as-written]
#
# By default `run` commands (also under `launch`) are held to one timed repetition without warm-up (--reps 1
# --warmup 0, where the command sets no --reps of its own) and emulate in real time
# (--time-scale 1: the target's rates as they are, met where the host can, instead of slow
# motion), the emulation suites (h20-vs-h100, ascend-vs-nvidia: whole 7B-model embeddings and
# heads) run their train-step entries alone (--workload train_step), the eight-chip suites
# (tp-serving, train-8: Llama-3-70B and Llama-2-7B shards) the small model at its sequence length, and `fidelity`, minutes of
# measurement, is skipped and says so, so that make test stays short; with
# --as-written every command runs exactly as the README shows it (make check-readme). A command
# passes when it exits 0; `compare`, whose exit code 1 reports a regression, may also exit 1.
set -u
src=$(readlink -f "$1"); build=$(readlink -f "$2"); mode=${3:-quick}
work=$(mktemp -d /tmp/capbench-readme.XXXXXX)
trap 'rm -rf "$work"' EXIT
ln -s "$build" "$work/build"
ln -s "$src/configs" "$work/configs"
ln -s "$src/reports" "$work/reports"

# The commands: lines of ```sh blocks that start with build/capbench (with their comments cut).
# A line ending in a backslash continues on the next.
mapfile -t commands < <(awk '
  /^```sh$/ { inside = 1; next }
  /^```/    { inside = 0; next }
  !inside   { next }
  pending != "" { line = pending " " $0; pending = "" } pending == "" && !line { line = $0 }
  line ~ /\\$/ { sub(/\\$/, "", line); pending = line; line = ""; next }
  line ~ /^build\/capbench / { sub(/[ \t]+#.*$/, "", line); print line }
  { line = "" }' "$src/README.md")
[ ${#commands[@]} -gt 0 ] || { echo "no build/capbench commands found in README.md"; exit 1; }

# Backends this build lacks (capbench list names them "not available here"): a command that asks
# for one cannot run here, and is reported as skipped.
missing=$("$build/capbench" list | awk '/not available here/ { print $1 }')

failed=0
for cmd in "${commands[@]}"; do
  lacking=""
  for b in $missing; do
    [[ " $cmd " == *" --backend $b "* ]] && lacking=$b
  done
  if [ -n "$lacking" ]; then
    echo "skipped ($lacking is not in this build): $cmd"
    continue
  fi
  run_cmd=$cmd
  if [ "$mode" != "--as-written" ] && [[ "$cmd" == *"capbench fidelity"* ]]; then
    echo "skipped (minutes of measurement; make check-readme runs it): $cmd"
    continue
  fi
  if [ "$mode" != "--as-written" ]; then
    # Each `build/capbench run` of the line (a line may chain several with &&) gets one short rep.
    run_cmd=$(printf '%s' "$cmd" | awk '{
      n = split($0, parts, "&&"); out = ""
      for (i = 1; i <= n; i++) {
        p = parts[i]
        run = p ~ /build\/capbench (launch .*-- )?run( |$)/
        if (run && p !~ /--help/ && p !~ /--reps/) p = p " --reps 1 --warmup 0"
        if (run && p !~ /--help/ && p !~ /--time-scale/) p = p " --time-scale 1"
        if (p ~ /build\/capbench run configs\/suites\/(h20-vs-h100|ascend-vs-nvidia)\.json/ && p !~ /--workload/) p = p " --workload train_step"
        if (p ~ /build\/capbench run configs\/suites\/tp-serving\.json/ && p !~ /--model/) p = p " --model small --prompt 32"
        if (p ~ /build\/capbench run configs\/suites\/train-8\.json/ && p !~ /--model/) p = p " --model small --seq 128"
        out = out (i > 1 ? "&&" : "") p
      }
      print out }')
  fi
  start=$(date +%s)
  output=$(cd "$work" && bash -c "$run_cmd" 2>&1); code=$?
  allowed=0
  [ $code -eq 0 ] && allowed=1
  [ $code -eq 1 ] && [[ "$cmd" == *"capbench compare"* ]] && allowed=1
  if [ $allowed -eq 1 ]; then
    echo "ok ($(( $(date +%s) - start )) s): $run_cmd"
  else
    echo "FAILED (exit $code): $run_cmd"
    printf '%s\n' "$output" | tail -15
    failed=1
  fi
done
exit $failed
