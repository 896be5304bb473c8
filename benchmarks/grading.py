"""Grading time per submission: N replayed submissions of exercise 1, three ways, side by side.

    .venv/bin/python benchmarks/grading.py [--n 50] [--steps S]

1. one process         gradsim check --jobs 1
2. all local cores     gradsim check --jobs <cpu count>
3. Dask LocalCluster   gradsim check --scheduler ADDRESS  (cpu-count worker processes, 1 thread each)

and the per-task overhead of the cluster path, measured directly: a task
that ships one submission's bytes to a worker and returns a grade without
replaying it (--no-replay), on the cluster versus in this process.

The submissions are copies of one honest exercise-1 run under different
names (a replay costs the same whoever made it). Figures go to
benchmarks/RESULTS.md by hand, with the machine's load at the time.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from gradsim.cli.main import main as cli
from gradsim.teaching.exercises import exercise_files, load_exercise, write_submission
from gradsim.train.trainer import Trainer


def _make_class(root: Path, n: int, steps: int | None) -> tuple[Path, list[str]]:
    exf = next(f for f in exercise_files() if f.name.startswith("01-"))
    ex = load_exercise(exf)
    if steps:
        text = exf.read_text().replace("config = { steps = 500 }", f"config = {{ steps = {steps} }}").replace("steps = 500", f"steps = {steps}")
        exf = root / "ex1.toml"
        exf.write_text(text)
        ex = load_exercise(exf)
    t = Trainer(ex.config, ex.events)
    t.run()
    answers = {a.id: a.quantity.value(t.session) for a in ex.answers}
    first = write_submission(root / "s000", ex, t.session, answers, student="student 0")
    subs = [str(first)]
    for k in range(1, n):
        dst = root / f"s{k:03d}"
        shutil.copytree(first, dst)
        subs.append(str(dst))
    return exf, subs


def _timed(args: list[str]) -> float:
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(args)
    dt = time.perf_counter() - t0
    if code != 0 or "1.00" not in out.getvalue():
        sys.exit(f"check failed ({code}):\n{out.getvalue()}\n{err.getvalue()}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="submissions (default 50)")
    ap.add_argument("--steps", type=int, default=0, help="shorten exercise 1 to S steps (default: its own 500)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    load = os.getloadavg()
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        exf, subs = _make_class(root, args.n, args.steps or None)
        base = ["check", str(exf), *subs, "--csv", str(root / "scores.csv"), "--overwrite"]
        print(f"{args.n} replayed submissions of exercise 1 ({args.steps or 500} steps, depth 20); {cores} cores; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
        rows: list[tuple[str, float]] = []

        def row(name: str, t: float) -> None:
            rows.append((name, t))
            print(f"  {name:<40} {t:8.1f} s total {t / args.n:8.3f} s per submission (load now {os.getloadavg()[0]:.1f})", flush=True)

        row("one process (--jobs 1)", _timed(base + ["--jobs", "1"]))
        row(f"all local cores (--jobs {cores})", _timed(base + ["--jobs", str(cores)]))
        t0 = time.perf_counter()
        with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50) as cluster:
            start = time.perf_counter() - t0
            addr = cluster.scheduler_address
            _timed(["check", str(exf), subs[0], "--csv", str(root / "warm.csv"), "--scheduler", addr])  # workers import torch once
            row(f"Dask LocalCluster ({cores} workers x 1 thread)", _timed(base + ["--scheduler", addr]))
            # per-task overhead: ship the bytes, grade without replay, return the grade
            n_over = args.n
            over_base = ["check", str(exf), *subs[:n_over], "--csv", str(root / "o.csv"), "--no-replay", "--overwrite"]
            t_local = _timed(over_base + ["--jobs", "1"])
            t_dask = _timed(over_base + ["--scheduler", addr])
        print(f"{'path':<40} {'total s':>8} {'s per submission':>17} {'vs one process':>15}")
        for name, t in rows:
            print(f"{name:<40} {t:8.1f} {t / args.n:17.3f} {rows[0][1] / t:14.2f}x")
        print(f"LocalCluster start-up: {start:.1f} s (not in the figures above; workers warmed with one submission)")
        size = sum(f.stat().st_size for f in Path(subs[0]).iterdir())
        print(f"Per-task overhead of the cluster path ({size / 1e6:.2f} MB of files per submission, --no-replay, {n_over} tasks): "
              f"{1000 * t_dask / n_over:.1f} ms per task on the cluster vs {1000 * t_local / n_over:.1f} ms in this process "
              f"-> {1000 * (t_dask - t_local) / n_over:.1f} ms overhead per task")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
