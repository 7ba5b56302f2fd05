#!/usr/bin/env python3
"""capbench's workloads written in plain PyTorch, as a user would otherwise run them.

The same Llama-style decoder as workloads/ (RMSNorm, interleaved-pair RoPE, grouped-query
attention, SwiGLU MLP, untied embedding and head; weights [out, in]), the same model files
(configs/models/*.json) and the same two workloads:

  train_step  forward, cross-entropy, backward, AdamW (betas 0.9/0.95); at bf16, fp32 master
              weights under torch.autocast, as mixed-precision training is usually written
  inference   prefill of a prompt batch (TTFT), then decode steps over a preallocated KV cache
              (TPOT); at bf16 the weights and cache are bf16

each in one or more modes:

  eager       plain PyTorch (scaled_dot_product_attention where the PyTorch has it, fused AdamW
              on CUDA)
  compile     torch.compile of the model (train step and prefill; PyTorch 2 or later)
  graph       inference replayed from CUDA graphs, one per step, as capbench does (CUDA only)

Timing follows capbench: warm-up repetitions, then repetitions until a minimum count and a
minimum time are both met, each synchronised; the median is the figure. The metrics carry
capbench's names (step_ms, tokens_per_s, ttft_ms, prefill_tokens_per_s, tpot_ms,
decode_tokens_per_s) and --out writes a capbench report (schema 1) whose runs are keyed like
capbench's with backend "pytorch:<mode>", so that

  capbench compare capbench.json reference.json --by backend --base pytorch:eager

puts both side by side. A suite file (--suite) gives the runs and their settings; without one,
the flags describe a single run.
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the message a user needs, not a traceback
    sys.exit("pytorch_reference.py: PyTorch is not installed for " + sys.executable)

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_DIR = os.path.join(os.path.dirname(HERE), "configs")
MODES = ("eager", "compile", "graph")
OUT_OF_MEMORY = getattr(torch.cuda, "OutOfMemoryError", MemoryError)


class BadInput(Exception):
    """A bad file or flag: reported as one line, exit code 2, as capbench does."""


# ---- model --------------------------------------------------------------------------------


def load_model_config(name_or_path, config_dir):
    path = name_or_path if name_or_path.endswith(".json") else os.path.join(
        config_dir, "models", name_or_path + ".json")
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: $: expected a readable model JSON file ({e})")
    for field in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "vocab", "max_seq"):
        if not isinstance(cfg.get(field), int) or cfg[field] <= 0:
            raise BadInput(f"{path}: $.{field}: expected a positive integer")
    if cfg["n_heads"] % cfg["n_kv_heads"] or cfg["d_model"] % cfg["n_heads"]:
        raise BadInput(f"{path}: $.n_kv_heads: expected to divide n_heads, which divides d_model")
    cfg.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    cfg.setdefault("rope_theta", 10000.0)
    cfg.setdefault("norm_eps", 1e-5)
    return cfg


def has_sdpa():
    return hasattr(F, "scaled_dot_product_attention")


def rms_norm(x, weight, eps):
    # Statistics in fp32 at any dtype, as capbench's backends compute them.
    xf = x.float()
    return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype)


def rope(x, cos, sin):
    """x [B,T,H,D]; cos, sin [T, D/2]: rotates each (2i, 2i+1) pair."""
    b, t, h, d = x.shape
    pairs = x.float().view(b, t, h, d // 2, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    c, s = cos.view(1, t, 1, d // 2), sin.view(1, t, 1, d // 2)
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).view(b, t, h, d).to(x.dtype)


def attention(q, k, v, causal):
    """q [B,H,T,D]; k, v [B,H,S,D] (kv heads already repeated); queries are the last T of S."""
    if has_sdpa():
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        t, s = q.shape[-2], k.shape[-2]
        mask = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(diagonal=s - t)
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(scores.softmax(-1).to(v.dtype), v)


class Block(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c, f = cfg["d_model"], cfg["d_ff"]
        self.h, self.kv, self.d = cfg["n_heads"], cfg["n_kv_heads"], c // cfg["n_heads"]
        self.eps = cfg["norm_eps"]
        p = torch.nn.Parameter
        self.attn_norm = p(torch.ones(c))
        self.wq = p(torch.empty(self.h * self.d, c))
        self.wk = p(torch.empty(self.kv * self.d, c))
        self.wv = p(torch.empty(self.kv * self.d, c))
        self.wo = p(torch.empty(c, self.h * self.d))
        self.mlp_norm = p(torch.ones(c))
        self.w_gate_up = p(torch.empty(2 * f, c))
        self.w_down = p(torch.empty(c, f))

    def forward(self, x, cos, sin, cache=None, pos=0):
        b, t, c = x.shape
        a = rms_norm(x, self.attn_norm, self.eps)
        q = rope(F.linear(a, self.wq).view(b, t, self.h, self.d), cos, sin)
        k = rope(F.linear(a, self.wk).view(b, t, self.kv, self.d), cos, sin)
        v = F.linear(a, self.wv).view(b, t, self.kv, self.d)
        if cache is not None:
            k_cache, v_cache = cache
            k_cache[:, pos:pos + t] = k
            v_cache[:, pos:pos + t] = v
            k, v = k_cache[:, :pos + t], v_cache[:, :pos + t]
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        if self.kv != self.h:
            k = k.repeat_interleave(self.h // self.kv, dim=1)
            v = v.repeat_interleave(self.h // self.kv, dim=1)
        # A single new token sees the whole cache: no mask.
        o = attention(q.transpose(1, 2), k, v, causal=t > 1)
        x = x + F.linear(o.transpose(1, 2).reshape(b, t, c), self.wo)
        gate, up = F.linear(rms_norm(x, self.mlp_norm, self.eps), self.w_gate_up).chunk(2, dim=-1)
        return x + F.linear(F.silu(gate) * up, self.w_down)


class Llama(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        c, d = cfg["d_model"], cfg["d_model"] // cfg["n_heads"]
        self.embedding = torch.nn.Parameter(torch.empty(cfg["vocab"], c))
        self.layers = torch.nn.ModuleList(Block(cfg) for _ in range(cfg["n_layers"]))
        self.final_norm = torch.nn.Parameter(torch.ones(c))
        self.head = torch.nn.Parameter(torch.empty(cfg["vocab"], c))
        # capbench's initialisation: normal(0, 0.02), output projections / sqrt(2L), norms 1.
        out_scale = 1.0 / math.sqrt(2 * cfg["n_layers"])
        for name, param in self.named_parameters():
            if "norm" in name:
                continue
            std = 0.02 * (out_scale if name.endswith(("wo", "w_down")) else 1.0)
            torch.nn.init.normal_(param, 0.0, std)
        inv = cfg["rope_theta"] ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        angles = torch.arange(cfg["max_seq"], dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("rope_cos", angles.cos().float(), persistent=False)
        self.register_buffer("rope_sin", angles.sin().float(), persistent=False)

    def forward(self, tokens, caches=None, pos=0):
        """tokens [B,T] at positions pos..pos+T-1; returns logits [B,T,V]."""
        t = tokens.shape[1]
        cos, sin = self.rope_cos[pos:pos + t], self.rope_sin[pos:pos + t]
        x = F.embedding(tokens, self.embedding)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i], pos)
        return F.linear(rms_norm(x, self.final_norm, self.cfg["norm_eps"]), self.head)


# ---- timing -------------------------------------------------------------------------------


class Clock:
    def __init__(self, device):
        self.device = device

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def time(self, fn):
        self.sync()
        t0 = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t0


def timed_loop(settings, rep):
    """Runs rep(timed) for the warm-up, then until min_reps and min_time are both met (or a cap
    is hit); rep returns the seconds it timed."""
    for _ in range(settings["warmup"]):
        rep(False)
    total, n = 0.0, 0
    while n < settings["max_reps"]:
        total += rep(True)
        n += 1
        if n >= settings["min_reps"] and total >= settings["min_time_s"]:
            break
        if total >= settings["max_time_s"]:
            break


def summarize(values):
    ordered = sorted(values)

    def quantile(q):
        pos = q * (len(ordered) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    n = len(values)
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if n > 1 else 0.0
    median = statistics.median(values)
    # capbench's verdict: a distribution-free 95% interval of the median (order statistics j and
    # n+1-j, j the largest with P(Binomial(n, 1/2) < j) <= 2.5%; the whole range below 6
    # samples), and outliers beyond 3 scaled MADs, counted.
    j, tail = 1, 0.0
    if n >= 6:
        for i in range(n):
            tail += math.comb(n, i) / 2.0 ** n
            if tail > 0.025:
                break
            j = i + 1
        j = max(j, 1)
    mad = 1.4826 * statistics.median([abs(v - median) for v in values])
    outliers = sum(1 for v in values if mad > 0 and abs(v - median) > 3 * mad)
    return {"n": n, "mean": mean, "median": median, "stdev": stdev,
            "cv": stdev / mean if mean > 0 else 0.0, "min": ordered[0], "max": ordered[-1],
            "p50": quantile(0.5), "p90": quantile(0.9), "p99": quantile(0.99),
            "median_ci95": [ordered[j - 1], ordered[n - j]], "outliers": outliers}


# ---- workloads ----------------------------------------------------------------------------


class Skip(Exception):
    """This mode cannot run this workload here; the reason goes into the report."""


def compiled(model, mode):
    if mode != "compile":
        return model
    if not hasattr(torch, "compile"):
        raise Skip(f"torch.compile needs PyTorch 2 or later, this is {torch.__version__}")
    return torch.compile(model)


def make_adamw(params, lr, device):
    params = list(params)  # tried twice where fused is refused
    kwargs = dict(lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    if device.type == "cuda":
        try:
            return torch.optim.AdamW(params, fused=True, **kwargs), "fused"
        except (TypeError, RuntimeError):
            pass
    return torch.optim.AdamW(params, **kwargs), "default"


def run_train(spec, mode, device, clock, record):
    if mode == "graph":
        raise Skip("graph mode covers inference; train steps run eager and compiled")
    cfg, batch, seq = spec["model"], spec["batch"], spec["seq"]
    model = Llama(cfg).to(device)
    step_model = compiled(model, mode)
    optimizer, adamw_kind = make_adamw(model.parameters(), spec["learning_rate"], device)
    tokens = torch.randint(0, cfg["vocab"], (batch, seq + 1), device=device)
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    bf16 = spec["dtype"] == "bf16"
    losses = []

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = step_model(inputs)
        loss = F.cross_entropy(logits.float().view(-1, cfg["vocab"]), targets.view(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    samples = []

    def rep(timed):
        holder = []
        seconds = clock.time(lambda: holder.append(step()))
        losses.append(holder[0].item())  # outside the timed step, as capbench reads its loss
        if timed:
            samples.append(seconds)
        return seconds

    timed_loop(spec["runner"], rep)
    step_s = statistics.median(samples)
    record["primary"] = "step_s"
    record["samples"] = {"step_s": samples}
    record["metrics"] = {"step_ms": step_s * 1e3, "tokens_per_s": batch * seq / step_s,
                         "final_loss": losses[-1]}
    record["device"]["adamw"] = adamw_kind
    record["canaries"] = [{"name": "loss_falls", "passed": losses[-1] < losses[0],
                           "detail": f"loss {losses[0]:.4f} -> {losses[-1]:.4f} over "
                                     f"{len(losses)} steps", "values": losses}]


def run_inference(spec, mode, device, clock, record):
    cfg, batch, prompt, steps = spec["model"], spec["batch"], spec["prompt"], spec["decode_steps"]
    if mode == "graph" and device.type != "cuda":
        raise Skip("CUDA graphs need a CUDA device")
    if mode == "compile" and steps > 0:
        raise Skip("decode under torch.compile recompiles for every cache length; "
                   "the graph mode is the fast decode reference")
    dtype = torch.bfloat16 if spec["dtype"] == "bf16" else torch.float32
    model = Llama(cfg).to(device=device, dtype=dtype).eval()
    forward = compiled(model, mode)
    capacity = prompt + steps
    kv, d = cfg["n_kv_heads"], cfg["d_model"] // cfg["n_heads"]
    caches = [tuple(torch.zeros(batch, capacity, kv, d, device=device, dtype=dtype)
                    for _ in range(2)) for _ in range(cfg["n_layers"])]
    prompt_tokens = torch.randint(0, cfg["vocab"], (batch, prompt), device=device)
    decode_tokens = torch.randint(0, cfg["vocab"], (steps, batch, 1), device=device)

    def prefill():
        return forward(prompt_tokens, caches, 0)

    def decode_step(s):
        return lambda: forward(decode_tokens[s], caches, prompt + s)

    calls = [prefill] + [decode_step(s) for s in range(steps)]
    if mode == "graph":
        calls = capture_graphs(calls, device)
    prefill_samples, decode_samples = [], []

    def rep(timed):
        with torch.inference_mode():
            tp = clock.time(calls[0])
            td = [clock.time(call) for call in calls[1:]]
        if timed:
            prefill_samples.append(tp)
            decode_samples.extend(td)
        return tp + sum(td)

    timed_loop(spec["runner"], rep)
    ttft = statistics.median(prefill_samples)
    record["samples"] = {"prefill_s": prefill_samples}
    record["metrics"] = {"ttft_ms": ttft * 1e3, "prefill_tokens_per_s": batch * prompt / ttft}
    record["primary"] = "prefill_s"
    if steps > 0:
        tpot = statistics.median(decode_samples)
        record["samples"]["decode_step_s"] = decode_samples
        record["primary"] = "decode_step_s"
        record["metrics"].update({"tpot_ms": tpot * 1e3, "decode_tokens_per_s": batch / tpot})


def capture_graphs(calls, device):
    """One CUDA graph per call, after one eager run of each (lazy initialisation stays out of
    the capture); the graphs share one memory pool and replay in order."""
    with torch.inference_mode():
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for call in calls:
                call()
        torch.cuda.current_stream(device).wait_stream(side)
        pool, graphs = None, []
        for call in calls:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                call()
            pool = graph.pool()
            graphs.append(graph)
    return [graph.replay for graph in graphs]


# ---- suite, report, console ---------------------------------------------------------------


def runner_settings(source, fallback):
    out = {}
    for key, default in (("warmup", 1), ("min_reps", 5), ("max_reps", 50), ("min_time_s", 2.0),
                         ("max_time_s", 30.0)):
        out[key] = source.get(key, fallback.get(key, default))
    return out


def specs_from_suite(path, args):
    try:
        with open(path) as f:
            suite = json.load(f)
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: $: expected a readable suite JSON file ({e})")
    defaults = suite.get("defaults", {})
    specs = []
    for i, entry in enumerate(suite.get("runs", [])):
        where = f"{path}: $.runs[{i}]"
        if entry.get("workload") not in ("train_step", "inference"):
            raise BadInput(f"{where}.workload: expected \"train_step\" or \"inference\"")
        if "model" not in entry:
            raise BadInput(f"{where}.model: expected a model name (field is missing)")
        spec = {"workload": entry["workload"],
                "model": load_model_config(args.model or entry["model"], args.config_dir),
                "batch": args.batch or entry.get("batch", 1),
                "seq": args.seq or entry.get("seq", 0),
                "prompt": args.prompt or entry.get("prompt", 0),
                "decode_steps": entry.get("decode_steps", 0) if args.decode_steps is None
                else args.decode_steps,
                "dtype": args.dtype or entry.get("dtype", defaults.get("dtype", "fp32")),
                "learning_rate": entry.get("learning_rate", defaults.get("learning_rate", 1e-3)),
                "runner": runner_settings(entry, defaults)}
        if args.workload and spec["workload"] != args.workload:
            continue
        specs.append(spec)
    return suite.get("name", os.path.basename(path)), specs


def spec_from_flags(args):
    return {"workload": args.workload or "train_step",
            "model": load_model_config(args.model or "small", args.config_dir),
            "batch": args.batch or 1, "seq": args.seq or 128, "prompt": args.prompt or 128,
            "decode_steps": 32 if args.decode_steps is None else args.decode_steps,
            "dtype": args.dtype or "fp32", "learning_rate": 1e-3,
            "runner": runner_settings({}, {})}


def check_spec(spec, origin):
    cfg = spec["model"]
    if spec["dtype"] not in ("fp32", "bf16"):
        raise BadInput(f"{origin}: dtype: expected fp32 or bf16, got {spec['dtype']}")
    length = spec["seq"] if spec["workload"] == "train_step" else spec["prompt"] + spec[
        "decode_steps"]
    if length > cfg["max_seq"] or length <= 0:
        raise BadInput(f"{origin}: expected a sequence of 1 to max_seq ({cfg['max_seq']}) tokens "
                       f"for model {cfg['name']}, got {length}")


def host_cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else host_cpu_name()


def run_key(spec, mode, device):
    train = spec["workload"] == "train_step"
    return {"workload": spec["workload"], "model": spec["model"]["name"],
            "backend": "pytorch:" + mode, "device": device_name(device), "dtype": spec["dtype"],
            "batch": spec["batch"], "seq": spec["seq"] if train else 0,
            "prompt": 0 if train else spec["prompt"],
            "decode_steps": 0 if train else spec["decode_steps"],
            "threads": torch.get_num_threads() if device.type == "cpu" else 0,
            "emulation": None, "parallel": {"layout": "single", "world": 1}}


def execute(spec, mode, device, ci_bound):
    clock = Clock(device)
    record = {"key": run_key(spec, mode, device), "status": "ok", "reason": "",
              "device": {"backend": "pytorch:" + mode, "kind": device.type,
                         "name": device_name(device), "library": "PyTorch " + torch.__version__,
                         "attention": "scaled_dot_product_attention" if has_sdpa() else "math",
                         "graphs": {"used": mode == "graph"}},
              "memory": {}, "metrics": {}, "samples": {}, "canaries": []}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(1)
    try:
        (run_train if spec["workload"] == "train_step" else run_inference)(
            spec, mode, device, clock, record)
    except Skip as e:
        record.update(status="skipped", reason=str(e))
    except OUT_OF_MEMORY as e:
        record.update(status="failed", reason="out of device memory: " + str(e).split("\n")[0])
    except Exception as e:  # noqa: BLE001 - torch.compile fails in many ways where it cannot run
        reason = str(e).split("\n")[0]
        if mode == "compile":
            # No Triton, no C compiler, an unsupported device: the mode cannot run here.
            record.update(status="skipped", reason=f"torch.compile cannot run here: "
                                                   f"{type(e).__name__}: {reason}")
        elif isinstance(e, RuntimeError):
            record.update(status="failed", reason=reason)
        else:
            raise
    if device.type == "cuda":
        record["memory"]["device_peak_bytes"] = torch.cuda.max_memory_allocated(device)
    record["stats"] = {name: summarize(values) for name, values in record["samples"].items()
                       if values}
    primary = record["stats"].get(record.get("primary", ""))
    reasons = []
    if record["status"] == "ok" and primary:
        low, high = primary["median_ci95"]
        med = primary["median"]
        ci = max(med - low, high - med) / med if med > 0 else 0.0
        if ci > ci_bound:
            reasons.append(f"the median's 95% confidence interval is ±{100 * ci:.1f}% wide, above "
                           f"the bound ±{100 * ci_bound:.1f}%")
    record["validity"] = {"valid": record["status"] == "ok" and not reasons, "reasons": reasons}
    return record


def write_atomic(path, report):
    # A unique temporary file beside the report, created exclusively, then renamed over it.
    # Non-finite numbers as capbench writes them ("NaN", "Infinity"), never bare NaN tokens.
    def finite(v):
        if isinstance(v, float) and not math.isfinite(v):
            return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, list):
            return [finite(x) for x in v]
        return v
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(finite(report), f, indent=1, allow_nan=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def print_row(record):
    k, m = record["key"], record["metrics"]
    if record["status"] != "ok":
        figure = record["status"] + ": " + record["reason"]
    elif k["workload"] == "train_step":
        figure = f"{m['tokens_per_s']:10.1f} tok/s  step {m['step_ms']:.2f} ms"
    elif "tpot_ms" in m:
        figure = (f"{m['decode_tokens_per_s']:10.1f} tok/s  TPOT {m['tpot_ms']:.2f} ms  "
                  f"TTFT {m['ttft_ms']:.1f} ms")
    else:
        figure = f"{m['prefill_tokens_per_s']:10.1f} tok/s  TTFT {m['ttft_ms']:.1f} ms (prefill)"
    shape = (f"b{k['batch']} x {k['seq']}" if k["workload"] == "train_step"
             else f"b{k['batch']} p{k['prompt']} d{k['decode_steps']}")
    print(f"{k['backend']:<16} {k['model']:<12} {k['workload']:<11} {k['dtype']:<5} "
          f"{shape:<16} {figure}", flush=True)


def main(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: pytorch_reference.py --suite configs/suites/gpu.json --out ref.json")
    parser.add_argument("--suite", help="capbench suite file giving the runs")
    parser.add_argument("--model", help="model name in configs/models, or a path (default small)")
    parser.add_argument("--workload", choices=("train_step", "inference"))
    parser.add_argument("--batch", type=int)
    parser.add_argument("--seq", type=int)
    parser.add_argument("--prompt", type=int)
    parser.add_argument("--decode-steps", type=int)
    parser.add_argument("--dtype", choices=("fp32", "bf16"))
    parser.add_argument("--modes", default="eager,compile,graph",
                        help="comma list of eager, compile, graph (default all; those that "
                             "cannot run here are reported as skipped, with the reason)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    parser.add_argument("--reps", type=int, help="exactly N timed repetitions")
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--min-time", type=float, help="seconds of timed repetitions at least")
    parser.add_argument("--ci-bound", type=float, default=0.05,
                        help="largest relative half-width of the median's 95%% interval in a "
                             "valid run")
    parser.add_argument("--config-dir", default=CONFIG_DIR)
    parser.add_argument("--out", help="write a capbench report (schema 1) here")
    args = parser.parse_args(argv)
    try:
        modes = [m for m in args.modes.split(",") if m]
        for m in modes:
            if m not in MODES:
                raise BadInput(f"--modes: expected eager, compile or graph, got {m}")
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BadInput("--device: cuda was asked for, but this PyTorch sees no CUDA device")
        if device.type == "cpu":
            torch.set_num_threads(args.threads or os.cpu_count())
        if args.suite:
            suite_name, specs = specs_from_suite(args.suite, args)
        else:
            suite_name, specs = "flags", [spec_from_flags(args)]
        for i, spec in enumerate(specs):
            check_spec(spec, f"{args.suite or 'flags'} run {i}")
            if args.reps:
                spec["runner"].update(min_reps=args.reps, max_reps=args.reps, min_time_s=0.0)
            if args.warmup is not None:
                spec["runner"]["warmup"] = args.warmup
            if args.min_time is not None:
                spec["runner"]["min_time_s"] = args.min_time
    except BadInput as e:
        print(f"pytorch_reference.py: error: {e}", file=sys.stderr)
        return 2

    runs = []
    for spec in specs:
        for mode in modes:
            record = execute(spec, mode, device, args.ci_bound)
            print_row(record)
            runs.append(record)
    if args.out:
        write_atomic(args.out, {
            "schema_version": 1, "capbench_version": "pytorch_reference.py",
            "git_revision": "", "suite": suite_name,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "host": {"cpu": host_cpu_name(), "python": platform.python_version(),
                     "pytorch": torch.__version__},
            "calibration": {}, "runs": runs})
        print(f"report: {args.out}")
    return 1 if any(r["status"] == "failed" for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
