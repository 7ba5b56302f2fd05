#!/bin/bash
# The link model against a real shaped link (root): two ranks in their own network namespaces
# joined by a veth pair, each end shaped with `tc qdisc ... tbf` at R (one limit per direction),
# against the same two ranks on the same pair unshaped, with capbench's interconnect throttle
# pacing every collective to R. Compares, at R = 0.5, 1 and 2 Gbit/s: the all-reduce busbw of
# comm-bench (16 to 64 MiB, fp32) and the data-parallel train step's median (the small model).
# Prints ratios paced / shaped (goal: within 10%). The paced link is the shaped link's payload
# rate (R × 1448 / 1514: tbf counts whole Ethernet frames). tbf queues at most TBF_LATENCY
# (default 20ms): deeper queues made the 0.5 Gbit/s link lose goodput to TCP. Usage:
# [RATES="0.5 1 2"] [TBF_LATENCY=20ms] shaped_link.sh [BUILD_DIR]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, tc)"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
cb=$build/capbench
out=$(mktemp -d)
ns0=cbnet0 ns1=cbnet1
cleanup() { ip netns del $ns0 2>/dev/null || true; ip netns del $ns1 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT
cleanup; out=$(mktemp -d)
ip netns add $ns0; ip netns add $ns1
ip link add cbv0 type veth peer name cbv1
ip link set cbv0 netns $ns0; ip link set cbv1 netns $ns1
ip -n $ns0 addr add 10.77.0.1/24 dev cbv0; ip -n $ns1 addr add 10.77.0.2/24 dev cbv1
for ns in $ns0 $ns1; do ip -n $ns link set lo up; done
ip -n $ns0 link set cbv0 up; ip -n $ns1 link set cbv1 up

# A device profile whose link is R bytes/s, and whose compute and memory no op can reach, so
# that only collectives are paced (real time: --time-scale 1).
profile() {  # bytes/s -> file
  sed -e "s/__LINK__/$1/" "$here/link_only.json.in" >"$out/link-$1.json"
  echo "$out/link-$1.json"
}
suite=$here/dp_small.json
common=(--reps 5 --warmup 1 --threads 1)  # the paced run calibrates (emulation needs it)

# Two ranks on the veth pair, each in its namespace; rank 0's output in rank0.log.
on_ranks() {
  local port=$((29800 + RANDOM % 100))
  for rank in 1 0; do
    local ns=cbnet$rank dev=cbv$rank
    ip netns exec $ns env RANK=$rank WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 \
      MASTER_ADDR=10.77.0.1 MASTER_PORT=$port GLOO_SOCKET_IFNAME=$dev "$cb" "$@" \
      >"$out/rank$rank.log" 2>&1 &
  done
  wait
}

printf "%-9s %-22s %12s %12s %7s\n" "link" "measure" "shaped" "paced" "ratio"
for gbit in ${RATES:-0.5 1 2}; do
  # The payload rate of a shaped Ethernet link: tbf counts whole frames, of which a full TCP
  # segment carries 1448 bytes (timestamps on) of 1514.
  bytes=$(python3 -c "print(int($gbit * 1e9 / 8 * 1448 / 1514))")
  burst=$(python3 -c "print(max(64, int($gbit * 1e9 / 8 / 1000 / 1024)))")  # 1 ms of traffic, KiB
  for side in 0 1; do
    tc -n cbnet$side qdisc replace dev cbv$side root tbf rate ${gbit}gbit burst ${burst}kb latency ${TBF_LATENCY:-20ms}
  done
  on_ranks comm-bench --op all_reduce --dtype fp32 --min-size 16M --max-size 64M --iters 5 \
    --out "$out/shaped.json"
  on_ranks run "$suite" "${common[@]}" --no-calibrate --out "$out/shaped-step.json"
  # The same ranks on the same veth pair, unshaped, with collectives paced to R.
  for side in 0 1; do tc -n cbnet$side qdisc del dev cbv$side root; done
  on_ranks comm-bench --op all_reduce --dtype fp32 --min-size 16M --max-size 64M --iters 5 \
    --emulate "$(profile "$bytes")" --out "$out/paced.json"
  on_ranks run "$suite" "${common[@]}" --emulate "$(profile "$bytes")" --time-scale 1 \
    --out "$out/paced-step.json" || cat "$out/rank0.log"
  python3 - "$out" "$gbit" <<'PY'
import json, sys
out, gbit = sys.argv[1], sys.argv[2]
shaped = json.load(open(out + "/shaped.json"))["comm_bench"]["results"]
paced = json.load(open(out + "/paced.json"))["comm_bench"]["results"]
for s, p in zip(shaped, paced):
    a, b = s["busbw_bytes_per_s"], p["busbw_bytes_per_s"]
    print(f"{gbit + ' Gbit/s':<9} {'all_reduce ' + str(s['bytes'] >> 20) + ' MiB busbw':<22} "
          f"{a/1e6:>9.1f} MB/s {b/1e6:>7.1f} MB/s {b/a:>7.3f}")
def step(f):
    r = json.load(open(f))["runs"][0]
    return r["stats"]["step_s"]["median"], r
(a, ra), (b, rb) = step(out + "/shaped-step.json"), step(out + "/paced-step.json")
print(f"{gbit + ' Gbit/s':<9} {'dp train step':<22} {a*1e3:>9.1f} ms   {b*1e3:>7.1f} ms   {b/a:>7.3f}")
for name in ("comm_ms", "exposed_comm_ms"):
    x, y = ra["metrics"].get(name, 0), rb["metrics"].get(name, 0)
    print(f"{'':<9} {'  ' + name:<22} {x:>9.1f} ms   {y:>7.1f} ms   {y/x if x else 0:>7.3f}")
x = a * 1e3 - ra["metrics"].get("exposed_comm_ms", 0)
y = b * 1e3 - rb["metrics"].get("exposed_comm_ms", 0)
print(f"{'':<9} {'  step - exposed':<22} {x:>9.1f} ms   {y:>7.1f} ms   {y/x:>7.3f}")
PY
done
