"""Cost of one theory prediction (Trainer.predicted_gain) next to a training step, in ONE process.

    python benchmarks/prediction_cost.py [--src CHECKOUT] [--depths 10 50 100] [--reps 15]

Per depth (width 64, batch 128, tanh, Xavier): predicted_gain on the step's batch
and a plain Trainer.step (stats_every large, so no recorded-step work), interleaved,
timed in this thread's CPU time; medians. ``--src`` runs another checkout's gradsim
(the before figures of RESULTS.md section 4). The prediction runs on step 0, every
event and every stats_every steps, so at stats_every=10 its share of a run is about
(prediction / step) / 10.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", default=str(Path(__file__).resolve().parents[1]))
    p.add_argument("--depths", type=int, nargs="+", default=[10, 50, 100])
    p.add_argument("--reps", type=int, default=15)
    a = p.parse_args()
    sys.path.insert(0, str(Path(a.src).resolve()))
    import torch

    from gradsim.config import RunConfig
    from gradsim.train.trainer import Trainer

    torch.set_num_threads(1)
    clock = time.thread_time
    for depth in a.depths:
        t = Trainer(RunConfig(depth=depth, width=64, batch_size=128, activation="tanh", init="xavier_normal",
                              lr=0.01, steps=10**8, stats_every=10**6, max_memory_mb=64))
        t.step()  # step 0 records (and builds any cached state)
        x, _ = t._batch()
        t.predicted_gain(x)
        pred, step = [], []
        for _ in range(a.reps):
            t0 = clock()
            t.predicted_gain(x)
            pred.append(clock() - t0)
            t0 = clock()
            t.step()
            step.append(clock() - t0)
        mp, ms = statistics.median(pred), statistics.median(step)
        print(f"gradsim from {a.src}, depth {depth}, load {os.getloadavg()[0]:.1f}: predicted_gain {mp * 1e3:.2f} ms, "
              f"step {ms * 1e3:.2f} ms, prediction/step {mp / ms:.2f}")


if __name__ == "__main__":
    main()
