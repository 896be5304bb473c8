"""What the decision-boundary panel costs training: steps/s with and without it, side by side.

    .venv/bin/python benchmarks/boundary_overhead.py [--depth 20] [--blocks 6] [--block-s 3]

The panel's grid is computed in the training thread between steps, no sooner
than ``cost / MAX_SHARE`` (and ``MIN_PERIOD_S``) after the last one
(ui/learned_view.py). This script applies the same rule to a headless Trainer
and alternates blocks with and without it, so a busy machine slows both alike;
it prints the steps/s of each and the ratio (the budget: at most 5 %
slower).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import torch

    from gradsim.config import RunConfig
    from gradsim.teaching.learned import boundary_grid
    from gradsim.train.trainer import Trainer
    from ui.learned_view import MAX_SHARE, MIN_PERIOD_S

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--blocks", type=int, default=20, help="blocks of each kind, alternating")
    p.add_argument("--block-s", type=float, default=1.0)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = RunConfig(dataset="spiral", depth=args.depth, width=args.width, steps=10**8, activation="relu", init="he_normal")
    trainer = Trainer(cfg)
    trainer.run(50)  # warm up
    steps = {False: 0, True: 0}
    spent = {False: 0.0, True: 0.0}
    costs = []
    panel_clock = 0.0  # time spent in panel blocks: the pacing runs on it, as if they were one run
    next_due = 0.0
    for i in range(2 * args.blocks):
        with_panel = i % 2 == 1
        n, t0 = 0, time.perf_counter()
        while (now := time.perf_counter()) - t0 < args.block_s:
            if with_panel and panel_clock + (now - t0) >= next_due:
                c0 = time.perf_counter()
                boundary_grid(trainer)
                cost = time.perf_counter() - c0
                costs.append(cost)
                next_due = panel_clock + (time.perf_counter() - t0) + max(MIN_PERIOD_S, cost / MAX_SHARE)
            trainer.step()
            n += 1
        elapsed = time.perf_counter() - t0
        if with_panel:
            panel_clock += elapsed
        steps[with_panel] += n
        spent[with_panel] += elapsed
    base, panel = steps[False] / spent[False], steps[True] / spent[True]
    print(f"depth {args.depth}, width {args.width}: grid cost median {statistics.median(costs) * 1e3:.1f} ms "
          f"({len(costs)} grids)")
    print(f"steps/s without the panel {base:.1f}, with it {panel:.1f}: ratio {panel / base:.3f} "
          f"({(1 - panel / base) * 100:.1f} % slower; budget 5 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
