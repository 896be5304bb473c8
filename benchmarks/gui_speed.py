"""Speed a user feels in the window: training rate, GUI responsiveness, start-up.

Prints three figures (not a pass/fail test):

1. **Training in the window vs headless.** The same config (depth 20, 2000
   steps by default) runs in the real MainWindow (its engine in a child
   process by default, ``--engine thread`` for the in-process fallback;
   snapshots, mirror session, every plot live, offscreen) and as a bare
   Trainer loop in this process. The window run is cut into blocks of a few seconds; after each
   block it is paused while the headless loop runs for as long, so a burst of
   load from another process (this 2-core machine is shared) hits both sides of
   a pair alike. Target: median window / headless >= 0.95, with the plots
   redrawing >= 10 times a second while training. Whole runs back to back are
   printed too.
2. **GUI-thread timer latency while training**: a 20 ms QTimer in the GUI
   thread records how late each tick comes. Target: p95 < 50 ms.
3. **Launch to first painted window**: ``python main.py`` in a subprocess,
   from process launch to the window's first paint event (median of runs),
   and whether torch was already imported then (it must not be).

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_speed.py [--steps 2000] [--depth 20] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from PySide6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gradsim.config import RunConfig  # noqa: E402
from gradsim.train.trainer import Trainer  # noqa: E402


def process_cpu_s(pid: Optional[int]) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; nan elsewhere or in thread mode)."""
    if pid is None or pid == os.getpid():
        return float("nan")
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def headless_rate(config: RunConfig) -> float:
    t = Trainer(config)
    t0 = time.perf_counter()
    t.run()
    return config.steps / (time.perf_counter() - t0)


class LatencyProbe:
    """A GUI-thread timer that records how late each tick is (ms)."""

    def __init__(self, interval_ms: int = 20) -> None:
        self.interval = interval_ms / 1000.0
        self.samples: list[float] = []
        self._last = 0.0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.samples.clear()
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.samples.append(max(0.0, (now - self._last - self.interval) * 1000.0))
        self._last = now


def window_rate(app, window, config: RunConfig, probe: Optional[LatencyProbe] = None) -> tuple[float, int, float, float, float]:
    """Steps/s of a run in the window; also plot frames drawn, median frame CPU (ms), GUI CPU share, run seconds."""
    from ui.app import wait_for
    from ui.run_controller import RunState

    FAILED, FINISHED = RunState.FAILED, RunState.FINISHED

    window.builder.set_config(config)
    frames0 = window.pacer.frames
    costs: list[float] = []
    window.pacer.frame_drawn.connect(lambda: costs.append(window.pacer.frame_cost_s))
    if probe is not None:
        probe.start()
    cpu0 = time.thread_time()
    t0 = time.perf_counter()
    window.start_run()
    # poll rarely: the harness must not add GUI-thread work of its own
    if not wait_for(app, lambda: window.state in (FINISHED, FAILED), 1200, poll_ms=250):
        raise SystemExit("the window run did not finish")
    elapsed = time.perf_counter() - t0
    gui_share = (time.thread_time() - cpu0) / elapsed
    window.pacer.frame_drawn.disconnect()
    if probe is not None:
        probe.stop()
    if window.state == FAILED:
        raise SystemExit(f"the window run failed: {window.last_error}")
    frame_ms = statistics.median(costs[1:]) * 1000.0 if len(costs) > 1 else float("nan")
    return config.steps / elapsed, window.pacer.frames - frames0, frame_ms, gui_share, elapsed


