"""Following a script that crashed before close(): its folder stops growing while session.json
still says running. After ``stall_after_s`` without new data (measured on a fake clock here)
the status bar says so, polling slows and Stop following appears; new data undoes all three."""
from __future__ import annotations

import pytest

import ui.follow as follow_mod
from ui.follow import FOLLOWING_TEXT, POLL_MS, STALLED_TEXT, stall_message
from ui.run_controller import RunState

from .test_follow import TinyRun

torch = pytest.importorskip("torch")


def _count_polls(window) -> list[int]:
    tail = window.follow._tail
    real, calls = tail.poll, [0]

    def counted():
        calls[0] += 1
        return real()

    tail.poll = counted
    return calls


def test_a_folder_that_stops_growing_is_said_to_have_stopped_and_data_resumes_it(qtbot, thread_engine, window,
                                                                                 tmp_path, monkeypatch):
    monkeypatch.setattr(follow_mod, "STALLED_POLL_MS", 100)  # the slow pace, fast enough for a test
    now = [1000.0]
    f = window.follow
    f.clock = lambda: now[0]
    f.stall_after_s = 30.0
    out = tmp_path / "run"
    run = TinyRun(out)
    run.train(2)
    with qtbot.waitSignal(f.started, timeout=20000):
        assert f.follow(str(out))
    calls = _count_polls(window)

    now[0] += 29.0  # not yet: a poll or two later it is still following as before
    seen = calls[0]
    qtbot.waitUntil(lambda: calls[0] >= seen + 2, timeout=20000)
    assert not f.stalled and not f.stop_button.isVisible() and f.timer.interval() == POLL_MS
    assert window.status.state_label.text() == FOLLOWING_TEXT

    now[0] += 2.0  # 31 s without a new row
    qtbot.waitUntil(lambda: f.stalled, timeout=20000)
    assert f.following and window.state is RunState.VIEWING
    assert window.status.currentMessage() == stall_message("run", 31.0)
    assert "no new data for 31 s" in window.status.currentMessage().lower()
    assert f.stop_button.isVisible() and f.timer.interval() == 100
    assert window.status.state_label.text() == STALLED_TEXT

    run.train(3)  # the script was only slow: the next rows bring everything back
    qtbot.waitUntil(lambda: len(window.run.viewed) == 5, timeout=20000)
    qtbot.waitUntil(lambda: not f.stalled, timeout=20000)
    assert not f.stop_button.isVisible() and f.timer.interval() == POLL_MS
    assert window.status.state_label.text() == FOLLOWING_TEXT
    assert "training" in window.status.currentMessage()

    now[0] += 45.0  # stalls again; Stop following ends it, the session stays shown
    qtbot.waitUntil(lambda: f.stalled, timeout=20000)
    assert window.status.currentMessage() == stall_message("run", 45.0)
    with qtbot.waitSignal(f.stopped, timeout=20000):
        f.stop_button.click()
    assert not f.following and not f.stalled and not f.stop_button.isVisible()
    assert window.state is RunState.VIEWING and len(window.run.viewed) == 5
    assert window.status.state_label.text() == "saved session (read-only)"
    assert window.status.currentMessage() == f"Stopped following {out}"
    run.w.close()


def test_the_stall_time_is_a_setting(qtbot, thread_engine):
    from ui import settings as st
    from ui.main_window import MainWindow

    st.settings().setValue("follow/stall_s", 12.5)
    w = MainWindow()
    qtbot.addWidget(w)
    try:
        assert w.follow.stall_after_s == 12.5
    finally:
        w.guard.enabled = False
        w.close()
    st.settings().setValue("follow/stall_s", "not a number")
    assert follow_mod._stall_setting() == follow_mod.STALL_S
    st.settings().remove("follow/stall_s")
    assert follow_mod._stall_setting() == follow_mod.STALL_S
