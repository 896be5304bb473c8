"""The status bar's message fits the room the permanent labels leave: elided, whole on hover."""
from __future__ import annotations


def test_a_long_message_is_elided_beside_the_labels_and_whole_on_hover(qtbot, window):
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.width() == 1280)
    bar = window.status
    label = bar.message_label
    long = "Following /tmp/some/rather/long/folder/of/a/training/script/cnnrun: step 12,345, training… " * 2
    with qtbot.waitSignal(bar.messageChanged, check_params_cb=lambda t: t == long):
        bar.showMessage(long)
    qtbot.waitUntil(lambda: label.isVisible() and label.width() > 40)
    assert bar.currentMessage() == long and label.full_text() == long
    assert label.is_elided() and label.text().endswith("…") and long.startswith(label.text()[:-1])
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()
    assert label.toolTip() == long
    # beside the permanent labels, not under them
    first = min(w.geometry().left() for w in (bar.step_label, bar.rate_label, bar.state_label) if w.isVisible())
    assert label.geometry().right() < first

    bar.showMessage("ready")
    assert label.text() == "ready" and not label.is_elided() and label.toolTip() == ""

    bar.showMessage("gone soon", 50)
    qtbot.waitUntil(lambda: bar.currentMessage() == "", timeout=5000)
    assert label.text() == ""


def test_a_watched_session_hides_the_speed_and_held_out_labels(qtbot, thread_engine, window, tmp_path):
    from .test_follow import TinyRun

    bar = window.status
    assert bar.rate_label.isVisible() and bar.held_label.isVisible()
    run = TinyRun(tmp_path / "run")
    run.train(2)
    run.w.close()
    with qtbot.waitSignal(window.viewer.opened, timeout=20000):
        window.open_session(str(tmp_path / "run"))
    assert not bar.rate_label.isVisible() and not bar.held_label.isVisible()
    assert bar.step_label.isVisible() and bar.loss_label.isVisible()
    window.viewer.close_session()
    assert bar.rate_label.isVisible() and bar.held_label.isVisible()
