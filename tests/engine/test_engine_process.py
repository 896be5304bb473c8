"""The engine's serving loop (gradsim/service/loop.py, messages in protocol.py, the process in child.py),
with no Qt: in a thread and in a real child process.

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

from gradsim.service import child as engine_child
from gradsim.session.io import STEPS_HEADER
from gradsim.service import loop as ep
from gradsim.service import protocol as pr
from gradsim.service import tasks as engine_tasks
from gradsim.commands import Scheduled, SetActivation, SetClip, SetLR
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
        self.q.put(pr.Shutdown())
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


class ChildEngine:
    """A real engine process; reports read from its pipe."""

    def __init__(self) -> None:
        self.proc, self.conn = engine_child.start_engine_process()
        ready = self.recv()
        assert isinstance(ready, pr.Ready) and ready.pid == self.proc.pid != os.getpid()

    def send(self, msg) -> None:
        self.conn.send(msg)

    def recv(self, timeout: float = WAIT_S):
        if not self.conn.poll(timeout):
            raise AssertionError("the engine process said nothing")
        return self.conn.recv()

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(pr.Shutdown())
            except OSError:
                pass
        self.proc.join(WAIT_S)
        self.conn.close()


@pytest.fixture(params=["thread", "process"])
def engine(request):
    e = ThreadEngine() if request.param == "thread" else ChildEngine()
    yield e
    e.close()


def until(engine, kind: type, sink: list | None = None):
    """Reports up to and including the first of type ``kind``; the rest go to ``sink``."""
    while True:
        report = engine.recv()
        if isinstance(report, kind):
            return report
        if sink is not None:
            sink.append(report)


def snapshots(reports: list) -> list:
    return [r for r in reports if isinstance(r, pr.Snapshot)]


def step_to(engine, n: int, seen: list) -> None:
    """Run ``n`` steps and wait until the engine reports them (messages sent with StepRun
    would otherwise apply before the steps: everything queued applies between steps, in order)."""
    engine.send(pr.StepRun(n))
    while not any(s.step == n for s in snapshots(seen)):
        seen.append(engine.recv())


def test_a_run_reports_every_row_once_then_finishes(engine, cfg):
    engine.send(pr.ResetRun(cfg, generation=4))
    engine.send(pr.StartRun())
    seen: list = []
    until(engine, pr.Finished, seen)
    snaps = snapshots(seen)
    assert all(s.generation == 4 for s in snaps)
    assert [int(x) for s in snaps for x in s.rows.steps] == list(range(cfg.steps))
    assert snaps[-1].finished and not snaps[-1].running and snaps[-1].step == cfg.steps


def test_a_toggle_applies_at_the_next_step(engine, cfg):
    """Three steps, then a change of activation and learning rate while paused: both are events
    at step 3, and row 3 is the first with the new learning rate (the trainer's own record)."""
    engine.send(pr.ResetRun(cfg))
    seen: list = []
    step_to(engine, 3, seen)
    engine.send(SetActivation("relu"))
    engine.send(SetLR(0.25))
    engine.send(pr.StartRun())
    until(engine, pr.Finished, seen)
    rows = [s.rows for s in snapshots(seen)]
    events = [(e.step, e.kind, e.value) for r in rows for e in r.events]
    assert events[1:] == [(3, "activation", "relu"), (3, "lr", "0.25")]
    steps = np.concatenate([r.steps for r in rows])
    lr = np.concatenate([r.scalars[:, STEP_INDEX["lr"]] for r in rows])
    assert lr[steps < 3].tolist() == [cfg.lr] * 3 and set(lr[steps >= 3].tolist()) == {0.25}


def test_a_command_without_a_run_is_refused(engine):
    engine.send(SetLR(0.5))
    assert "no run is active" in until(engine, pr.CommandFailed).message


def test_tasks_answer_with_results_and_errors(engine, cfg):
    engine.send(pr.Task(1, functools.partial(engine_tasks.jacobian, n_samples=4), on_trainer=True))
    done = until(engine, pr.TaskDone)
    assert (done.id, done.ok) == (1, False)  # no run yet
    engine.send(pr.ResetRun(cfg))
    step_to(engine, 2, [])
    engine.send(pr.Task(2, functools.partial(engine_tasks.jacobian, n_samples=4), on_trainer=True))
    engine.send(pr.Task(3, len))  # the session's row count
    answers = {}
    while len(answers) < 2:
        done = until(engine, pr.TaskDone)
        task_id, ok, payload = done.id, done.ok, done.payload
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
    assert pickle.loads(engine_child.encode_task_payload([1, 2], True)) == [1, 2]
    err = pickle.loads(engine_child.encode_task_payload(_TwoArgError("x", "y"), False))
    assert isinstance(err, RuntimeError) and "_TwoArgError: x/y" in str(err)
    lost = pickle.loads(engine_child.encode_task_payload(threading.Lock(), True))
    assert isinstance(lost, TypeError) and "cannot be sent back" in str(lost)


def test_export_writes_what_a_headless_run_writes(engine, cfg, tmp_path):
    """The engine's export of a run with a toggle equals a headless run of the same schedule,
    file by file (elapsed time and the creation stamp aside)."""
    engine.send(pr.ResetRun(cfg))
    step_to(engine, 5, [])
    engine.send(SetLR(0.3))
    engine.send(pr.StartRun())
    until(engine, pr.Finished)
    engine.send(pr.ExportRequest(str(tmp_path / "engine")))
    until(engine, pr.ExportFinished)
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
    child.send(pr.ResetRun(cfg.with_changes(steps=10_000_000)))
    child.send(pr.StartRun())
    while not isinstance(r := child.recv(), pr.Snapshot) or not r.running:
        pass
    child.send(pr.Shutdown())
    child.proc.join(WAIT_S)
    assert child.proc.exitcode == 0
    child.conn.close()


def test_start_method_is_never_a_plain_fork(monkeypatch):
    monkeypatch.setenv("GRADSIM_START_METHOD", "fork")
    with pytest.raises(ValueError, match="GRADSIM_START_METHOD='fork'"):
        engine_child.start_method()
    monkeypatch.delenv("GRADSIM_START_METHOD")
    assert engine_child.start_method() in ("forkserver", "spawn")


def test_exit_codes_in_words():
    assert engine_child.describe_exit(-9) == "killed by SIGKILL"
    assert engine_child.describe_exit(3) == "exit status 3"


def test_a_replication_reports_progress_and_stops_on_cancel(tmp_path, cfg):
    """Through the pipe: progress comes back while it runs; a cancel stops it between two of
    its steps; a message sent meanwhile is served after it, in order."""
    child = ChildEngine()
    try:
        child.send(pr.ReplicationRequest("ioffe2015", str(tmp_path / "rep")))  # 10 seeds of 500-step runs: still running at the cancel
        progress = until(child, pr.ReplicationProgress)
        assert 0 <= progress.done < progress.total
        child.send(pr.ResetRun(cfg, generation=9))
        child.send(pr.CancelReplication())
        assert until(child, pr.ReplicationFailed) == pr.ReplicationFailed("cancelled")
        assert until(child, pr.RunDropped) == pr.RunDropped(9)  # the deferred reset, after the replication ended
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


def exploding(steps: int) -> RunConfig:
    """A run that diverges within a few steps unless its updates are clipped from step 1 on."""
    return RunConfig(dataset="moons", n_samples=200, depth=4, width=12, batch_size=32, steps=steps, stats_every=5,
                     lr=5e5, activation="relu")


#: Branch B's rescue: value clipping so tight that the huge learning rate cannot blow it up.
RESCUE = SetClip("value", 1e-9)


def test_exploding_fixture_diverges_unless_clipped():
    """The premise of the fork tests below, on headless runs."""
    a = Trainer(exploding(100))
    a.run()
    b = Trainer(exploding(100), (Scheduled(1, RESCUE),))
    b.run()
    assert a.diverged_at is not None and a.step_index < 10
    assert b.diverged_at is None and b.step_index == 100


def test_after_branch_a_ends_branch_b_reports_its_own_steps_and_speed(engine):
    """A diverges, B (clipped) trains on: B's snapshots advance and carry B's own rate; A's stay put at 0 steps/s."""
    engine.send(pr.ResetRun(exploding(10_000_000)))
    seen: list = []
    step_to(engine, 1, seen)
    engine.send(pr.ForkRun())
    until(engine, pr.Forked, seen)
    engine.send(pr.BranchCommand(1, RESCUE))
    engine.send(pr.StartRun())
    a_end = None
    b_late: list = []
    while len(b_late) < 3:
        snap = engine.recv()
        if not isinstance(snap, pr.Snapshot):
            continue
        if snap.branch == 0 and snap.diverged_at is not None:
            a_end = a_end if a_end is not None else snap.step
            assert snap.step == a_end and snap.steps_per_s == 0.0  # A trains no more
        elif snap.branch == 1 and a_end is not None and snap.step > a_end + 20 and snap.running:
            b_late.append(snap)
    engine.send(pr.PauseRun())
    assert a_end is not None and snap.diverged_at is None
    assert [s.step for s in b_late] == sorted({s.step for s in b_late})  # strictly advancing
    assert all(s.steps_per_s > 0 for s in b_late)


def test_a_fork_without_a_run_is_refused_with_its_generation(engine):
    engine.send(pr.ResetRun(None, generation=5))
    engine.send(pr.ForkRun())
    assert until(engine, pr.ForkFailed) == pr.ForkFailed(5, "Fork: no run is active; press Run first")


def test_after_the_store_thins_snapshots_report_the_last_step_trained():
    """A store of 16 rows thins at once: most steps then add no row. Every step still moves the
    reported step on, and the reported loss is the last step's exact loss (a run that never thinned)."""
    steps = 100
    thin = RunConfig(dataset="moons", n_samples=200, depth=4, width=12, batch_size=32, steps=steps, stats_every=5,
                     max_memory_mb=1e-9)
    full = Trainer(thin.with_changes(max_memory_mb=256.0))
    full.run()
    losses = full.session.column("loss")
    assert len(losses) == steps  # every step's loss, unthinned
    reports: list = []
    loop = ep.EngineLoop(ep.QueueInbox(queue.SimpleQueue()), reports.append)
    loop._handle(pr.ResetRun(thin))
    loop._handle(pr.StartRun())
    for _ in range(steps):  # the loop's own steps; a snapshot looked for after each (no clock involved)
        loop._step_once()
        loop._emit(force=False)
    snaps = snapshots(reports)
    recorded = [int(x) for s in snaps for x in s.rows.steps]
    assert steps - 1 not in recorded and len(set(recorded)) < steps // 2  # thinned: the premise
    assert sorted({s.step for s in snaps}) == list(range(steps + 1))  # no step went unreported
    for s in snaps:
        if s.step > 0:
            assert s.loss == losses[s.step - 1]
    assert snaps[-1].finished and snaps[-1].step == steps and snaps[-1].loss == losses[-1]


@pytest.mark.parametrize("dataset", ["moons", "digits"])
def test_a_preview_holds_the_inputs_or_their_first_two_principal_components(engine, dataset):
    from gradsim.data.datasets import make_dataset

    engine.send(pr.PreviewRequest(dataset, 300, 0.1, 3, 0.2))
    got = until(engine, pr.Preview)
    data = make_dataset(dataset, 300, 0.1, 3, 0.2)
    x = np.asarray(data.x_train, np.float64)
    np.testing.assert_array_equal(got.labels, data.y_train)
    assert got.n_inputs == x.shape[1] and got.points.shape == (len(x), 2)
    if x.shape[1] == 2:
        np.testing.assert_array_equal(got.points, x.astype(np.float32))
        assert got.note == ""
        return
    # Independently: the covariance matrix's two leading eigenvectors (the same axes up to sign).
    xc = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(xc.T @ xc)
    want = xc @ vectors[:, ::-1][:, :2]
    signs = np.sign(np.sum(want * got.points, axis=0))
    np.testing.assert_allclose(got.points, want * signs, rtol=1e-3, atol=1e-3 * np.abs(want).max())
    assert "principal components" in got.note
def _without_elapsed(line: str) -> str:
    """A steps.csv line without elapsed_s (wall clock, the one column a replay may change)."""
    return ",".join(c for i, c in enumerate(line.split(",")) if i != STEPS_HEADER.index("elapsed_s"))
