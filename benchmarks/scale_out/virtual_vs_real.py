#!/usr/bin/env python3
"""Virtual against real tensor parallelism.

  virtual_vs_real.py suite REAL_REPORT REAL_SUITE VIRTUAL_SUITE_OUT [calibrated|in-run]
      writes the virtual twin of the real suite: one rank of 2, one thread, its link the host
      link the real run measured. calibrated (the default): the bandwidth and the latency per
      ring step calibrated at the start of the real run. in-run: the same bandwidth, and each
      entry's latency from its own real run's all-reduces (the mean time of the rank that spent
      least inside them, less the bandwidth term), which leaves the link's drift between
      calibration and run out of the comparison
  virtual_vs_real.py compare REAL_REPORT VIRTUAL_REPORT [...pairs]
      prints, per run, the virtual median over the real one (goal: within 10%)
"""
import json
import sys


def runs(path):
    return {(r["key"]["workload"]): r for r in json.load(open(path))["runs"]}


def in_run_latency(record, bytes_per_s):
    """Latency per ring step that the run's own all-reduces had (2 ranks: 2 steps, bus = S):
    from the rank that spent least time inside them (one that arrives early waits there for
    the other, which is compute, not link)."""
    ar = record["parallel"]["tp_collectives"]["all_reduce"]
    least = min(rank["tp_collective_seconds"] for rank in record["parallel"]["ranks"])
    per_call = least / ar["calls"]
    return max(0.0, per_call - ar["bytes"] / ar["calls"] / bytes_per_s) / 2


def suite(real_report, real_suite, out, source="calibrated"):
    real = runs(real_report)
    link = next(iter(real.values()))["parallel"]["host_link"]
    doc = json.load(open(real_suite))
    doc["name"] = "tp-virtual"
    doc["defaults"]["threads"] = 1
    doc["defaults"]["parallel"] = {
        "layout": "tp", "tp": 2, "virtual": True,
        "link": {"bytes_per_s": link["bytes_per_s"], "latency_s": link["latency_s"]}}
    if source == "in-run":
        for entry in doc["runs"]:
            latency = in_run_latency(real[entry["workload"]], link["bytes_per_s"])
            entry["parallel"] = dict(doc["defaults"]["parallel"],
                                     link={"bytes_per_s": link["bytes_per_s"],
                                           "latency_s": latency})
    elif source != "calibrated":
        sys.exit(f"link source must be calibrated or in-run, got {source}")
    json.dump(doc, open(out, "w"), indent=1)


def compare(pairs):
    worst = 0.0
    for real_path, virtual_path in zip(pairs[0::2], pairs[1::2]):
        real, virtual = runs(real_path), runs(virtual_path)
        for workload, r in sorted(real.items()):
            v = virtual[workload]
            series = r["primary"]
            ratio = v["stats"][series]["median"] / r["stats"][series]["median"]
            worst = max(worst, abs(ratio - 1))
            link = v["parallel"]["link"]
            print(f"{virtual_path}: {workload} {series}: virtual / real = {ratio:.3f} "
                  f"(real {r['stats'][series]['median'] * 1e3:.2f} ms, "
                  f"link {link['link_bytes_per_s'] / 1e9:.2f} GB/s, "
                  f"{link['latency_s'] * 1e6:.0f} us a step)")
    print("goal (within 10%):", "met" if worst <= 0.10 else "MISSED")
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    if sys.argv[1] == "suite":
        suite(*sys.argv[2:6])
    else:
        sys.exit(compare(sys.argv[2:]))