def paired_blocks(app, window, config: RunConfig, block_s: float) -> tuple[list[tuple[float, float, float, float]], int, float, float]:
    """One window run of ``config.steps`` cut into blocks of ``block_s`` seconds.

    After each window block the run is paused and a headless Trainer (same
    config, in this thread) steps for the same time, so a burst of load from
    another process hits a neighbouring pair of blocks alike. Returns
    (headless, window) steps/s and (headless, engine) CPU ms per step per pair,
    the plot frames drawn while training, the GUI thread's CPU share during the
    window blocks, and their seconds. CPU per step is the load-free part of the
    comparison: what training costs the engine process against the bare loop.
    """
    from ui.app import wait_for
    from ui.run_controller import RunState

    FAILED, FINISHED, RUNNING = RunState.FAILED, RunState.FINISHED, RunState.RUNNING

    marks: list[tuple[float, int]] = []
    frames = [0]

    def on_mirror(_: int) -> None:
        if window.state == RUNNING and window.mirror is not None:
            marks.append((time.perf_counter(), window.mirror.steps_run))

    def on_frame() -> None:
        if window.state == RUNNING:
            frames[0] += 1

    window.run.mirror_updated.connect(on_mirror)
    window.pacer.frame_drawn.connect(on_frame)
    twin = Trainer(config)
    pairs: list[tuple[float, float, float, float]] = []
    gui_cpu = gui_wall = 0.0
    window.builder.set_config(config)
    window.start_run()
    wait_for(app, lambda: window.mirror is not None and window.mirror.steps_run > 0, 60, poll_ms=50)
    while window.state == RUNNING:
        marks.clear()
        engine = window.worker.engine_pid
        c0, t0, e0, s0 = time.thread_time(), time.perf_counter(), process_cpu_s(engine), window.mirror.steps_run
        wait_for(app, lambda t0=t0: time.perf_counter() - t0 >= block_s or window.state != RUNNING, block_s + 60, poll_ms=250)
        gui_cpu += time.thread_time() - c0
        gui_wall += time.perf_counter() - t0
        e_ms = (process_cpu_s(engine) - e0) * 1000.0 / max(1, window.mirror.steps_run - s0)
        if window.state != RUNNING or len(marks) < 2:
            break
        (ta, sa), (tb, sb) = marks[0], marks[-1]
        w_rate = (sb - sa) / (tb - ta)
        window.toggle_run()  # pause
        wait_for(app, lambda: not window.worker.is_running(), 30, poll_ms=5)
        h0, n0, hc0, done = time.perf_counter(), twin.step_index, time.thread_time(), 0
        while time.perf_counter() - h0 < block_s:
            if twin.finished:
                twin, n0, h0 = Trainer(config), 0, time.perf_counter()
            twin.step()
            done += 1
        h_rate = (twin.step_index - n0) / (time.perf_counter() - h0)
        h_ms = (time.thread_time() - hc0) * 1000.0 / max(1, done)
        pairs.append((h_rate, w_rate, h_ms, e_ms))
        window.toggle_run()  # resume
    if not wait_for(app, lambda: window.state in (FINISHED, FAILED), 1200, poll_ms=250):
        raise SystemExit("the window run did not finish")
    window.run.mirror_updated.disconnect(on_mirror)
    window.pacer.frame_drawn.disconnect(on_frame)
    return pairs, frames[0], gui_cpu / gui_wall if gui_wall else float("nan"), gui_wall


def startup_times(runs: int) -> list[tuple[float, str]]:
    """Launch ``python main.py`` and time the first paint (seconds) as seen from here."""
    from first_paint import first_paint  # the sibling script's launcher (benchmarks/ is on sys.path)

    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cfg_home:
            env = dict(os.environ, GRADSIM_REPORT_FIRST_PAINT="1", XDG_CONFIG_HOME=cfg_home, QT_QPA_PLATFORM=os.environ["QT_QPA_PLATFORM"])
            seconds, note = first_paint([sys.executable, str(ROOT / "main.py")], env)
            out.append((seconds, note or "?"))
    return out

