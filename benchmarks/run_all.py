"""Run every benchmark in turn and print their tables (one command for the lot).

    python benchmarks/run_all.py [--quick]

Each script measures its figures side by side in one run (ratios, not
absolute times, are what to compare on this shared machine). --quick uses
fewer repetitions and skips the 1e6-step run length.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    runs = [
        ("Instrumentation overhead (Trainer vs bare loop)", ["overhead.py"] + (["--blocks", "15"] if a.quick else [])),
        ("Scaling with depth and run length", ["scaling.py"] + (["--lengths", "1000,10000,100000", "--train-up-to", "1000"] if a.quick else [])),
        ("Plot refresh at 100 layers x 100,000 steps", ["plot_refresh.py"] + (["--frames", "15"] if a.quick else [])),
        ("Window vs headless, GUI latency, start-up", ["gui_speed.py"] + (["--rounds", "1", "--whole-rounds", "1", "--startup-runs", "1"] if a.quick else [])),
        ("Replay drift of a last-bit difference (the grader's tolerance)", ["replay_drift.py"] + (["--steps", "200"] if a.quick else [])),
        ("Grading: replayed submissions, one process vs all cores vs Dask", ["grading.py"] + (["--n", "10", "--steps", "100"] if a.quick else [])),
    ]
    failed = 0
    for title, args in runs:
        print(f"\n=== {title}: {' '.join(args)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]], env=env, cwd=HERE.parent)
        print(f"--- {time.perf_counter() - t0:.0f} s, exit {rc}", flush=True)
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
