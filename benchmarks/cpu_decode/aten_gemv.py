"""The weight stream ATen itself reaches on a decode step's one-row products, by the ops a
libtorch backend could call: what bounds the torch backend's CPU decode whatever capbench does
around those ops. 24 matrices of [5632, 1024] (llama-350m's gate/up projection), 264 MiB of
bf16, each read once per pass; the best of three passes per op.
    /usr/bin/python3 benchmarks/cpu_decode/aten_gemv.py [threads] [dtype]   (default: 2 bf16)
"""
import sys
import time

import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[sys.argv[2] if len(sys.argv) > 2 else "bf16"]
torch.set_num_threads(threads)
weights = [torch.randn(5632, 1024).to(dtype) for _ in range(24)]
total = sum(w.numel() * w.element_size() for w in weights)
x = torch.randn(1, 1024).to(dtype)
transposed = [w.t().contiguous() for w in weights]


def best_rate(run):
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return total / best


ops = {
    "linear(x, W)": lambda: [torch.nn.functional.linear(x, w) for w in weights],
    "matmul(x, W.t())": lambda: [torch.matmul(x, w.t()) for w in weights],
    "mv(W, x)": lambda: [torch.mv(w, x[0]) for w in weights],
    "matmul(x, Wt) (Wt contiguous)": lambda: [torch.matmul(x, w) for w in transposed],
}
print(f"torch {torch.__version__}, {threads} threads, {dtype}:")
for name, run in ops.items():
    print(f"  {name:<32} {best_rate(run) / 1e9:6.1f} GB/s")
