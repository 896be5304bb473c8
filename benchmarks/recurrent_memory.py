"""Memory of a long recurrent run: a seq_len 1000 RNN stays flat once its store is full.

    python benchmarks/recurrent_memory.py [--steps 1000] [--seq-len 1000] [--width 64] [--depth 1]
                                          [--batch 32] [--budget-mb 16] [--every 100]

A recurrent row holds one unit per time step (seq_len + 2 * depth + 1 units), so
one recorded step costs ~44 KB at seq_len 1000 against ~0.5 KB for a depth-10 MLP:
the store's budget must count those units, or a long run grows past it. The run
goes headless through the Trainer (the engine's own path); every ``--every``
steps it samples the process RSS and the store's bytes: allocated (the arrays,
never above the budget), filled (rows kept x bytes per row) and touched (the
most rows it ever held x bytes per row: the pages of its zero-filled arrays
that RSS counts). Until the store is full the RSS may grow by what the store
touches (it is within the budget); RSS minus the store's touched bytes must
stay flat throughout: any growth there is memory the budget does not account
for (history lists, a kept autograd graph, copies). The default budget of 16 MB fills after ~360 steps, so a
1,000-step run shows both phases.
"""
from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from gradsim.config import RunConfig
from gradsim.session.store import StepRecord
from gradsim.train.trainer import Trainer


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seq-len", type=int, default=1000)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--budget-mb", type=float, default=16.0)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--model", default="rnn")
    a = p.parse_args()
    torch.set_num_threads(1)
    cfg = RunConfig(model=a.model, dataset="adding", seq_len=a.seq_len, width=a.width, depth=a.depth,
                    batch_size=a.batch, steps=a.steps, lr=1e-3, max_memory_mb=a.budget_mb)
    t = Trainer(cfg)
    s = t.session
    budget = a.budget_mb * 1e6
    print(f"{a.model} seq_len {a.seq_len}, width {a.width}, depth {a.depth}, batch {a.batch}, {a.steps} steps; "
          f"{len(s.units)} units, {s.row_nbytes:,} bytes per row, store budget {a.budget_mb:g} MB = {s.capacity} rows")
    print(f"{'step':>6} {'RSS MB':>8} {'alloc MB':>9} {'filled MB':>10} {'touched MB':>11} {'RSS-touched':>12} "
          f"{'rows':>5} {'record_every':>12} {'gc objects':>10} {'s':>6}")
    samples: list[tuple[int, float, float, bool]] = []  # (step, RSS MB, touched MB, store full)
    high = [0]  # the most rows the store has held
    t0 = time.perf_counter()

    def sample(rec: StepRecord) -> None:
        high[0] = max(high[0], len(s))
        k = rec.step + 1
        if k % a.every and k != a.steps:
            return
        rss, alloc, filled, touched = rss_mb(), s.nbytes / 1e6, len(s) * s.row_nbytes / 1e6, high[0] * s.row_nbytes / 1e6
        samples.append((k, rss, touched, s.record_every > 1 or len(s) >= s.capacity))
        print(f"{k:>6} {rss:>8.1f} {alloc:>9.2f} {filled:>10.2f} {touched:>11.2f} {rss - touched:>12.1f} {len(s):>5} "
              f"{s.record_every:>12} {len(gc.get_objects()):>10} {time.perf_counter() - t0:>6.0f}", flush=True)

    t.run(callback=sample)
    assert s.nbytes <= max(budget, 16 * s.row_nbytes), f"store holds {s.nbytes} bytes, budget {budget:.0f}"
    full = [x for x in samples if x[3]]
    warm = samples[1:]  # the first sample includes the allocator's and torch's start-up
    resid = [r - f for _, r, f, _ in warm]
    print(f"RSS minus the store's touched bytes after step {warm[0][0]}: range {max(resid) - min(resid):.1f} MB "
          f"({min(resid):.1f} .. {max(resid):.1f}); store allocated {s.nbytes / 1e6:.2f} MB of a {a.budget_mb:g} MB budget")
    if full:
        rss = [x[1] for x in full]
        print(f"RSS once the store was full (from step {full[0][0]}): range {max(rss) - min(rss):.1f} MB")


if __name__ == "__main__":
    main()
