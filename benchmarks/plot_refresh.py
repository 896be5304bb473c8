"""Time PlotPanel.refresh on a 100-layer x 100,000-step store, offscreen.

Prints median and p95 milliseconds per frame (refresh + repaint via grab()) for:

* ``forced``: ``refresh(store, force=True)`` on an unchanged store: every item
  gets its data again (setImage, setData, markers) and the panel is repainted;
  per-bin reductions of rows already seen are reused.
* ``live``: the store grows by ``--rows-per-frame`` rows before each forced
  refresh, as when the training thread feeds the mirror session (33 rows at
  30 Hz is ~1000 steps/s).
* ``cold``: ``reset()`` before each refresh, so the whole 400 MB store is
  re-read (what a metric switch, a thinning of the store or a loaded session
  costs once).

The budget is one frame of the ~30 Hz redraw timer: median < 33 ms (ideally < 16 ms).
Not a pass/fail test (DESIGN.md section 1): it prints figures.

    QT_QPA_PLATFORM=offscreen python benchmarks/plot_refresh.py [--layers 100] [--steps 100000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402

from gradsim.metrics import LAYER_INDEX  # noqa: E402
from gradsim.metrics import LAYER_METRICS, STEP_METRICS  # noqa: E402
from gradsim.session import Rows, Session  # noqa: E402
from ui.plots.demo_data import fill_demo  # noqa: E402
from ui.plots.panel import PlotPanel  # noqa: E402


def build_store(n_layers: int, n_steps: int, extra: int) -> tuple[Session, Rows]:
    """A fake vanishing run of ``n_steps`` rows, and ``extra`` more rows for the live phase.

    A few nan/inf/0 cells make the non-finite paths timed too.
    """
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


def frame(panel: PlotPanel, store: Session, app: pg.QtWidgets.QApplication, grab: bool) -> tuple[float, float, float]:
    """One forced refresh plus the repaint it causes; returns (refresh ms, total ms).

    ``grab=False``: the event loop paints what changed (what the running app
    does). ``grab=True``: ``panel.grab()`` renders the whole panel from scratch
    into a pixmap, a worst case. The third figure is the CPU time of this
    thread for the whole frame: on a shared machine it is steadier than wall time.
    """
    c0 = time.thread_time()
    t0 = time.perf_counter()
    panel.refresh(store, force=True)
    t1 = time.perf_counter()
    if grab:
        panel.grab()
    app.processEvents()
    t2 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t0) * 1e3, (time.thread_time() - c0) * 1e3


def report(name: str, times: list[tuple[float, float, float]]) -> None:
    refresh = [t[0] for t in times]
    total = [t[1] for t in times]
    cpu = [t[2] for t in times]

    def p95(v: list[float]) -> float:
        return float(np.percentile(v, 95))

    print(
        f"{name:7s} n={len(times):3d}  total median {statistics.median(total):7.1f} ms  p95 {p95(total):7.1f} ms"
        f"  | refresh only median {statistics.median(refresh):6.1f} ms  p95 {p95(refresh):6.1f} ms"
        f"  | CPU median {statistics.median(cpu):6.1f} ms  p95 {p95(cpu):6.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--cold-frames", type=int, default=5)
    parser.add_argument("--rows-per-frame", type=int, default=33)
    parser.add_argument("--size", default="1600x1000", help="panel size WxH in pixels")
    args = parser.parse_args()

    app = pg.mkQApp("plot_refresh")
    t = time.perf_counter()
    store, live_rows = build_store(args.layers, args.steps, 2 * args.frames * args.rows_per_frame)
    pos = 0  # next live row to append
    print(f"store: {args.layers} layers x {len(store)} steps, {store.nbytes / 1e6:.0f} MB, built in {time.perf_counter() - t:.1f} s")

    panel = PlotPanel()
    w, h = (int(v) for v in args.size.split("x"))
    panel.resize(w, h)
    panel.show()
    app.processEvents()

    first = frame(panel, store, app, grab=False)
    print(f"first refresh (cold caches): {first[1]:.1f} ms (refresh {first[0]:.1f} ms, CPU {first[2]:.1f} ms)")
    print(
        f"heatmap image {panel.heatmap.image_data.shape[1]} columns x {panel.heatmap.image_data.shape[0]} layers; "
        f"curve points {len(panel.layer_curves.curves[0].getOriginalDataset()[0])}; events {len(store.events)}"
    )

    for grab in (False, True):
        how = "grab()" if grab else "event loop"
        print(f"-- repaint through {how}")
        report("forced", [frame(panel, store, app, grab) for _ in range(args.frames)])
        live = []
        for _ in range(args.frames):
            k = args.rows_per_frame
            block, pos = pos, pos + k
            store.append_rows(Rows(live_rows.steps[block:pos], live_rows.scalars[block:pos], live_rows.layers[block:pos], live_rows.has_stats[block:pos]))
            live.append(frame(panel, store, app, grab))
        report("live", live)
        cold = []
        for _ in range(args.cold_frames):
            panel.reset()
            cold.append(frame(panel, store, app, grab))
        report("cold", cold)

    t0 = time.perf_counter()
    for _ in range(1000):
        panel.refresh(store)
    print(f"unchanged store early exit: {(time.perf_counter() - t0) * 1e3:.3f} us per call")
    panel.close()
    del panel
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
