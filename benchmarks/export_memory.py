"""Memory of export: streamed rows keep the peak flat as the run and the store grow.

    python benchmarks/export_memory.py [--steps 5000,200000] [--depth 4] [--cap-mb 16]
                                       [--full-store-mb 256] [--src PATH]

1. Peak RSS of whole ``python -m gradsim run --max-memory CAP`` processes (train
   and export) at each step count: with a capped store and a streamed export
   it should not grow with the run (target: within 40 MB from 5,000 to
   200,000 steps at depth 4, cap 16 MB). Peak = the child's ru_maxrss (os.wait4).
2. A full store of ``--full-store-mb`` (rows fed to the store, depth 10) is
   exported in this process while a thread samples RSS every 5 ms: the
   export's peak minus the RSS just before it (target: <= 50 MB for 256 MB).

``--src`` runs another checkout's gradsim (e.g. a worktree of the commit before
the change) for the before figures.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_peak(src: Path, steps: int, depth: int, cap: float) -> tuple[float, float]:
    """(peak RSS MB, seconds) of one headless run with export."""
    out = tempfile.mkdtemp(prefix="gradsim-expmem-")
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, "-m", "gradsim", "run", "--depth", str(depth), "--width", "64", "--steps", str(steps),
           "--max-memory", str(cap), "--out", str(Path(out) / "s")]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=out, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"run failed: {' '.join(cmd)}: {p.stderr.read().decode()[-2000:] if p.stderr else ''}")
    return usage.ru_maxrss / 1024, dt


def full_store_export(store_mb: float, depth: int = 10) -> None:
    import numpy as np
    import torch  # noqa: F401  (a run's process has torch loaded; session.json names its version)

    from gradsim.session.store import Session, StepRecord
    from gradsim.session.io import export_session

    s = Session(depth + 1, {"depth": depth}, max_memory_mb=store_mb)
    layers = np.random.default_rng(0).standard_normal((depth + 1, 11)).astype(np.float32)
    scalars = np.zeros(8)
    t0 = time.perf_counter()
    step = 0
    while len(s) < s.capacity:  # fill exactly to the cap, no thinning yet
        layers[0, 0] = step
        s.append(StepRecord(step, scalars, layers, step % 10 == 0))
        step += 1
    fill_s = time.perf_counter() - t0
    before = rss_mb()
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out = Path(tempfile.mkdtemp(prefix="gradsim-expmem-")) / "full"
    t0 = time.perf_counter()
    export_session(s, out)
    dt = time.perf_counter() - t0
    stop.set()
    th.join()
    peak[0] = max(peak[0], rss_mb())
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"full store: {len(s):,} rows x {depth + 1} layers = {s.nbytes / 1e6:.0f} MB in memory (filled in {fill_s:.0f} s); "
          f"export wrote {size:,.0f} MB in {dt:.1f} s")
    print(f"  RSS before export {before:.0f} MB, peak during export {peak[0]:.0f} MB: export adds {peak[0] - before:.0f} MB (target <= 50)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", default="5000,200000")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--cap-mb", type=float, default=16.0)
    p.add_argument("--full-store-mb", type=float, default=256.0, help="0 skips the full-store export")
    p.add_argument("--src", default=str(ROOT), help="checkout whose gradsim to run")
    a = p.parse_args()
    src = Path(a.src).resolve()
    sys.path.insert(0, str(src))
    print(f"gradsim from {src}; load average {os.getloadavg()[0]:.1f}")
    peaks = []
    for n in (int(x) for x in a.steps.split(",") if x):
        peak, dt = run_peak(src, n, a.depth, a.cap_mb)
        peaks.append(peak)
        print(f"run {n:>9,} steps, depth {a.depth}, --max-memory {a.cap_mb:g}: peak RSS {peak:.0f} MB ({dt:.0f} s)")
    if len(peaks) > 1:
        print(f"  peak growth {peaks[-1] - peaks[0]:+.0f} MB from the shortest to the longest run (target within 40)")
    if a.full_store_mb > 0:
        full_store_export(a.full_store_mb)


if __name__ == "__main__":
    main()
