"""Prediction vs measurement over training, and where the theory's domain ends (docs/theory.md).

For every preset: the measured and predicted per-layer gain (geometric means over
the hidden-to-hidden transitions) and the theory-domain verdict at several steps
of seed 0; the first step each of seeds 0-4 is out of domain; and, at step 0 over
10 fresh draws, the scatter of the log gain error next to the finite-width
standard error the rule assumes (gradsim/theory_domain.py).

    .venv/bin/python benchmarks/theory_domain.py [--seeds N]
"""
from __future__ import annotations

import argparse
import math

import numpy as np

from gradsim.teaching.presets import load_preset, preset_names
from gradsim.theory_domain import Z, Verdict, session_verdicts, verdict_at
from gradsim.train.trainer import Trainer

STEPS = (0, 100, 250, 500, 1000, 1490)


def _run(name: str, seed: int, steps: int):
    p = load_preset(name)
    return Trainer(p.config.with_changes(seed=seed), list(p.events)).run(steps)


def _verdict(session, row: int) -> Verdict:
    v = verdict_at(session, row)
    if v is None:
        raise RuntimeError(f"step {int(session.steps[row])}: no recorded prediction to test")
    return v


def _gains(session, row: int) -> tuple[float, float]:
    d = int(session.config["depth"])
    g = session.layer_metric("act_grad_norm")[row].astype(np.float64)
    p = session.layer_metric("pred_gain")[row].astype(np.float64)
    return math.exp(float(np.mean(np.log(g[: d - 1] / g[1:d])))), math.exp(float(np.mean(np.log(p[: d - 1]))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10, help="fresh draws at step 0 (default 10)")
    args = ap.parse_args()
    names = preset_names()

    print("| preset | step | measured gain | predicted gain | measured / predicted | allowed | at layer 1 | in domain |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        total = load_preset(name).config.steps
        s = _run(name, 0, min(total, max(STEPS) + 1))
        for step in STEPS:
            if step >= total:
                continue
            row = int(np.flatnonzero(s.steps == step)[0])
            v = _verdict(s, row)
            m, p = _gains(s, row)
            lo, hi = v.allowed
            print(f"| {name} | {step} | {m:.3f} | {p:.3f} | {v.gain_error:.3f} | {lo:.3f}-{hi:.3f} | "
                  f"x{v.profile_error:.3g} | {'yes' if v.in_domain else '**no**'} |")

    print()
    print("| preset | first step out of domain, seeds 0-4 | share of recorded steps 500+ out of domain |")
    print("|---|---|---|")
    for name in names:
        firsts, shares = [], []
        for seed in range(5):
            total = load_preset(name).config.steps
            s = _run(name, seed, total)
            flag, _ = session_verdicts(s)
            out = s.steps[np.isfinite(flag) & (flag == 0)]
            firsts.append(str(int(out[0])) if out.size else "never")
            late = np.isfinite(flag) & (s.steps >= 500)
            shares.append(float(np.mean(flag[late] == 0)) if late.any() else float("nan"))
        print(f"| {name} | {', '.join(firsts)} | {np.nanmean(shares):.0%} |")

    print()
    print(f"Step 0 over seeds 0-{args.seeds - 1}: ln(measured / predicted) minus the rule's bias")
    print()
    print("| preset | mean | sd over seeds | largest | finite-width SE (independent transitions) | sd / SE | tolerance (Z = %g) | all in domain |" % Z)
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        e, ok = [], []
        for seed in range(args.seeds):
            s = _run(name, seed, 1)
            v = _verdict(s, 0)
            e.append(math.log(v.gain_error) - v.bias)
            ok.append(v.in_domain)
        arr = np.array(e)
        se = v.tolerance / Z
        print(f"| {name} | {arr.mean():+.4f} | {arr.std(ddof=1):.4f} | {np.abs(arr).max():.4f} | {se:.4f} | "
              f"{arr.std(ddof=1) / se:.2f} | {v.tolerance:.4f} | {'yes' if all(ok) else 'NO'} |")

    print()
    print("vanishing-sigmoid with batch norm from step 0 (seeds 0-4): the normalised path of the rule")
    print()
    print("| optimizer | step 0: measured / predicted (in domain) | step 60 | step 120 |")
    print("|---|---|---|---|")
    base = load_preset("vanishing-sigmoid").config.with_changes(batchnorm=True)
    for label, changes in (("sgd lr 0.1", {}), ("adam lr 0.001", {"optimizer": "adam", "lr": 0.001}), ("adam lr 0.01", {"optimizer": "adam", "lr": 0.01})):
        runs = [Trainer(base.with_changes(seed=seed, **changes)).run(121) for seed in range(5)]
        cells = []
        for step in (0, 60, 120):
            parts = []
            for s in runs:
                v = _verdict(s, int(np.flatnonzero(s.steps == step)[0]))
                parts.append(f"{v.gain_error:.2f}{'' if v.in_domain else '*'}")
            cells.append(", ".join(parts))
        print(f"| {label} | {' | '.join(cells)} |")
    print()
    print("(* out of domain)")


if __name__ == "__main__":
    main()
