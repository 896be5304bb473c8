"""The engine's serving loop (gradsim/service/loop.py), with no Qt: in a thread and in a real child process.

The child tests start real processes (the forkserver imports torch once per
test session; each engine after that is a fork of it).
"""
from __future__ import annotations

import functools
import os
import pickle
import queue
import threading

import numpy as np
import pytest

from gradsim.session.io import STEPS_HEADER
from gradsim.service import loop as ep
from gradsim.service import tasks as engine_tasks
from gradsim.commands import SetActivation, SetLR
from gradsim.config import RunConfig
from gradsim.session.store import STEP_INDEX
from gradsim.session.io import export_session
from gradsim.train.trainer import Trainer

WAIT_S = 120.0  # only a bound on a hang; nothing here is timed


@pytest.fixture
def cfg() -> RunConfig:
    return RunConfig(dataset="moons", n_samples=200, depth=4, width=12, batch_size=32, steps=30, stats_every=5)


class ThreadEngine:
    """An EngineLoop in a thread, fed through a queue; reports collected in a list."""

    def __init__(self) -> None:
        self.q: "queue.SimpleQueue" = queue.SimpleQueue()
        self.reports: "queue.SimpleQueue" = queue.SimpleQueue()
        self.loop = ep.EngineLoop(ep.QueueInbox(self.q), self.reports.put)
        self.thread = threading.Thread(target=self.loop.run, daemon=True)
        self.thread.start()

    def send(self, msg) -> None:
        self.q.put(msg)

    def recv(self, timeout: float = WAIT_S):
        return self.reports.get(timeout=timeout)

    def close(self) -> None:
        self.q.put(ep.Shutdown())
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


class ChildEngine:
    """A real engine process; reports read from its pipe."""

    def __init__(self) -> None:
        self.proc, self.conn = ep.start_engine_process()
        kind, pid = self.recv()
        assert kind == ep.READY and pid == self.proc.pid != os.getpid()

    def send(self, msg) -> None:
        self.conn.send(msg)

    def recv(self, timeout: float = WAIT_S):
        if not self.conn.poll(timeout):
            raise AssertionError("the engine process said nothing")
        return self.conn.recv()

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(ep.Shutdown())
            except OSError:
                pass
        self.proc.join(WAIT_S)
        self.conn.close()


@pytest.fixture(params=["thread", "process"])
def engine(request):
    e = ThreadEngine() if request.param == "thread" else ChildEngine()
    yield e
    e.close()


def until(engine, kind: str, sink: list | None = None):
    """Reports up to and including the first of ``kind``; the rest go to ``sink``."""
    while True:
        report = engine.recv()
        if report[0] == kind:
            return report
        if sink is not None:
            sink.append(report)


def snapshots(reports: list) -> list:
    return [r[1] for r in reports if r[0] == ep.SNAPSHOT]


def step_to(engine, n: int, seen: list) -> None:
    """Run ``n`` steps and wait until the engine reports them (messages sent with StepRun
    would otherwise apply before the steps: everything queued applies between steps, in order)."""
    engine.send(ep.StepRun(n))
    while not any(s.step == n for s in snapshots(seen)):
        seen.append(engine.recv())


def test_a_run_reports_every_row_once_then_finishes(engine, cfg):
    engine.send(ep.ResetRun(cfg, generation=4))
    engine.send(ep.StartRun())
    seen: list = []
    until(engine, ep.FINISHED, seen)
    snaps = snapshots(seen)
    assert all(s.generation == 4 for s in snaps)
    assert [int(x) for s in snaps for x in s.rows.steps] == list(range(cfg.steps))
    assert snaps[-1].finished and not snaps[-1].running and snaps[-1].step == cfg.steps


def test_a_toggle_applies_at_the_next_step(engine, cfg):
    """Three steps, then a change of activation and learning rate while paused: both are events
    at step 3, and row 3 is the first with the new learning rate (the trainer's own record)."""
    engine.send(ep.ResetRun(cfg))
    seen: list = []
    step_to(engine, 3, seen)
    engine.send(SetActivation("relu"))
    engine.send(SetLR(0.25))
    engine.send(ep.StartRun())
    until(engine, ep.FINISHED, seen)
    rows = [s.rows for s in snapshots(seen)]
    events = [(e.step, e.kind, e.value) for r in rows for e in r.events]
    assert events[1:] == [(3, "activation", "relu"), (3, "lr", "0.25")]
    steps = np.concatenate([r.steps for r in rows])
    lr = np.concatenate([r.scalars[:, STEP_INDEX["lr"]] for r in rows])
    assert lr[steps < 3].tolist() == [cfg.lr] * 3 and set(lr[steps >= 3].tolist()) == {0.25}


def test_a_command_without_a_run_is_refused(engine):
    engine.send(SetLR(0.5))
    kind, message = until(engine, ep.COMMAND_FAILED)
    assert "no run is active" in message


