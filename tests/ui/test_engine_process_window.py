"""The real window with its engine in a real child process (ui/worker.py + gradsim/service/loop.py).

No mocks: each window starts an engine process (forked from the forkserver,
which imported torch once for the whole test session). What is checked: where
training runs, that a toggle applies at the next step through the pipe, that
export and tasks come back, what happens when the engine process dies, and
that closing the window leaves no process behind.
"""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from gradsim.session.io import STEPS_HEADER
from gradsim.service import tasks as engine_tasks
from gradsim.commands import SetLR
from gradsim.config import RunConfig
from gradsim.metrics import STEP_INDEX
from gradsim.session.io import export_session
from gradsim.train.trainer import Trainer
from tests.ui.conftest import engine_facts, wait_engine_settled
from ui.run_controller import RunState

WAIT_MS = 60_000


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _engine_up(qtbot, window) -> int:
    qtbot.waitUntil(lambda: window.worker.ready, timeout=WAIT_MS)
    assert window.worker.engine_mode == "process" and not window.worker.shares_interpreter
    pid = window.worker.engine_pid
    assert pid is not None and pid != os.getpid() and _alive(pid)
    return pid


def _step_to(qtbot, window, n: int) -> dict:
    assert window.run.step(n - (window.mirror.steps_run if window.mirror is not None else 0))
    qtbot.waitUntil(lambda: window.mirror.steps_run == n, timeout=WAIT_MS)
    return wait_engine_settled(qtbot, window, WAIT_MS)


def test_training_runs_in_a_child_process_and_a_toggle_applies_at_the_next_step(window, qtbot):
    pid = _engine_up(qtbot, window)
    window.builder.steps.setValue(100_000)
    assert window.start_run(paused=True)
    facts = _step_to(qtbot, window, 3)
    assert facts["lr"] != 0.2
    window.toggles.lr.setText("0.2")
    window.toggles.lr_apply.click()
    _step_to(qtbot, window, 5)
    facts = engine_facts(qtbot, window)
    assert facts["events"][-1] == (3, "lr", "0.2") and facts["lr"] == pytest.approx(0.2)
    # the mirror (what the plots draw) got the same: rows 0-2 at the old rate, 3 on at the new one
    lr = window.mirror.column("lr")
    assert lr[:3].tolist() == [window.run.config.lr] * 3 and lr[3:].tolist() == [pytest.approx(0.2)] * 2
    assert [(e.step, e.kind) for e in window.mirror.events] == [(0, "start"), (3, "lr")]
    assert window.worker.engine_pid == pid  # the same engine served it all


def test_export_from_the_child_writes_what_a_headless_run_writes(window, qtbot, tmp_path):
    config = window.builder.config()
    _engine_up(qtbot, window)
    assert window.start_run(paused=True)
    _step_to(qtbot, window, 4)
    window.run.send_command(SetLR(0.3))
    window.toggle_run()  # resume to the end
    qtbot.waitUntil(lambda: window.state == RunState.FINISHED, timeout=WAIT_MS)
    with qtbot.waitSignal(window.worker.export_finished, timeout=WAIT_MS):
        window.exporter.export_to(str(tmp_path / "window"))
    t = Trainer(config, label="window")  # the window's runs start with a "start,window" event
    t.run(4)
    t.apply(SetLR(0.3))
    t.run()
    export_session(t.session, tmp_path / "headless")
    assert sorted(p.name for p in (tmp_path / "window").iterdir()) == ["events.csv", "layers.csv", "session.json", "steps.csv"]
    for name in ("steps.csv", "layers.csv", "events.csv"):
        a = (tmp_path / "window" / name).read_text().splitlines()
        b = (tmp_path / "headless" / name).read_text().splitlines()
        if name == "steps.csv":  # elapsed_s is the only column that may differ
            a, b = [_without_elapsed(r) for r in a], [_without_elapsed(r) for r in b]
        assert a == b, name


def test_a_task_result_comes_back_from_the_child(window, qtbot):
    """The Jacobian spectrum (View > Jacobian spectrum, Compute) is computed in the engine
    process and equals the same computation on a headless twin of the run."""
    config = window.builder.config()
    _engine_up(qtbot, window)
    assert window.start_run(paused=True)
    _step_to(qtbot, window, 2)
    plot = window.teaching.jacobian
    plot.compute_requested.emit()
    qtbot.waitUntil(lambda: getattr(plot, "values", None) is not None and np.size(plot.values) > 0, timeout=WAIT_MS)
    twin = Trainer(config)
    twin.run(2)
    expected, step = engine_tasks.jacobian(twin, n_samples=8)
    assert step == 2
    np.testing.assert_array_equal(plot.values, expected)


