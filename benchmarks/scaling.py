"""Scaling: steps per second and memory as depth grows and as the run grows.

    python benchmarks/scaling.py [--depths 10,50,100,200] [--lengths 1000,10000,100000,1000000]
                                 [--train-up-to 100000] [--budget-mb 8]

Depth: steps/s of the headless Trainer (width 64, batch 128, 1 thread) and
the bytes one recorded step costs. Length: a real training run at depth 10 up
to --train-up-to steps; longer lengths feed the same Session store with
recorded rows directly (the store, not training, is what could grow), with the
store's memory and the process RSS sampled along the way: both must stay flat
once the store is full.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from gradsim.config import RunConfig
from gradsim.session.store import Session, StepRecord
from gradsim.train.trainer import Trainer


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def by_depth(depths: list[int], steps: int = 60) -> None:
    print(f"{'depth':>5} {'steps/s':>9} {'ms/step':>8} {'bytes/row':>10} {'rows in 256 MB':>15}")
    for d in depths:
        t = Trainer(RunConfig(depth=d, width=64, batch_size=128, steps=10**8, stats_every=10))
        for _ in range(5):
            t.step()
        t0 = time.perf_counter()
        for _ in range(steps):
            t.step()
        dt = (time.perf_counter() - t0) / steps
        s = t.session
        print(f"{d:>5} {1 / dt:>9.1f} {dt * 1e3:>8.2f} {s.row_nbytes:>10} {s.capacity:>15,}")


def by_length(lengths: list[int], train_up_to: int, budget_mb: float, small: tuple[int, int, int] = (10, 64, 128)) -> None:
    print(f"\nrun length, trained net depth {small[0]} width {small[1]}, store budget {budget_mb} MB")
    print(f"{'steps':>9} {'how':>8} {'rows kept':>10} {'record_every':>12} {'store MB':>9} {'RSS MB':>8} {'seconds':>8}")
    for n in lengths:
        t0 = time.perf_counter()
        if n <= train_up_to:
            tr = Trainer(RunConfig(depth=small[0], width=small[1], batch_size=min(128, small[2]), steps=n, max_memory_mb=budget_mb))
            samples = []
            every = max(1, n // 20)
            t_start = time.perf_counter()

            def sample(rec, every=every, n=n, samples=samples, t_start=t_start, tr=tr) -> None:  # bound now: called during this iteration
                if rec.step % every == 0 or rec.step == n - 1:
                    samples.append((rec.step + 1, time.perf_counter() - t_start, rss_mb(), tr.session.nbytes / 1e6))

            tr.run(callback=sample)
            s, how = tr.session, "trained"
            rss = [x[2] for x in samples]
            growth = max(rss[2:]) - min(rss[2:]) if len(rss) > 3 else 0.0
            print("  memory along the run (steps, seconds, RSS MB, store MB): "
                  + ", ".join(f"({k:,}, {t:.0f}, {r:.0f}, {m:.1f})" for k, t, r, m in samples))
            print(f"  RSS range after the first tenth: {growth:.1f} MB")
        else:
            s, how = Session(11, max_memory_mb=budget_mb), "fed"
            layers = np.ones((11, 10), np.float32)
            scalars = np.zeros(8)
            samples = []
            for step in range(n):
                s.append(StepRecord(step, scalars, layers, step % 10 == 0))
                if step % (n // 10) == 0:
                    samples.append(rss_mb())
            growth = max(samples[2:]) - min(samples[2:])
            if growth > 16:  # the store itself is capped; allocator noise stays well below this
                print(f"  RSS grew {growth:.1f} MB after the store filled: {samples}")
        assert s.nbytes <= budget_mb * 1e6
        print(f"{n:>9,} {how:>8} {len(s):>10,} {s.record_every:>12} {s.nbytes / 1e6:>9.2f} {rss_mb():>8.0f} {time.perf_counter() - t0:>8.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", default="10,50,100,200")
    p.add_argument("--lengths", default="1000,10000,100000,1000000")
    p.add_argument("--train-up-to", type=int, default=10000)
    p.add_argument("--budget-mb", type=float, default=8.0)
    p.add_argument("--train-net", default="10,64,128", help="depth,width,batch of the trained runs (a small net makes 1e6 steps feasible)")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.depths:
        by_depth([int(x) for x in a.depths.split(",")])
    small = tuple(int(x) for x in a.train_net.split(","))
    by_length([int(x) for x in a.lengths.split(",")], a.train_up_to, a.budget_mb, small)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
