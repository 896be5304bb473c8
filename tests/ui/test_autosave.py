"""Never lose a run to a crash (ui/autosave.py): the live run's copy, removed by a clean quit,
offered back at the next start when its window's process is gone."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from gradsim.session.io import load_session
from tests.ui.conftest import wait_engine_settled
from ui.autosave import AUTOSAVE_MS, autosave_dir, crashed_copies
from ui.run_controller import RunState

WAIT_MS = 60_000


def _steps(window, qtbot, n: int) -> None:
    if window.state is RunState.IDLE:
        window.start_run(paused=True)
    target = window.mirror.steps_run + n
    window.run.step(n)
    qtbot.waitUntil(lambda: window.mirror.steps_run >= target, timeout=WAIT_MS)
    wait_engine_settled(qtbot, window, WAIT_MS)


def _dead_pid() -> int:
    """The id of a process that has ended (a child started and waited for)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_the_copy_holds_the_run_and_is_written_only_when_it_changed(window, qtbot, isolated_autosave):
    saver = window.autosave
    assert autosave_dir() == isolated_autosave == saver.folder
    assert saver.path == isolated_autosave / f"run-{os.getpid()}.zip"
    assert saver.timer.isActive() and saver.timer.interval() == AUTOSAVE_MS
    assert not saver.save_now()  # no run yet
    _steps(window, qtbot, 12)
    with qtbot.waitSignal(saver.saved, timeout=WAIT_MS):
        assert saver.save_now()
    copy = load_session(saver.path)
    mirror = window.mirror
    assert copy.steps_run == mirror.steps_run == 12
    np.testing.assert_array_equal(copy.layers, mirror.layers)
    np.testing.assert_array_equal(copy.steps, mirror.steps)
    assert not saver.save_now()  # unchanged since the copy
    _steps(window, qtbot, 5)
    with qtbot.waitSignal(saver.saved, timeout=WAIT_MS):
        assert saver.save_now()
    assert load_session(saver.path).steps_run == 17
    # A copy is not an export: the guard still counts the run as unsaved.
    assert window.guard.run_at_risk()


def test_a_clean_quit_removes_the_copy_a_signal_keeps_it(qtbot, isolated_autosave, tiny_run_config):
    from ui.main_window import MainWindow

    for how, kept in (("quit", False), ("signal", True)):
        w = MainWindow()
        qtbot.addWidget(w)
        w.builder.set_config(tiny_run_config)
        w.show()
        qtbot.waitExposed(w)
        _steps(w, qtbot, 4)
        with qtbot.waitSignal(w.autosave.saved, timeout=WAIT_MS):
            w.autosave.save_now()
        assert w.autosave.path.exists()
        if how == "quit":
            w.close()  # the test's Discard answers the guard's question
        else:
            w.close_now()  # Ctrl+C / SIGTERM in a terminal
        assert w.autosave.path.exists() is kept
        w.autosave.path.unlink(missing_ok=True)


def test_after_a_crash_the_next_start_says_where_the_run_is_and_opens_it(window, qtbot, isolated_autosave,
                                                                        monkeypatch, tiny_run_config):
    _steps(window, qtbot, 9)
    with qtbot.waitSignal(window.autosave.saved, timeout=WAIT_MS):
        window.autosave.save_now()
    want = window.mirror
    crashed = isolated_autosave / f"run-{_dead_pid()}.zip"
    os.replace(window.autosave.path, crashed)
    # A copy of a window still running (this test's own parent process) is not a crash.
    alive = isolated_autosave / f"run-{os.getppid()}.zip"
    alive.write_bytes(crashed.read_bytes())
    assert crashed_copies(isolated_autosave) == [crashed]

    asked: list[str] = []

    def answer_open(_parent, title, text, *_a, **_k):
        if "Restore" not in title:  # the guard's "save first?" at the end: Discard
            return QMessageBox.StandardButton.Discard
        asked.append(text)
        return QMessageBox.StandardButton.Open

    monkeypatch.setattr(QMessageBox, "question", staticmethod(answer_open))
    from ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.builder.set_config(tiny_run_config)
    w.show()
    qtbot.waitUntil(lambda: w.state is RunState.VIEWING, timeout=WAIT_MS)
    recovered = list((isolated_autosave / "recovered").glob("gradsim-run-*.zip"))
    assert len(recovered) == 1 and not crashed.exists() and alive.exists()
    assert len(asked) == 1 and str(recovered[0]) in asked[0] and "9 steps" in asked[0]
    assert w.viewer.path == str(recovered[0])
    np.testing.assert_array_equal(w.mirror.layers, want.layers)
    w.close()
    # Offered once: the copy moved aside is not offered again.
    assert crashed_copies(isolated_autosave) == []


def test_declining_keeps_the_copy_where_the_question_said(qtbot, isolated_autosave, tiny_run_config, monkeypatch):
    isolated_autosave.mkdir(parents=True)
    src = isolated_autosave / f"run-{_dead_pid()}.zip"
    src.write_bytes(b"not a zip")  # unreadable: still offered, with no step count
    asked: list[str] = []

    def answer_close(_parent, title, text, *_a, **_k):
        if "Restore" not in title:
            return QMessageBox.StandardButton.Discard
        asked.append(text)
        return QMessageBox.StandardButton.Close

    monkeypatch.setattr(QMessageBox, "question", staticmethod(answer_close))
    from ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: bool(asked), timeout=WAIT_MS)
    recovered = list((isolated_autosave / "recovered").glob("gradsim-run-*.zip"))
    assert len(recovered) == 1 and recovered[0].read_bytes() == b"not a zip"
    assert str(recovered[0]) in asked[0] and "copy of its last run was saved" in asked[0]
    assert w.state is RunState.IDLE
    w.close()


@pytest.mark.parametrize("persist", [False])
def test_a_window_that_does_not_persist_offers_nothing(qtbot, isolated_autosave, persist, monkeypatch):
    isolated_autosave.mkdir(parents=True)
    src = isolated_autosave / f"run-{_dead_pid()}.zip"
    src.write_bytes(b"x")
    from ui.main_window import MainWindow

    w = MainWindow(persist=persist)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(50)
    assert src.exists()
    w.close()
