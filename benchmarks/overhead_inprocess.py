"""Time per step of GradSim vs a plain PyTorch loop in ONE process, interleaved blocks.

    python benchmarks/overhead_inprocess.py [--src CHECKOUT] [--depth 50] [--blocks 20]

The companion of overhead.py (whole processes): here the plain loop, GradSim's
Trainer and the Trainer without the theory prediction (``predicted_gain``
replaced by NaNs: the instrumentation's own cost) run in blocks of 10 steps,
interleaved, timed in this thread's CPU time; medians over blocks. Much less
sensitive to a loaded machine than whole processes, and ``--src`` runs
another checkout's gradsim (the before figures of RESULTS.md section 4.1).
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
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--blocks", type=int, default=20)
    a = p.parse_args()
    sys.path.insert(0, str(Path(a.src).resolve()))
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    from gradsim.config import RunConfig
    from gradsim.trainer import Trainer

    torch.set_num_threads(1)
    cfg = RunConfig(depth=a.depth, width=64, batch_size=128, activation="tanh", init="xavier_normal", lr=0.01,
                    steps=10**8, stats_every=10, max_memory_mb=64)
    t, bare_t = Trainer(cfg), Trainer(cfg)
    if hasattr(bare_t, "predicted_gain"):
        bare_t.predicted_gain = lambda x: np.full(bare_t.n_layers, np.nan, np.float32)
    layers: list[nn.Module] = []
    n_in = t.data.n_inputs
    for _ in range(a.depth):
        layers += [nn.Linear(n_in, 64), nn.Tanh()]
        n_in = 64
    net = nn.Sequential(*layers, nn.Linear(n_in, t.data.n_classes))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = t.probe_inputs(len(t.data.y_train)) if hasattr(t, "probe_inputs") else t._x, torch.from_numpy(t.data.y_train)
    g = torch.Generator().manual_seed(1)
    state = {"perm": torch.randperm(len(y), generator=g), "pos": 0}

    def plain() -> None:
        if state["pos"] + 128 > len(state["perm"]):
            state["perm"], state["pos"] = torch.randperm(len(y), generator=g), 0
        idx = state["perm"][state["pos"] : state["pos"] + 128]
        state["pos"] += 128
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()

    kinds = {"plain": plain, "gradsim": t.step, "gradsim-no-prediction": bare_t.step}
    for f in kinds.values():
        for _ in range(12):
            f()
    res: dict[str, list[float]] = {k: [] for k in kinds}
    clock = time.thread_time
    for _ in range(a.blocks):
        for k, f in kinds.items():
            t0 = clock()
            for _ in range(10):
                f()
            res[k].append((clock() - t0) / 10)
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"gradsim from {a.src}, depth {a.depth}, load {os.getloadavg()[0]:.1f}: "
          + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in med.items())
          + f"; ratio {med['gradsim'] / med['plain']:.3f}, without prediction {med['gradsim-no-prediction'] / med['plain']:.3f}")


if __name__ == "__main__":
    main()