@pytest.mark.qt_log_ignore("does not support propagateSizeHints")  # offscreen: the error dialog
def test_a_killed_engine_is_one_clear_message_and_reset_starts_a_new_one(window, qtbot, tmp_path):
    pid = _engine_up(qtbot, window)
    window.builder.steps.setValue(1_000_000)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.mirror is not None and len(window.mirror) > 5, timeout=WAIT_MS)
    with qtbot.waitSignal(window.worker.failed, timeout=WAIT_MS) as blocker:
        os.kill(pid, signal.SIGKILL)
    message = blocker.args[0]
    assert "stopped unexpectedly" in message and "SIGKILL" in message and "Traceback" not in message
    qtbot.waitUntil(lambda: window.state == RunState.FAILED, timeout=WAIT_MS)
    assert len([d for d in window.dialogs if d.isVisible()]) == 1 and window.last_error.startswith("Training stopped")
    shown = len(window.mirror)
    assert shown > 5 and window.mirror.steps_run >= shown  # what was shown is kept
    qtbot.waitUntil(lambda: not _alive(pid), timeout=WAIT_MS)

    # The run's session died with its process: export writes what the window holds.
    with qtbot.waitSignal(window.worker.export_finished, timeout=WAIT_MS):
        window.exporter.export_to(str(tmp_path / "kept"))
    rows = (tmp_path / "kept" / "steps.csv").read_text().splitlines()
    assert len(rows) == 1 + shown
    np.testing.assert_array_equal([float(r.split(",")[STEP_INDEX["loss"] + 1]) for r in rows[1:]], window.mirror.column("loss"))
    window.dialogs[-1].accept()

    window.window_actions.reset.trigger()
    window.builder.set_config(RunConfig(dataset="moons", n_samples=200, depth=3, width=8, batch_size=32, steps=25))
    window.toggle_run()
    qtbot.waitUntil(lambda: window.state in (RunState.FINISHED, RunState.FAILED), timeout=WAIT_MS)
    assert window.state == RunState.FINISHED and len(window.mirror) == 25
    new_pid = window.worker.engine_pid
    assert new_pid not in (None, pid) and _alive(new_pid) and window.worker.engines_started == 2
    assert not window.run.engine_lost


def test_closing_the_window_leaves_no_engine_process(qtbot, tiny_run_config):
    import multiprocessing

    from ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.builder.set_config(tiny_run_config.with_changes(steps=1_000_000))
    w.show()
    pid = _engine_up(qtbot, w)
    w.toggle_run()
    qtbot.waitUntil(lambda: w.mirror is not None and len(w.mirror) > 5, timeout=WAIT_MS)
    assert w.close()
    assert not w.worker.isRunning() and w.worker.engine_pid is None
    assert not _alive(pid)
    assert all(p.name != "gradsim-engine" for p in multiprocessing.active_children())


def test_no_engine_process_means_training_in_the_window_process_and_a_note(qtbot, tiny_run_config, monkeypatch):
    """If no child can start (here: an unusable start method), the run still trains, in the
    worker thread, and the event log says why."""
    from ui.main_window import MainWindow

    monkeypatch.setenv("GRADSIM_START_METHOD", "no-such-method")
    w = MainWindow()
    qtbot.addWidget(w)
    w.builder.set_config(tiny_run_config)
    w.show()
    qtbot.waitUntil(lambda: w.worker.ready, timeout=WAIT_MS)
    assert w.worker.engine_mode == "thread" and w.worker.engine_pid == os.getpid()
    # The note is a queued signal from the worker thread: "ready" can be seen before it is delivered.
    qtbot.waitUntil(lambda: any(line[1] == "engine" for line in w.event_log.lines()), timeout=WAIT_MS)
    notes = [line for line in w.event_log.lines() if line[1] == "engine"]
    assert len(notes) == 1 and "no-such-method" in notes[0][2] and "inside the window's process" in notes[0][2]
    w.toggle_run()
    qtbot.waitUntil(lambda: w.state == RunState.FINISHED, timeout=WAIT_MS)
    assert len(w.mirror) == tiny_run_config.steps
    assert w.close() and not w.worker.isRunning()


def _without_elapsed(line: str) -> str:
    """A steps.csv line without elapsed_s (wall clock, the one column a replay may change)."""
    return ",".join(c for i, c in enumerate(line.split(",")) if i != STEPS_HEADER.index("elapsed_s"))
