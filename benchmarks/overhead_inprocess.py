"""Time per step of GradSim vs a plain PyTorch loop in ONE process, interleaved blocks.

    python benchmarks/overhead_inprocess.py [--src BEFORE_CHECKOUT] [--depth 50] [--blocks 20]

The companion of overhead.py (whole processes): here the plain loop, GradSim's
Trainer and the Trainer without the theory prediction (``predicted_gain``
replaced by NaNs: the instrumentation's own cost) run in blocks of 10 steps,
interleaved, timed in this thread's CPU time; medians over blocks. Much less
sensitive to a loaded machine than whole processes.

``--src`` loads another checkout's gradsim into the same process (as package
``gradsim_before``: gradsim imports itself only relatively) and interleaves its
Trainer too, so before and after see the same load, cache and allocator state
(the before/after figures of RESULTS.md section 4.1).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_as(name: str, checkout: Path):
    """Import ``checkout``/gradsim as package ``name`` (alongside this checkout's gradsim)."""
    pkg = checkout / "gradsim"
    spec = importlib.util.spec_from_file_location(name, pkg / "__init__.py", submodule_search_locations=[str(pkg)])
    if spec is None or spec.loader is None:
        raise SystemExit(f"--src {checkout}: no gradsim package there")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    # v0.2.0 had gradsim/trainer.py; since the sub-packages it is gradsim/train/trainer.py
    layout = "train.trainer" if (pkg / "train" / "trainer.py").exists() else "trainer"
    return importlib.import_module(f"{name}.config"), importlib.import_module(f"{name}.{layout}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", help="a checkout of the 'before' version, run side by side in this process")
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--blocks", type=int, default=20)
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    from gradsim.config import RunConfig
    from gradsim.train.trainer import Trainer

    torch.set_num_threads(1)
    settings = dict(depth=a.depth, width=64, batch_size=128, activation="tanh", init="xavier_normal", lr=0.01,
                    steps=10**8, stats_every=10, max_memory_mb=64)

    def trainers(config_cls, trainer_cls):
        t, bare = trainer_cls(config_cls(**settings)), trainer_cls(config_cls(**settings))
        bare.predicted_gain = lambda x: np.full(bare.n_layers, np.nan, np.float32)
        return t, bare

    t, bare_t = trainers(RunConfig, Trainer)
    kinds = {"gradsim": t.step, "gradsim-no-prediction": bare_t.step}
    if a.src:
        before_config, before_trainer = _load_as("gradsim_before", Path(a.src).resolve())
        b, bare_b = trainers(before_config.RunConfig, before_trainer.Trainer)
        kinds.update({"before": b.step, "before-no-prediction": bare_b.step})
    layers: list[nn.Module] = []
    n_in = t.data.n_inputs
    for _ in range(a.depth):
        layers += [nn.Linear(n_in, 64), nn.Tanh()]
        n_in = 64
    net = nn.Sequential(*layers, nn.Linear(n_in, t.data.n_classes))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = t.probe_inputs(len(t.data.y_train)), torch.from_numpy(t.data.y_train)
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

    kinds = {"plain": plain, **kinds}
    for f in kinds.values():
        for _ in range(12):
            f()
    res: dict[str, list[float]] = {k: [] for k in kinds}
    clock = time.thread_time
    load0 = os.getloadavg()[0]
    for _ in range(a.blocks):
        for k, f in kinds.items():
            t0 = clock()
            for _ in range(10):
                f()
            res[k].append((clock() - t0) / 10)
    med = {k: statistics.median(v) for k, v in res.items()}
    ratio = {k: v / med["plain"] for k, v in med.items()}
    print(f"depth {a.depth}, load {load0:.1f}-{os.getloadavg()[0]:.1f}, {a.blocks} blocks of 10 steps: "
          + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in med.items()))
    print(f"  ratio to plain: gradsim {ratio['gradsim']:.3f} (without prediction {ratio['gradsim-no-prediction']:.3f})"
          + (f"; before ({a.src}) {ratio['before']:.3f} (without prediction {ratio['before-no-prediction']:.3f})"
             if a.src else ""))


if __name__ == "__main__":
    main()
