"""How far does a last-bit difference drift over a whole exercise run? (the replay tolerance's basis)

Another torch build or CPU may sum in another order, which changes results in
the last bit. We model that by moving every initial weight by one float32 ulp
(torch.nextafter) and report, per shipped exercise, the largest relative
difference over every compared metric of every recorded step between the
perturbed run and the plain one. Replaying the plain run itself must give 0
(bitwise). The grader's cross-build tolerance (gradsim/grading/replay.py,
CROSS_BUILD_RTOL) must sit above the drift of runs that do not blow up and
well below the 1 % an edit needs to be caught.

    .venv/bin/python benchmarks/replay_drift.py [--steps N]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from gradsim.teaching.exercises import exercise_files, load_exercise
from gradsim.grading.replay import UNCOMPARED
from gradsim.metrics import STEP_METRICS
from gradsim.train.trainer import Trainer


def _run(cfg, events, nudge: bool):
    t = Trainer(cfg, events)
    if nudge:
        with torch.no_grad():
            for w in t.net.weights():
                w.copy_(torch.nextafter(w, torch.full_like(w, float("inf"))))
    t.run()
    return t.session


def _rel(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    a, b = a.astype(np.float64), b.astype(np.float64)
    fin = np.isfinite(a) & np.isfinite(b)
    pattern = int(np.sum(np.isfinite(a) != np.isfinite(b)))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(a - b)[fin] / np.maximum(np.abs(a), np.abs(b))[fin]
    r = r[np.isfinite(r)]
    return (float(r.max()) if r.size else 0.0), pattern


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=0, help="cap each run at N steps (0: the exercise's own)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cols = [i for i, m in enumerate(STEP_METRICS) if m not in UNCOMPARED]
    print(f"{'exercise':<20} {'steps':>5} {'replay':>8} {'1-ulp drift':>12} {'at step 0':>10} {'non-finite differ':>17}")
    for f in exercise_files():
        ex = load_exercise(f)
        cfg = ex.config if not args.steps else ex.config.with_changes(steps=min(args.steps, ex.config.steps))
        a, again, b = _run(cfg, ex.events, False), _run(cfg, ex.events, False), _run(cfg, ex.events, True)
        n = min(len(a), len(b))
        same, _ = _rel(np.concatenate([a.scalars[:, cols].ravel(), a.layers.ravel()]), np.concatenate([again.scalars[:, cols].ravel(), again.layers.ravel()]))
        drift, pat = _rel(np.concatenate([a.scalars[:n, cols].ravel(), a.layers[:n].ravel()]), np.concatenate([b.scalars[:n, cols].ravel(), b.layers[:n].ravel()]))
        d0, _ = _rel(np.concatenate([a.scalars[:1, cols].ravel(), a.layers[:1].ravel()]), np.concatenate([b.scalars[:1, cols].ravel(), b.layers[:1].ravel()]))
        print(f"{ex.id:<20} {a.steps_run:>5} {same:>8.1g} {drift:>12.2g} {d0:>10.2g} {pat:>17}")


if __name__ == "__main__":
    main()
