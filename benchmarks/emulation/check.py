#!/usr/bin/env python3
"""Reads the reports of targets.json and slices.json and prints what emulation v2 is held to:
time-scaled estimates against the roofline prediction (within 5%), the H20 against the H100
(decode shorter, prefill and train step longer), and layer slices extrapolated to the whole
model against running it whole (within 5%). Exit 1 when a check misses."""
import json
import sys

GOAL = 0.05
missed = 0


def verdict(ok):
    global missed
    missed += not ok
    return "ok" if ok else "MISSED"


def runs(path):
    with open(path) as f:
        report = json.load(f)
    return [r for r in report["runs"] if r["status"] == "ok"]


def shape(run):
    k = run["key"]
    size = f"batch {k['batch']}" + (f", seq {k['seq']}" if k["workload"] == "train_step" else "")
    model = k["model"].split(" (")[0]  # a slice is named "MODEL (N of L layers)"
    return f"{model} {k['workload']} {size}"


def check_targets(path):
    print(f"Time-scaled emulation ({path}): estimated on the target / roofline prediction")
    estimated = {}
    for run in runs(path):
        e = run["emulation"]
        profile = run["key"]["emulation"]["profile"]
        for phase in ("", "prefill_", "decode_step_"):
            est, pred = e.get(f"estimated_{phase}seconds"), e.get(f"predicted_{phase}seconds")
            if est is None or pred is None or (phase == "" and run["key"]["workload"] == "inference"):
                continue
            name = phase.rstrip("_") or "step"
            ratio = est / pred
            estimated[(shape(run), name, profile)] = est
            print(f"  {shape(run):42} {name:12} {profile:13} {est * 1e3:9.3f} ms / "
                  f"{pred * 1e3:9.3f} ms = {ratio:.3f}  {verdict(abs(ratio - 1) <= GOAL)}"
                  f"  (time scale {e['time_scale']:.3g})")
    print("H20 against H100, estimated times on the target")
    for (where, name, profile), h20 in sorted(estimated.items()):
        if profile != "h20" or (where, name, "h100-sxm") not in estimated:
            continue
        ratio = h20 / estimated[(where, name, "h100-sxm")]
        expected = "shorter" if name == "decode_step" else "longer"
        ok = ratio < 1 if expected == "shorter" else ratio > 1
        print(f"  {where:42} {name:12} H20 / H100 = {ratio:.2f} (published: {expected})  "
              f"{verdict(ok)}")


def check_slices(path):
    print(f"Layer slices ({path}): extrapolated from the slice / measured on the whole model")
    whole, sliced = {}, {}
    for run in runs(path):
        x = run.get("extrapolation")
        for name, stat in run["stats"].items():
            if x:
                # The slice's figure for the whole model, per series.
                value = x.get("seconds", {}).get(name)
                if value is not None:
                    sliced[(shape(run), name)] = (value, x["layers_run"], x["layers"])
            else:
                whole[(shape(run), name)] = stat["median"]
    for key, (value, run_layers, layers) in sorted(sliced.items()):
        if key not in whole:
            continue
        ratio = value / whole[key]
        print(f"  {key[0]:42} {key[1]:14} {run_layers} of {layers} layers: {value * 1e3:9.3f} ms"
              f" / {whole[key] * 1e3:9.3f} ms = {ratio:.3f}  {verdict(abs(ratio - 1) <= GOAL)}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: check.py TARGETS_REPORT SLICES_REPORT...")
    check_targets(sys.argv[1])
    for path in sys.argv[2:]:  # the slice check run several times: the machine drifts
        check_slices(path)
    sys.exit(1 if missed else 0)
