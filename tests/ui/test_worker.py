"""TrainingWorker on its own: commands through the queue, pacing, export, stop.

Each test runs with the engine in a child process (the default) and in the
worker thread (the fallback), since both must behave alike.
"""
from __future__ import annotations

import dataclasses
import functools

import pytest

from gradsim.commands import SetClip, SetLR
from tests.ui import engine_probes
from ui.worker import NoRunError, Snapshot, TrainingWorker


@pytest.fixture(params=["process", "thread"])
def worker(qtbot, request):
    w = TrainingWorker(mode=request.param)
    w.start()
    yield w
    assert w.stop(10_000)
    assert w.engine_pid is None


def test_reset_run_emits_all_rows_and_finishes(worker, qtbot, tiny_run_config, recorder):
    snaps: list[Snapshot] = recorder.items
    worker.snapshot.connect(recorder.record)
    worker.reset_run(tiny_run_config, generation=7)
    with qtbot.waitSignal(worker.run_finished, timeout=60_000):
        worker.start_run()
    qtbot.waitUntil(lambda: snaps and snaps[-1].finished, timeout=10_000)
    assert all(s.generation == 7 for s in snaps)
    steps = [int(x) for s in snaps for x in s.rows.steps]
    assert steps == list(range(tiny_run_config.steps))  # every row exactly once, in order
    assert [e.kind for s in snaps for e in s.rows.events] == ["start"]
    assert snaps[-1].step == tiny_run_config.steps and not snaps[-1].running


def test_commands_queue_in_order(worker, qtbot, tiny_run_config, recorder):
    """Two toggles sent back to back both apply (a queue, not one pending slot)."""
    worker.snapshot.connect(recorder.record)
    worker.reset_run(tiny_run_config)
    worker.send(SetLR(0.5))
    worker.send(SetClip("value", 0.1))
    worker.send(SetLR(0.25))

    def events():
        return [e for snap in recorder.items for e in snap.rows.events]

    qtbot.waitUntil(lambda: len(events()) == 4, timeout=10_000)
    events = events()
    assert [(e.kind, e.value) for e in events] == [("start", "config"), ("lr", "0.5"), ("clip", "value:0.1"), ("lr", "0.25")]


def test_export_without_run_fails_cleanly(worker, qtbot, tmp_path):
    with qtbot.waitSignal(worker.export_failed, timeout=10_000) as blocker:
        worker.export_session(str(tmp_path / "x"))
    assert "press Run" in blocker.args[0]


def test_bad_config_reports_failure_and_thread_lives(worker, qtbot, tiny_run_config):
    bad = dataclasses.replace(tiny_run_config, depth=0)  # replace() does not validate; Trainer does
    with qtbot.waitSignal(worker.failed, timeout=10_000) as blocker:
        worker.reset_run(bad)
    assert "depth = 0" in blocker.args[0]
    assert worker.isRunning()
    with qtbot.waitSignal(worker.run_finished, timeout=60_000):
        worker.reset_run(tiny_run_config)
        worker.start_run()


def test_stop_is_prompt_while_running(worker, qtbot, tiny_run_config):
    worker.reset_run(tiny_run_config.with_changes(steps=10_000_000))
    worker.start_run()
    qtbot.waitUntil(worker.is_running, timeout=10_000)
    assert worker.stop(1000)


def test_submitted_tasks_report_to_their_own_callbacks(worker, qtbot, tiny_run_config):
    """Each task's result (or error) goes to the callbacks it was submitted with, and to no other."""
    got: dict[str, object] = {}
    with qtbot.waitSignal(worker.run_finished, timeout=60_000):
        worker.reset_run(tiny_run_config)
        worker.start_run()

    boom = functools.partial(engine_probes.fail_with, message="cannot write the submission")
    # Submitted back to back: results must not cross (no shared signal, no tags).
    worker.submit(engine_probes.session_counts, lambda r: got.setdefault("count", r), lambda e: got.setdefault("count_error", e))
    worker.submit(boom, lambda r: got.setdefault("boom", r), lambda e: got.setdefault("boom_error", e))
    worker.submit(engine_probes.trainer_facts, lambda r: got.setdefault("trainer", r), on_trainer=True)
    qtbot.waitUntil(lambda: len(got) == 3, timeout=10_000)
    assert got["count"] == (tiny_run_config.steps, 1)
    assert isinstance(got["boom_error"], ValueError) and str(got["boom_error"]) == "cannot write the submission"
    assert got["trainer"]["step_index"] == tiny_run_config.steps
    assert worker._callbacks == {}  # every callback pair is released once called


