"""The redraw pacer's policy (ui/redraw.py), on a simulated clock: how often plots redraw while
a run trains, depending on where training runs.

Why a simulated clock: the policy is arithmetic on the GUI thread's CPU time and the wall
time; a fake clock makes a frame cost exactly what the test says (no wall-clock limits,
no dependence on this machine's load). The window's real pacing is measured by
benchmarks/gui_speed.py.
"""
from __future__ import annotations

import types

import pytest

import ui.redraw as redraw
from gradsim.config import RunConfig
from gradsim.train.trainer import Trainer
from ui.run_controller import RunController, RunState

TICK_S = redraw.REDRAW_MS / 1000.0


class FakeClock:
    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 10.0

    def perf_counter(self) -> float:
        return self.wall

    def thread_time(self) -> float:
        return self.cpu


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(redraw, "time", types.SimpleNamespace(perf_counter=c.perf_counter, thread_time=c.thread_time))
    return c


def frames_in_one_second(clock: FakeClock, engine_mode: str, mode: str, frame_cpu_s: float) -> tuple[int, float]:
    """Redraws in one simulated second of training (a new snapshot before every timer tick),
    each costing ``frame_cpu_s`` of GUI-thread CPU; and the GUI thread's CPU share."""
    run = RunController()
    run.worker.engine_mode = engine_mode  # where the engine runs, as the worker reports once it is up
    run.mirror = Trainer(RunConfig(dataset="moons", n_samples=64, depth=2, width=4, batch_size=16, steps=2)).run()
    run.state = RunState.RUNNING

    def refresh(_mirror, force: bool = False) -> None:
        clock.cpu += frame_cpu_s
        clock.wall += frame_cpu_s

    pacer = redraw.RedrawPacer(run, refresh, lambda: True)
    pacer.stop()  # the test drives the ticks
    pacer._on_engine_ready(0)  # the signal the worker sends when its engine is up
    pacer.set_mode(mode)
    start_wall, start_cpu = clock.wall, clock.cpu
    while clock.wall - start_wall < 1.0:
        clock.wall += TICK_S
        pacer._dirty = True  # a snapshot arrived
        pacer._on_timer()
    return pacer.frames, (clock.cpu - start_cpu) / (clock.wall - start_wall)


@pytest.mark.parametrize("frame_ms", [5, 20, 40])
def test_default_mode_redraws_at_least_10_a_second_when_training_has_its_own_process(qtbot, clock, frame_ms):
    frames, share = frames_in_one_second(clock, "process", redraw.DEFAULT_REDRAW_MODE, frame_ms / 1000.0)
    assert frames >= 10
    if frame_ms <= 5:
        assert frames >= 25  # cheap frames: about as often as the timer ticks


def test_default_mode_spares_the_interpreter_lock_when_training_shares_this_process(qtbot, clock):
    """The fallback: training in the worker thread; the GUI's share stays near the 5 % budget."""
    frames, share = frames_in_one_second(clock, "thread", redraw.DEFAULT_REDRAW_MODE, 0.02)
    assert 1 <= frames <= 4 and share <= 0.05 + 0.02 / 1.0


def test_the_snapshot_rate_follows_the_mode_and_the_engine(qtbot, clock):
    run = RunController()
    pacer = redraw.RedrawPacer(run, lambda *_a, **_k: None, lambda: True)
    pacer.stop()
    for key, mode in redraw.REDRAW_MODES.items():
        run.worker.engine_mode = "process"
        pacer.set_mode(key)
        assert run.worker._min_interval == pytest.approx(1 / mode.snapshot_hz)
        run.worker.engine_mode = "thread"
        pacer._on_engine_ready(0)
        assert run.worker._min_interval == pytest.approx(1 / mode.shared_snapshot_hz)
