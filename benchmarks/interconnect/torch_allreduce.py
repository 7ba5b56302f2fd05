#!/usr/bin/env python3
"""All-reduce bus bandwidth with torch.distributed (Gloo): the reference that capbench comm-bench
is compared with. Run under any launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
(capbench launch -n 2 -- ... cannot start Python; run.sh starts the ranks itself).

Prints one line per size on rank 0: "<bytes> <median seconds> <busbw bytes/s>", the median over
--iters iterations of the slowest rank's time after a barrier, as comm-bench measures it."""
import argparse
import os
import statistics
import time

import torch
import torch.distributed as dist


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="1048576,16777216,67108864", help="bytes, comma-separated")
    p.add_argument("--iters", type=int, default=10)
    args = p.parse_args()
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    world, rank = dist.get_world_size(), dist.get_rank()
    for size in (int(s) for s in args.sizes.split(",")):
        n = size // 4
        data = torch.ones(n, dtype=torch.float32)
        dist.all_reduce(data)  # warm-up
        times = []
        for _ in range(args.iters):
            data.fill_(1.0)
            dist.barrier()  # as comm-bench does: the ranks meet, then the collective is timed
            t0 = time.perf_counter()
            dist.all_reduce(data)
            dt = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
            dist.all_reduce(dt, op=dist.ReduceOp.MAX)
            times.append(dt.item())
        t = statistics.median(times)
        if rank == 0:
            print(size, t, size * 2 * (world - 1) / world / t, flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