def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3, help="window runs cut into paired blocks")
    p.add_argument("--block-s", type=float, default=2.5, help="seconds per block of the paired measurement")
    p.add_argument("--whole-rounds", type=int, default=2, help="whole headless/window runs back to back")
    p.add_argument("--startup-runs", type=int, default=3)
    p.add_argument("--skip-startup", action="store_true")
    p.add_argument("--mode", default="fast", help="View > Plot updates while training: fast (default), balanced or smooth")
    p.add_argument("--engine", choices=("process", "thread"), default="process",
                   help="where the window trains: a child process (the default) or the worker thread (the fallback)")
    args = p.parse_args()
    os.environ["GRADSIM_ENGINE"] = args.engine

    config = RunConfig(depth=args.depth, steps=args.steps)
    print(f"plot updates while training: {args.mode}; engine: {args.engine}; load average {os.getloadavg()[0]:.1f}")
    print(f"config: depth {config.depth}, width {config.width}, {config.dataset}, batch {config.batch_size}, "
          f"{config.steps} steps, stats every {config.stats_every}; platform {os.environ['QT_QPA_PLATFORM']}, "
          f"{os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
        app = QApplication.instance() or QApplication([])
        from ui.app import wait_for
        from ui.main_window import MainWindow

        window = MainWindow(persist=False)
        window.guard.enabled = False  # the benchmark's runs are not a user's work: no Save/Discard prompt between them
        window.set_redraw_mode(args.mode)
        shown = time.perf_counter()
        window.show()
        wait_for(app, lambda: window.worker.isRunning() and window.worker.ready, 120, poll_ms=5)
        print(f"engine: {window.worker.engine_mode} (pid {window.worker.engine_pid}; this process {os.getpid()}), "
              f"ready {time.perf_counter() - shown:.2f} s after the window was shown (started 150 ms after it)")
        headless_rate(config.with_changes(steps=50))  # warm both paths once
        window_rate(app, window, config.with_changes(steps=50))

        print("\n1. training speed, window (plots live) vs headless Trainer loop")
        print(f"   paired blocks: {args.block_s:g} s of the window run, paused, {args.block_s:g} s of a headless loop, resumed...")
        print("   run  pairs  median ratio  (min..max)   headless steps/s  window steps/s  redraws/s while training  GUI thread CPU  load")
        all_ratios: list[float] = []
        all_fps: list[float] = []
        all_cpu: list[tuple[float, float]] = []
        for r in range(args.rounds):
            pairs, frames, share, seconds = paired_blocks(app, window, config, args.block_s)
            ratios = [w / h for h, w, _, _ in pairs]
            all_ratios.extend(ratios)
            all_cpu.extend((hc, ec) for _, _, hc, ec in pairs)
            hm = statistics.median(h for h, _, _, _ in pairs)
            wm = statistics.median(w for _, w, _, _ in pairs)
            fps = frames / seconds if seconds else float("nan")
            all_fps.append(fps)
            print(f"   {r + 1:3d}  {len(pairs):5d}  {statistics.median(ratios):12.2f}  ({min(ratios):.2f}..{max(ratios):.2f})"
                  f"  {hm:16.1f}  {wm:14.1f}  {fps:24.1f}  {share:14.1%}  {os.getloadavg()[0]:4.1f}")
        med = statistics.median(all_ratios)
        print(f"   median over {len(all_ratios)} pairs: {med:.2f} (target >= 0.95): {'OK' if med >= 0.95 else 'BELOW TARGET'}; "
              f"redraws/s while training, median of rounds: {statistics.median(all_fps):.1f} (target >= 10): "
              f"{'OK' if statistics.median(all_fps) >= 10 else 'BELOW TARGET'}")
        hc = statistics.median(c for c, _ in all_cpu)
        ec = statistics.median(c for _, c in all_cpu)
        if ec == ec:  # the engine is a process of its own: its CPU per step is measured
            print(f"   CPU per step (load-free): headless {hc:.2f} ms, engine process {ec:.2f} ms -> "
                  f"{hc / ec:.2f}x headless when the engine has a core to itself")

        print("\n   whole runs, back to back (more exposed to other processes' load):")
        print("   round  headless steps/s  window steps/s  ratio  plot frames  redraws/s  GUI ms/frame  GUI thread CPU  load")
        for r in range(args.whole_rounds):
            h = headless_rate(config)
            w, frames, cost, share, seconds = window_rate(app, window, config)
            print(f"   {r + 1:5d}  {h:16.1f}  {w:14.1f}  {w / h:5.2f}  {frames:11d}  {frames / seconds:9.1f}  {cost:12.1f}"
                  f"  {share:13.1%}  {os.getloadavg()[0]:4.1f}")

        # A separate run, so the probe's own ticks do not count against the ratio above.
        probe = LatencyProbe()
        window_rate(app, window, config, probe)
        from ui.app import _dispose

        _dispose(window)  # destroy it now: left to interpreter exit, pyqtgraph can crash
        latencies = probe.samples
        p50, p95, worst = pct(latencies, 50), pct(latencies, 95), max(latencies) if latencies else float("nan")
        print("\n2. GUI-thread timer latency while training (20 ms timer, one more window run)")
        print(f"   {len(latencies)} ticks: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms "
              f"(target p95 < 50 ms): {'OK' if p95 < 50 else 'ABOVE TARGET'}")

    if not args.skip_startup:
        print("\n3. launch to first painted window (python main.py, subprocess)")
        times = startup_times(args.startup_runs)
        for t, torch_loaded in times:
            print(f"   {t:.2f} s (torch imported at first paint: {torch_loaded})")
        print(f"   median {statistics.median(t for t, _ in times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
