"""While a watched session (a user's own model) is shown, the builder says what it is instead
of showing the simulator's last config, and Run stays off; closing the session brings the
form back as it was."""
from __future__ import annotations

import pytest

from ui.run_controller import RunState

from .test_follow import TinyRun

torch = pytest.importorskip("torch")


def _assert_watched(window, out, n_units: int) -> None:
    b = window.builder
    assert b.showing_watched()
    assert b.watched_label.isVisible() and not b.scroll_area.isVisible()
    text = b.watched_label.text()
    assert text.startswith("<b>Watched model:</b> Sequential, ") and f"{n_units} units" in text
    n_params = sum(p.numel() for p in torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 8),
                                                          torch.nn.Linear(8, 3)).parameters())
    assert f"{n_params:,} parameters" in text and str(out) in text and "not built here" in text
    assert not b.is_valid()
    assert not window.window_actions.run_actions.run_action.isEnabled()


def _assert_form_back(window, config) -> None:
    b = window.builder
    assert not b.showing_watched()
    assert not b.watched_label.isVisible() and b.scroll_area.isVisible()
    assert b.is_valid() and b.config() == config
    assert window.window_actions.run_actions.run_action.isEnabled()


def test_an_opened_watched_session_replaces_the_form_until_it_is_closed(qtbot, thread_engine, window, tmp_path,
                                                                        tiny_run_config):
    out = tmp_path / "run"
    run = TinyRun(out)
    run.train(3)
    run.w.close()
    _assert_form_back(window, tiny_run_config)
    with qtbot.waitSignal(window.viewer.opened, timeout=20000):
        window.open_session(str(out))
    _assert_watched(window, out, 3)
    window.viewer.close_session()
    assert window.state is not RunState.VIEWING
    _assert_form_back(window, tiny_run_config)


def test_a_followed_run_replaces_the_form_and_closing_it_brings_the_form_back(qtbot, thread_engine, window, tmp_path,
                                                                              tiny_run_config):
    out = tmp_path / "run"
    run = TinyRun(out)
    run.train(2)
    with qtbot.waitSignal(window.follow.started, timeout=20000):
        assert window.follow.follow(str(out))
    _assert_watched(window, out, 3)
    run.train(3)
    qtbot.waitUntil(lambda: len(window.run.viewed) == 5, timeout=20000)
    _assert_watched(window, out, 3)  # still, while it grows
    window.viewer.close_session()
    assert not window.follow.following
    _assert_form_back(window, tiny_run_config)
    run.w.close()
