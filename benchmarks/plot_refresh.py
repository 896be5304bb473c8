"""Time a frame of the plot panel on a 100-layer x 100,000-step store, offscreen.

A frame is ``PlotPanel.refresh`` plus the repaint it causes. Each phase prints
the median and p95 of three figures per frame:

* ``wall``: elapsed time. On a shared machine this includes waiting for a core
  (at a load average of 4 on 2 cores, about half of it), so it is stated with
  the load average measured around the phase.
* ``CPU``: the GUI thread's CPU time (``time.thread_time``): what the frame
  itself costs, and what it takes from a training thread that needs the same
  interpreter lock. Steadier than wall time under load.
* ``refresh``: wall time of ``refresh`` alone (setting data, no painting).

Phases (repaint through the event loop, as the running app paints):

* ``live``: the store grows by ``--rows-per-frame`` rows before each
  ``refresh(store)`` (33 rows at 30 Hz is ~1000 steps/s), exactly what the
  window's redraw timer calls while a run trains. **The headline figure.**
* ``forced``: ``refresh(store, force=True)`` on an unchanged store: every item
  gets its data again (a toggle or branch switch redraws this way).
* ``cold``: ``reset()`` before each refresh, so the whole 400 MB store is
  re-read (a metric switch, a thinning of the store, a loaded session).
* with ``--grab``, the same phases repainting the whole panel with
  ``panel.grab()`` (a worst case: everything painted, no cache reused).

Side by side: ``--against REV`` runs this script on the code of a git revision
(or a folder holding ``gradsim/`` and ``ui/``) and on this checkout, in
alternating whole processes, ``--rounds`` times, and prints both with their
ratio and the load average. The budget is one frame of a 60 Hz screen:
median < 16 ms. Not a pass/fail test: it prints figures.

    QT_QPA_PLATFORM=offscreen python benchmarks/plot_refresh.py [--layers 100] [--steps 100000]
    QT_QPA_PLATFORM=offscreen python benchmarks/plot_refresh.py --against 4477f83 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]


def _code_dir(argv: list[str]) -> Path:
    """``--code DIR``: import gradsim and ui from DIR (the code under test), before anything imports them."""
    for i, a in enumerate(argv):
        if a == "--code" and i + 1 < len(argv):
            return Path(argv[i + 1]).resolve()
        if a.startswith("--code="):
            return Path(a.split("=", 1)[1]).resolve()
    return ROOT


PHASES = ("live", "forced", "cold")


def build_store(n_layers: int, n_steps: int, extra: int):
    """A fake vanishing run of ``n_steps`` rows, and ``extra`` more rows for the live phase.

    A few nan/inf/0 cells make the non-finite paths timed too.
    """
    import numpy as np

    from gradsim.metrics import LAYER_INDEX, LAYER_METRICS, STEP_METRICS
    from gradsim.session.store import Rows, Session
    from ui.plots.demo_data import fill_demo

    total = n_steps + extra
    steps = np.zeros(total, np.int64)
    scalars = np.zeros((total, len(STEP_METRICS)), np.float64)
    layers = np.zeros((total, n_layers, len(LAYER_METRICS)), np.float32)
    has_stats = np.zeros(total, bool)
    events = fill_demo(steps, scalars, layers, has_stats, "vanishing")
    g = LAYER_INDEX["grad_norm"]
    layers[n_steps // 3, 0, g] = np.nan
    layers[n_steps // 2, 1, g] = np.inf
    layers[n_steps // 2 + 1, 2, g] = 0.0
    n = n_steps
    store = Session.from_arrays(steps[:n], scalars[:n], layers[:n], has_stats[:n], max_memory_mb=1e6)
    live = Rows(steps[n:], scalars[n:], layers[n:], has_stats[n:])
    for ev in events:
        store.add_event(ev.step, ev.kind, ev.value)
    for i in range(1, 20):  # a busier schedule than the demo's
        store.add_event(i * n_steps // 20, "lr", f"{0.1 / i:.3g}")
    store.events.sort(key=lambda e: e.step)
    return store, live


def frame(panel, store, app, grab: bool, force: bool) -> tuple[float, float, float]:
    """One refresh plus the repaint it causes: (refresh ms, wall ms, CPU ms of this thread).

    ``grab=False``: the event loop paints what changed (what the running app
    does). ``grab=True``: ``panel.grab()`` renders the whole panel from scratch
    into a pixmap, a worst case.
    """
    c0 = time.thread_time()
    t0 = time.perf_counter()
    panel.refresh(store, force=force)
    t1 = time.perf_counter()
    if grab:
        panel.grab()
    app.processEvents()
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t0) * 1e3, (time.thread_time() - c0) * 1e3


def summary(times: list[tuple[float, float, float]], load: tuple[float, float]) -> dict:
    import numpy as np

    cols = {"refresh": [t[0] for t in times], "wall": [t[1] for t in times], "cpu": [t[2] for t in times]}
    out: dict = {"n": len(times), "load": list(load)}
    for k, v in cols.items():
        out[k] = {"median": statistics.median(v), "p95": float(np.percentile(v, 95))}
    return out


def report(name: str, s: dict) -> None:
    print(
        f"{name:7s} n={s['n']:3d}  wall median {s['wall']['median']:6.1f} ms  p95 {s['wall']['p95']:6.1f}"
        f"  | CPU median {s['cpu']['median']:6.1f} ms  p95 {s['cpu']['p95']:6.1f}"
        f"  | refresh median {s['refresh']['median']:5.1f} ms  | load {s['load'][0]:.1f}-{s['load'][1]:.1f}",
        flush=True,
    )


def measure(args: argparse.Namespace) -> dict:
    """Run every phase in this process; returns the figures (also printed)."""
    import pyqtgraph as pg

    from gradsim.session.store import Rows
    from ui.plots.panel import PlotPanel

    app = pg.mkQApp("plot_refresh")
    t = time.perf_counter()
    n_live = 2 * args.frames * args.rows_per_frame
    store, live_rows = build_store(args.layers, args.steps, n_live)
    pos = 0  # next live row to append
    print(f"code: {_code_dir(sys.argv)}", flush=True)
    print(f"store: {args.layers} layers x {len(store)} steps, {store.nbytes / 1e6:.0f} MB, built in {time.perf_counter() - t:.1f} s")

    panel = PlotPanel()
    w, h = (int(v) for v in args.size.split("x"))
    panel.resize(w, h)
    panel.show()
    app.processEvents()

    first = frame(panel, store, app, grab=False, force=True)
    print(f"first refresh (cold caches): wall {first[1]:.1f} ms (refresh {first[0]:.1f} ms, CPU {first[2]:.1f} ms)")
    print(
        f"heatmap image {panel.heatmap.image_data.shape[1]} columns x {panel.heatmap.image_data.shape[0]} layers; "
        f"curve points {len(panel.layer_curves.curves[0].getOriginalDataset()[0])}; events {len(store.events)}"
    )
    for _ in range(3):  # settle: the first frames lay out labels whose text changes
        frame(panel, store, app, grab=False, force=True)

    results: dict = {"code": str(_code_dir(sys.argv)), "cores": os.cpu_count()}
    for grab in (False, True) if args.grab else (False,):
        how = "grab()" if grab else "event loop"
        print(f"-- repaint through {how}")
        suffix = "_grab" if grab else ""
        load0 = os.getloadavg()[0]
        live = []
        for _ in range(args.frames):
            k = args.rows_per_frame
            block, pos = pos, pos + k
            store.append_rows(Rows(live_rows.steps[block:pos], live_rows.scalars[block:pos], live_rows.layers[block:pos], live_rows.has_stats[block:pos]))
            live.append(frame(panel, store, app, grab, force=False))  # what the window's timer calls
        results["live" + suffix] = summary(live, (load0, os.getloadavg()[0]))
        report("live", results["live" + suffix])
        load0 = os.getloadavg()[0]
        forced = [frame(panel, store, app, grab, force=True) for _ in range(args.frames)]
        results["forced" + suffix] = summary(forced, (load0, os.getloadavg()[0]))
        report("forced", results["forced" + suffix])
        load0 = os.getloadavg()[0]
        cold = []
        for _ in range(args.cold_frames):
            panel.reset()
            cold.append(frame(panel, store, app, grab, force=True))
        results["cold" + suffix] = summary(cold, (load0, os.getloadavg()[0]))
        report("cold", results["cold" + suffix])

    t0 = time.perf_counter()
    for _ in range(1000):
        panel.refresh(store)
    results["unchanged_us"] = (time.perf_counter() - t0) * 1e3
    print(f"unchanged store early exit: {results['unchanged_us']:.3f} us per call")
    panel.close()
    del panel
    return results


def _checkout(rev: str, into: Path) -> Path:
    """A folder holding gradsim/, ui/ and resources/ of ``rev`` (or ``rev`` itself if it is such a folder)."""
    p = Path(rev)
    if (p / "ui" / "plots").is_dir() and (p / "gradsim").is_dir():
        return p.resolve()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "gradsim", "ui", "resources"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def side_by_side(args: argparse.Namespace) -> int:
    """Alternate whole processes of the two code versions; print medians over rounds and the ratio."""
    with tempfile.TemporaryDirectory(prefix="plot_refresh_") as tmp:
        before = _checkout(args.against, Path(tmp))
        versions = {f"before ({args.against})": before, "after (this checkout)": ROOT}
        skip_next = False
        forwarded = []  # this command line without --against/--rounds, for each measuring process
        for a in sys.argv[1:]:
            if skip_next:
                skip_next = False
                continue
            if a in ("--against", "--rounds"):
                skip_next = True
                continue
            if a.startswith(("--against=", "--rounds=")):
                continue
            forwarded.append(a)
        runs: dict[str, list[dict]] = {k: [] for k in versions}
        for r in range(args.rounds):
            order = list(versions.items()) if r % 2 == 0 else list(reversed(versions.items()))
            for name, code in order:
                out = Path(tmp) / f"r{r}_{len(runs[name])}_{'b' if code == before else 'a'}.json"
                print(f"\n=== round {r + 1}/{args.rounds}: {name}", flush=True)
                rc = subprocess.call([sys.executable, __file__, "--code", str(code), "--json", str(out), *forwarded])
                if rc != 0:
                    print(f"{name}: exit status {rc}", file=sys.stderr)
                    return rc
                runs[name].append(json.loads(out.read_text()))
    print(f"\n=== side by side, {args.rounds} rounds of whole processes (alternating), {args.layers} layers x {args.steps} steps, {os.cpu_count()} cores")
    print("median over rounds of each round's median (ms); load = 1-min load average during the phase")
    phases = [p for p in runs[next(iter(runs))][0] if isinstance(runs[next(iter(runs))][0][p], dict)]
    names = list(versions)
    print(f"{'phase':12s} {'figure':8s} {'before':>8s} {'after':>8s} {'after/before':>13s}   load")
    for ph in phases:
        loads = [v for name in names for run in runs[name] for v in run[ph]["load"]]
        for fig in ("wall", "cpu", "refresh"):
            b = statistics.median(run[ph][fig]["median"] for run in runs[names[0]])
            a = statistics.median(run[ph][fig]["median"] for run in runs[names[1]])
            load = f"{min(loads):.1f}-{max(loads):.1f}" if fig == "wall" else ""
            print(f"{ph:12s} {fig:8s} {b:8.1f} {a:8.1f} {a / b:13.2f}   {load}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--cold-frames", type=int, default=5)
    parser.add_argument("--rows-per-frame", type=int, default=33)
    parser.add_argument("--size", default="1600x1000", help="panel size WxH in pixels")
    parser.add_argument("--grab", action="store_true", help="also time full repaints through panel.grab() (worst case)")
    parser.add_argument("--code", help="import gradsim and ui from this folder (default: this checkout)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--against", metavar="REV", help="side by side with a git revision (or a folder with gradsim/ and ui/)")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: processes per version, alternating")
    args = parser.parse_args()
    if args.against:
        return side_by_side(args)
    sys.path.insert(0, str(_code_dir(sys.argv)))
    results = measure(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