def test_tasks_answer_with_results_and_errors(engine, cfg):
    engine.send(ep.Task(1, functools.partial(engine_tasks.jacobian, n_samples=4), on_trainer=True))
    assert until(engine, ep.TASK)[1:3] == (1, False)  # no run yet
    engine.send(ep.ResetRun(cfg))
    step_to(engine, 2, [])
    engine.send(ep.Task(2, functools.partial(engine_tasks.jacobian, n_samples=4), on_trainer=True))
    engine.send(ep.Task(3, len))  # the session's row count
    answers = {}
    while len(answers) < 2:
        _, task_id, ok, payload = until(engine, ep.TASK)
        if isinstance(payload, bytes):  # through the pipe, results travel pickled
            payload = pickle.loads(payload)
        answers[task_id] = (ok, payload)
    ok, (values, step) = answers[2]
    twin = Trainer(cfg)  # the same run, headless: the engine answered from the state after two steps
    twin.run(2)
    expected, _ = engine_tasks.jacobian(twin, n_samples=4)
    assert ok and step == 2 and np.array_equal(values, expected)
    assert answers[3] == (True, 2)


class _TwoArgError(Exception):
    def __init__(self, a, b):  # pickles as cls(msg), cannot be rebuilt
        super().__init__(f"{a}/{b}")


def test_task_payloads_always_arrive_readable():
    assert pickle.loads(ep.encode_task_payload([1, 2], True)) == [1, 2]
    err = pickle.loads(ep.encode_task_payload(_TwoArgError("x", "y"), False))
    assert isinstance(err, RuntimeError) and "_TwoArgError: x/y" in str(err)
    lost = pickle.loads(ep.encode_task_payload(threading.Lock(), True))
    assert isinstance(lost, TypeError) and "cannot be sent back" in str(lost)


def test_export_writes_what_a_headless_run_writes(engine, cfg, tmp_path):
    """The engine's export of a run with a toggle equals a headless run of the same schedule,
    file by file (elapsed time and the creation stamp aside)."""
    engine.send(ep.ResetRun(cfg))
    step_to(engine, 5, [])
    engine.send(SetLR(0.3))
    engine.send(ep.StartRun())
    until(engine, ep.FINISHED)
    engine.send(ep.ExportRequest(str(tmp_path / "engine")))
    kind, path = until(engine, ep.EXPORT_FINISHED)
    t = Trainer(cfg)
    t.run(5)
    t.apply(SetLR(0.3))
    t.run()
    export_session(t.session, tmp_path / "headless")
    for name in ("steps.csv", "layers.csv", "events.csv"):
        a = (tmp_path / "engine" / name).read_text().splitlines()
        b = (tmp_path / "headless" / name).read_text().splitlines()
        if name == "steps.csv":  # elapsed_s is wall clock
            a, b = [_without_elapsed(r) for r in a], [_without_elapsed(r) for r in b]
        assert a == b, name
    assert sorted(p.name for p in (tmp_path / "engine").iterdir()) == ["events.csv", "layers.csv", "session.json", "steps.csv"]


def test_child_ends_when_its_owner_goes_away():
    """No orphans: closing the owner's end of the pipe (the window died) ends the engine."""
    child = ChildEngine()
    child.conn.close()
    child.proc.join(WAIT_S)
    assert child.proc.exitcode == 0


def test_child_ends_on_shutdown_even_while_training(cfg):
    child = ChildEngine()
    child.send(ep.ResetRun(cfg.with_changes(steps=10_000_000)))
    child.send(ep.StartRun())
    while not (r := child.recv())[0] == ep.SNAPSHOT or not r[1].running:
        pass
    child.send(ep.Shutdown())
    child.proc.join(WAIT_S)
    assert child.proc.exitcode == 0
    child.conn.close()


def test_start_method_is_never_a_plain_fork(monkeypatch):
    monkeypatch.setenv("GRADSIM_START_METHOD", "fork")
    with pytest.raises(ValueError, match="GRADSIM_START_METHOD='fork'"):
        ep.start_method()
    monkeypatch.delenv("GRADSIM_START_METHOD")
    assert ep.start_method() in ("forkserver", "spawn")


def test_exit_codes_in_words():
    assert ep.describe_exit(-9) == "killed by SIGKILL"
    assert ep.describe_exit(3) == "exit status 3"


def test_a_replication_reports_progress_and_stops_on_cancel(tmp_path, cfg):
    """Through the pipe: progress comes back while it runs; a cancel stops it between two of
    its steps; a message sent meanwhile is served after it, in order."""
    child = ChildEngine()
    try:
        child.send(ep.ReplicationRequest("ioffe2015", str(tmp_path / "rep")))  # 10 seeds of 500-step runs: still running at the cancel
        kind, done, total, text = until(child, ep.REPLICATION_PROGRESS)
        assert 0 <= done < total
        child.send(ep.ResetRun(cfg, generation=9))
        child.send(ep.CancelReplication())
        assert until(child, ep.REPLICATION_FAILED) == (ep.REPLICATION_FAILED, "cancelled")
        reset = until(child, ep.RESET)
        assert reset == (ep.RESET, 9)  # the deferred reset, after the replication ended
    finally:
        child.close()
    assert child.proc.exitcode == 0


@pytest.mark.skipif(not hasattr(os, "getsid"), reason="sessions are POSIX")
def test_the_engine_is_a_session_of_its_own():
    """So the scheduler's autogroups give it its own CPU share, not a share split with the window's paint."""
    child = ChildEngine()
    try:
        assert os.getsid(child.proc.pid) == child.proc.pid != os.getsid(0)
    finally:
        child.close()


def _without_elapsed(line: str) -> str:
    """A steps.csv line without elapsed_s (wall clock, the one column a replay may change)."""
    return ",".join(c for i, c in enumerate(line.split(",")) if i != STEPS_HEADER.index("elapsed_s"))
