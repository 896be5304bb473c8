"""Is there a setting where Post-LN needs its learning-rate warm-up? A search over seeds.

    .venv/bin/python benchmarks/warmup_search.py [--grid small|wide] [--seeds 10] [--screen-seeds 3] [--jobs 1]

A measurement, not a test: the criterion is fixed here before anything runs and
nothing is tuned to make it pass. Each setting (depth, width, heads, seq_len,
task, optimizer, lr, steps) trains three arms from the same seeds with
GradSim's own Trainer:

- ``post``:    Post-LN, no warm-up,
- ``post+wu``: Post-LN, linear warm-up over ``warmup`` steps,
- ``pre``:     Pre-LN, no warm-up.

A run *learns* when its held-out accuracy at the end is >= LEARNED (0.9; the
tasks' chance level is 0.5 for recall-first/last). The warm-up story *holds* in
a setting when, over >= 10 seeds, Post-LN without warm-up learns in at most
20% of them while Post-LN with warm-up and Pre-LN without it each learn in at
least 80%.

Stage 1 screens every setting on ``--screen-seeds`` seeds; stage 2 runs
``--seeds`` seeds on the settings whose screen looked like the story (post <=
1/3 learned, post+wu and pre >= 2/3), and prints the rates of both stages.
The small grid runs in under 15 minutes on 2 cores; the wide one is for a
machine with more cores (``--jobs``).
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Held-out accuracy at which a run counts as having learned the task.
LEARNED = 0.9
#: Rates (over >= 10 seeds) at which the story holds: Post-LN alone fails, the two rescues learn.
FAILS_AT_MOST, LEARNS_AT_LEAST = 0.2, 0.8
ARMS = (("post", "post", False), ("post+wu", "post", True), ("pre", "pre", False))

# (depth, width, heads, seq_len, task, optimizer, lr, steps, warmup)
GRIDS = {
    "small": [
        (d, 32, 4, 8, "recall-last", "adam", lr, 200, 60) for d in (4, 8) for lr in (1e-3, 3e-3, 1e-2)
    ],
    # around the one setting of "small" where warm-up helped (depth 4, lr 1e-2): a higher rate,
    # more blocks, a longer warm-up
    "near": [
        (4, 32, 4, 8, "recall-last", "adam", 2e-2, 200, 60),
        (6, 32, 4, 8, "recall-last", "adam", 1e-2, 200, 60),
        (4, 32, 4, 8, "recall-last", "adam", 1e-2, 200, 120),
    ],
    "wide": [
        (d, w, 4, s, task, "adam", lr, 400, 150)
        for d, w, s, task, lr in itertools.product((6, 12, 24), (32, 64), (8, 16), ("recall-last", "seq-digits"), (1e-3, 3e-3, 1e-2))
    ],
}


def one_run(setting: tuple, arm: str, seed: int) -> float:
    """Held-out accuracy at the end of one run (NaN if it diverged)."""
    import torch

    torch.set_num_threads(1)
    from gradsim.config import RunConfig
    from gradsim.train.trainer import Trainer

    depth, width, heads, seq_len, task, opt, lr, steps, warmup = setting
    _, norm, wu = next(a for a in ARMS if a[0] == arm)
    cfg = RunConfig(
        model="transformer", dataset=task, seq_len=seq_len, depth=depth, width=width, heads=heads, activation="gelu",
        n_samples=500, batch_size=32, steps=steps, stats_every=steps, optimizer=opt, lr=lr,
        norm_position=norm, warmup_steps=warmup if wu else 0, seed=seed,
    )
    t = Trainer(cfg)
    t.run()
    return float("nan") if t.diverged_at is not None else t.evaluate()


def _job(args: tuple) -> tuple:
    setting, arm, seed = args
    return setting, arm, seed, one_run(setting, arm, seed)


def rates(settings: list[tuple], seeds: range, jobs: int) -> dict[tuple, dict[str, list[float]]]:
    work = [(s, a[0], seed) for s in settings for a in ARMS for seed in seeds]
    out: dict[tuple, dict[str, list[float]]] = {s: {a[0]: [] for a in ARMS} for s in settings}
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_job, work, chunksize=1))
    else:
        results = [_job(w) for w in work]
    for s, arm, _seed, acc in results:
        out[s][arm].append(acc)
    return out


def learned(accs: list[float]) -> float:
    return sum(a >= LEARNED for a in accs) / len(accs)  # NaN (diverged) compares False: not learned


def describe(setting: tuple) -> str:
    d, w, h, s, task, opt, lr, steps, wu = setting
    return f"depth {d:>2} width {w:>3} heads {h} seq {s:>2} {task:<12} {opt} lr {lr:g} steps {steps} warm-up {wu}"


def report(title: str, table: dict[tuple, dict[str, list[float]]]) -> None:
    print(title)
    for s, arms in table.items():
        r = {a: learned(v) for a, v in arms.items()}
        n = len(arms["post"])
        holds = n >= 10 and r["post"] <= FAILS_AT_MOST and r["post+wu"] >= LEARNS_AT_LEAST and r["pre"] >= LEARNS_AT_LEAST
        print(f"  {describe(s)}: learned post {r['post']:.2f}  post+wu {r['post+wu']:.2f}  pre {r['pre']:.2f}  "
              f"({n} seeds){'  HOLDS' if holds else ''}")
        for a, v in arms.items():
            print(f"      {a:<8} accuracy " + " ".join("div" if x != x else f"{x:.2f}" for x in v))
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", choices=sorted(GRIDS), default="small")
    p.add_argument("--screen-seeds", type=int, default=3)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--jobs", type=int, default=1)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    settings = GRIDS[a.grid]
    screen = rates(settings, range(a.screen_seeds), a.jobs)
    report(f"Stage 1: {len(settings)} settings x {a.screen_seeds} seeds (learned = held-out accuracy >= {LEARNED})", screen)
    keep = [s for s, arms in screen.items()
            if learned(arms["post"]) <= 1 / 3 and learned(arms["post+wu"]) >= 2 / 3 and learned(arms["pre"]) >= 2 / 3]
    if keep:
        full = rates(keep, range(a.seeds), a.jobs)
        report(f"Stage 2: {len(keep)} settings x {a.seeds} seeds", full)
        n_hold = sum(learned(v["post"]) <= FAILS_AT_MOST and learned(v["post+wu"]) >= LEARNS_AT_LEAST
                     and learned(v["pre"]) >= LEARNS_AT_LEAST for v in full.values())
    else:
        n_hold = 0
        print("Stage 2: no setting passed the screen.")
    print(f"The warm-up story holds in {n_hold} setting(s) of {len(settings)} "
          f"(post learns <= {FAILS_AT_MOST:.0%}, post+wu and pre >= {LEARNS_AT_LEAST:.0%}, over {a.seeds} seeds). "
          f"{time.perf_counter() - t0:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
