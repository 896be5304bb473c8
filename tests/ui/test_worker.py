"""TrainingWorker on its own: commands through the queue, pacing, export, stop."""
from __future__ import annotations

import dataclasses

import pytest

from gradsim.commands import SetClip, SetLR
from ui.worker import Snapshot, TrainingWorker


@pytest.fixture
def worker(qtbot):
    w = TrainingWorker()
    w.start()
    yield w
    assert w.stop(5000)


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


def test_session_task_runs_on_the_full_session(worker, qtbot, tiny_run_config):
    worker.reset_run(tiny_run_config)
    with qtbot.waitSignal(worker.run_finished, timeout=60_000):
        worker.start_run()
    with qtbot.waitSignal(worker.session_task_done, timeout=10_000) as blocker:
        worker.run_on_session("count", lambda session: (len(session), len(session.events)))
    assert blocker.args == ["count", (tiny_run_config.steps, 1)]

    def boom(session):
        raise ValueError("cannot write the submission")

    with qtbot.waitSignal(worker.session_task_failed, timeout=10_000) as blocker:
        worker.run_on_session("submit", boom)
    assert blocker.args == ["submit", "cannot write the submission"]
