#!/usr/bin/env python3
"""Virtual against real tensor parallelism.

  virtual_vs_real.py suite REAL_REPORT VIRTUAL_SUITE_OUT
      writes the virtual twin of the real suite: one rank of 2, one thread, its link the host
      link the real run measured (bandwidth and latency per ring step)
  virtual_vs_real.py compare REAL_REPORT VIRTUAL_REPORT [...pairs]
      prints, per run, the virtual median over the real one (goal: within 10%)
"""
import json
import sys


def runs(path):
    return {(r["key"]["workload"]): r for r in json.load(open(path))["runs"]}


def suite(real_report, real_suite, out):
    real = runs(real_report)
    link = next(iter(real.values()))["parallel"]["host_link"]
    doc = json.load(open(real_suite))
    doc["name"] = "tp-virtual"
    doc["defaults"]["threads"] = 1
    doc["defaults"]["parallel"] = {
        "layout": "tp", "tp": 2, "virtual": True,
        "link": {"bytes_per_s": link["bytes_per_s"], "latency_s": link["latency_s"]}}
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
            print(f"{virtual_path}: {workload} {series}: virtual / real = {ratio:.3f} "
                  f"(real {r['stats'][series]['median'] * 1e3:.2f} ms, "
                  f"link {r['parallel']['host_link']['bytes_per_s'] / 1e9:.2f} GB/s, "
                  f"{r['parallel']['host_link']['latency_s'] * 1e6:.0f} us a step)")
    print("goal (within 10%):", "met" if worst <= 0.10 else "MISSED")
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    if sys.argv[1] == "suite":
        suite(*sys.argv[2:5])
    else:
        sys.exit(compare(sys.argv[2:]))