def test_task_without_a_run_reports_no_run(worker, qtbot):
    errors: list[BaseException] = []
    worker.submit(engine_probes.session_counts, lambda r: errors.append(AssertionError("must not succeed")), errors.append)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=10_000)
    assert isinstance(errors[0], NoRunError) and "press Run" in str(errors[0])


def test_a_task_that_cannot_travel_is_refused_at_once(worker):
    """A lambda cannot be pickled to the engine process: submit says so instead of losing it."""
    with pytest.raises(TypeError, match="picklable"):
        worker.submit(lambda s: len(s))
    assert worker._callbacks == {}  # nothing left waiting


def test_the_engine_runs_where_asked(worker, qtbot):
    qtbot.waitUntil(lambda: worker.ready, timeout=60_000)
    import os

    if worker.engine_mode == "process":
        assert worker.engine_pid not in (None, os.getpid())
    else:
        assert worker.engine_pid == os.getpid() and worker.shares_interpreter


def test_the_window_imports_only_the_messages_of_the_service(subprocess_env):
    """The loop and the child's start-up are the relay thread's business (imported when it starts
    an engine); the window's modules get the typed messages of gradsim.service.protocol and no torch."""
    import subprocess

    env, root, python = subprocess_env
    code = "import sys, ui.worker, ui.run_controller; print(sorted(m for m in sys.modules if m.startswith('gradsim.service')), 'torch' in sys.modules)"
    out = subprocess.run([python, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("]")[0] + "]" == "['gradsim.service', 'gradsim.service.protocol']"
    assert out.stdout.split()[-1] == "False"


def test_every_report_the_engine_sends_has_a_signal(qtbot):
    """Each report type of the protocol reaches the window: none ends in 'unknown report'."""
    import typing

    import numpy as np

    from gradsim.service import protocol as pr
    from gradsim.session.store import Rows

    w = TrainingWorker(mode="thread")  # not started: _dispatch is called directly
    w.engine_mode = "thread"
    got: list = []
    for name in ("snapshot", "run_diverged", "run_finished", "failed", "command_failed", "export_finished", "export_failed",
                 "preview_ready", "forked", "fork_failed", "replication_progress", "replication_finished", "replication_failed",
                 "paced_pause"):
        getattr(w, name).connect(lambda *args, name=name: got.append(name))
    w._task_finished.connect(lambda *args: got.append("task"))
    empty = Rows(np.zeros(0, np.int64), np.zeros((0, 1)), np.zeros((0, 1, 1)), np.zeros(0, bool), [])
    samples = {
        pr.Snapshot: pr.Snapshot(0, empty, 0, 1, 0.0, 0.0, 0.0, False, False, None),
        pr.Preview: pr.Preview("moons", np.zeros((1, 2)), np.zeros(1, int), 2),
        pr.ReplicationResult: pr.ReplicationResult("x", True, "ok", "o", "f", "c", ()),
        pr.TaskDone: pr.TaskDone(1, True, 5),
    }
    sent = 0
    for kind in typing.get_args(pr.Report):
        if kind in (pr.Ready, pr.RunDropped):  # the relay's own business: no signal
            continue
        report = samples.get(kind) or kind(*[0 if f.type in ("int", "float") else "m" for f in dataclasses.fields(kind)])
        w._dispatch(report)
        sent += 1
    assert len(got) == sent == len(typing.get_args(pr.Report)) - 2


def test_a_sequence_task_asks_for_no_preview():
    """Only the 2-D data sets have points to preview; a restored transformer or RNN config at start-up
    once sent recall-last to the preview, which the engine refused with an error."""
    from gradsim.config import RunConfig

    w = TrainingWorker(mode="thread")  # not started: nothing is sent anywhere
    sent: list = []
    w.send = sent.append  # type: ignore[method-assign]
    w.request_preview(RunConfig(model="transformer", dataset="recall-last", depth=2, width=16, heads=2, seq_len=8))
    assert sent == []
    w.request_preview(RunConfig(dataset="moons"))
    assert len(sent) == 1 and sent[0].dataset == "moons"
