"""A pace students can follow, enforced in the engine's loop (gradsim/service/loop.py): at most N steps
a second, a pause exactly at step N, a pause when a branch of a forked run diverges.

The rate is read from the times the engine itself recorded at the start of each step
(``EngineLoop.step_times``), never from how long the test took.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from gradsim.config import RunConfig
from gradsim.service import protocol as ep
from tests.engine.test_engine_process import WAIT_S, ChildEngine, ThreadEngine, snapshots, until


@pytest.fixture
def cfg() -> RunConfig:
    return RunConfig(dataset="moons", n_samples=120, depth=2, width=8, batch_size=16, steps=10_000, stats_every=50)


def _wait_steps(engine: ThreadEngine, n: int) -> list:
    """Reports until the engine recorded ``n`` step starts (the deadline only bounds a hang)."""
    seen: list = []
    deadline = time.monotonic() + WAIT_S
    while len(engine.loop.step_times) < n:
        assert time.monotonic() < deadline, "the engine stopped stepping"
        try:
            seen.append(engine.recv(timeout=0.05))
        except Exception:  # queue.Empty: nothing reported yet
            pass
    return seen


@pytest.mark.parametrize("hz", [10.0, 30.0])
def test_a_set_speed_holds_the_rate(cfg, hz):
    engine = ThreadEngine()
    try:
        engine.send(ep.SetPace(steps_per_s=hz))
        engine.send(ep.ResetRun(cfg, generation=1))
        engine.send(ep.StartRun())
        _wait_steps(engine, 16)
        times = list(engine.loop.step_times)[:16]
    finally:
        engine.close()
    steps = [s for s, _ in times]
    assert steps == list(range(16))
    t = np.array([t for _, t in times])
    gaps = np.diff(t)
    # Never faster than asked (a step is due one period after the last one started) ...
    assert gaps.min() >= 1.0 / hz - 1e-4, gaps
    # ... and, over the window of steps, at the rate asked: (steps - 1) / elapsed, measured by the engine.
    rate = (len(t) - 1) / (t[-1] - t[0])
    assert 0.6 * hz <= rate <= hz


def test_full_speed_is_not_paced(cfg):
    """Back to full speed (None): steps follow each other with no wait of a period between them."""
    engine = ThreadEngine()
    try:
        engine.send(ep.SetPace(steps_per_s=1.0))
        engine.send(ep.SetPace(steps_per_s=None))
        engine.send(ep.ResetRun(cfg, generation=1))
        engine.send(ep.StartRun())
        _wait_steps(engine, 20)
        t = np.array([t for _, t in list(engine.loop.step_times)[:20]])
    finally:
        engine.close()
    assert np.median(np.diff(t)) < 0.5  # at 1 step/s every gap would be >= 1 s


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_pause_at_step_n_stops_exactly_there(cfg, kind):
    engine = ThreadEngine() if kind == "thread" else ChildEngine()
    try:
        engine.send(ep.SetPace(pause_at=7))
        engine.send(ep.ResetRun(cfg, generation=3))
        engine.send(ep.StartRun())
        seen: list = []
        report = until(engine, ep.PacePaused, seen)
        assert (report.generation, report.step) == (3, 7)
        last = snapshots(seen)[-1]
        assert last.step == 7 and not last.running
        rows = np.concatenate([s.rows.steps for s in snapshots(seen)])
        assert rows.tolist() == list(range(7))  # steps 0..6 done, no eighth
        assert [(e.kind, e.step) for s in snapshots(seen) for e in s.rows.events][-1] == ("pause", 7)
        # Resumed, it goes past N and does not stop there again.
        engine.send(ep.StepRun(2))
        while True:
            r = engine.recv()
            assert not isinstance(r, ep.PacePaused)
            if isinstance(r, ep.Snapshot) and r.step == 9:
                break
    finally:
        engine.close()


def test_a_bad_pace_is_refused_when_built():
    with pytest.raises(ValueError, match="steps_per_s=0"):
        ep.SetPace(steps_per_s=0)
    with pytest.raises(ValueError, match="pause_at=0"):
        ep.SetPace(pause_at=0)


def test_pause_on_divergence_stops_a_forked_run_when_one_branch_diverges():
    from gradsim.commands import SetLR

    cfg = RunConfig(dataset="moons", n_samples=120, depth=2, width=8, batch_size=16, steps=400, stats_every=50,
                    activation="relu")  # tanh saturates: its loss stays finite at any learning rate
    engine = ThreadEngine()
    try:
        engine.send(ep.SetPace(pause_on_divergence=True))
        engine.send(ep.ResetRun(cfg, generation=1))
        seen: list = []
        engine.send(ep.StepRun(2))
        while not any(s.step == 2 for s in snapshots(seen)):
            seen.append(engine.recv())
        engine.send(ep.ForkRun())
        until(engine, ep.Forked, seen)
        engine.send(ep.BranchCommand(1, SetLR(1e30)))  # branch B blows up, A goes on
        engine.send(ep.StartRun())
        report = until(engine, ep.PacePaused, seen)
        assert not [r for r in seen if isinstance(r, (ep.CommandFailed, ep.Finished))]
        b = engine.loop._fork
        a = engine.loop._trainer
        assert b.diverged_at is not None and a.diverged_at is None and not a.finished
        assert report.step == a.step_index and "branch B diverged" in report.why
        assert b.step_index == b.diverged_at + 1  # paused right after the step that diverged
    finally:
        engine.close()


def test_pause_on_toggle_stops_after_the_first_step_a_scheduled_change_trained():
    """A scheduled change applies at the start of its step; the pause comes right after that step,
    so the first step trained with the change is the last one shown."""
    from gradsim.commands import Scheduled, SetBatchNorm

    cfg = RunConfig(dataset="moons", n_samples=120, depth=2, width=8, batch_size=16, steps=400, stats_every=50)
    engine = ThreadEngine()
    try:
        engine.send(ep.SetPace(pause_on_toggle=True))
        engine.send(ep.ResetRun(cfg, (Scheduled(12, SetBatchNorm(True)),), generation=1))
        engine.send(ep.StartRun())
        seen: list = []
        report = until(engine, ep.PacePaused, seen)
        t = engine.loop._trainer
        assert report.step == t.step_index == 13  # step 12 trained with batch norm, then paused
        assert "batchnorm" in report.why and "step 12" in report.why
        events = [(e.kind, e.step) for s in snapshots(seen) for e in s.rows.events]
        assert ("batchnorm", 12) in events and events[-1] == ("pause", 13)
        # Resumed, it runs on and does not pause again (no change since).
        engine.send(ep.StepRun(5))
        while True:
            r = engine.recv()
            assert not isinstance(r, ep.PacePaused)
            if isinstance(r, ep.Snapshot) and r.step == 18:
                break
    finally:
        engine.close()


def test_pause_on_toggle_stops_after_a_toggle_sent_while_running_and_not_without_the_setting():
    from gradsim.commands import SetLR

    cfg = RunConfig(dataset="moons", n_samples=120, depth=2, width=8, batch_size=16, steps=100_000, stats_every=50)
    engine = ThreadEngine()
    try:
        engine.send(ep.SetPace(steps_per_s=200.0, pause_on_toggle=True))
        engine.send(ep.ResetRun(cfg, generation=1))
        engine.send(ep.StartRun())
        _wait_steps(engine, 5)
        engine.send(SetLR(0.01))
        seen: list = []
        report = until(engine, ep.PacePaused, seen)
        t = engine.loop._trainer
        lr_step = [e.step for e in t.session.events if e.kind == "lr"][-1]
        assert report.step == t.step_index == lr_step + 1 and "lr" in report.why
    finally:
        engine.close()
    # Without the setting the same toggle does not pause.
    engine = ThreadEngine()
    try:
        engine.send(ep.SetPace(steps_per_s=200.0))
        engine.send(ep.ResetRun(cfg, generation=1))
        engine.send(ep.StartRun())
        _wait_steps(engine, 5)
        engine.send(SetLR(0.01))
        n = len(engine.loop.step_times)
        seen = _wait_steps(engine, n + 10)
        assert not [r for r in seen if isinstance(r, ep.PacePaused)]
    finally:
        engine.close()
