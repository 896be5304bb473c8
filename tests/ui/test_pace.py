"""The pace controls in the window: speed, pause at step N, pause on divergence, all enforced by the engine.

Rates are the ones the engine measured from its own step times (the snapshots' ``steps_per_s``),
never how long the test took.
"""
from __future__ import annotations

import pytest

from tests.ui.conftest import Recorder, wait_engine_settled
from ui.pace_controls import SPEEDS, rate_text
from ui.run_controller import Progress, RunState
from ui.worker import SetPace

WAIT_MS = 60_000


def test_the_toolbar_offers_the_speeds_and_the_run_menu_pause_on_divergence(window):
    pace = window.pace
    texts = [pace.speed.itemText(i) for i in range(pace.speed.count())]
    assert texts == ["1 step/s", "2 steps/s", "5 steps/s", "10 steps/s", "30 steps/s", "100 steps/s", "full speed"]
    assert [pace.speed.itemData(i) for i in range(pace.speed.count())] == list(SPEEDS)
    toolbar = window.window_actions.toolbar
    assert toolbar.widgetForAction(toolbar.actions()[-2]) is pace.speed
    assert toolbar.widgetForAction(toolbar.actions()[-1]) is pace.pause_at
    run_menu = {a.text(): a.menu() for a in window.menuBar().actions()}["&Run"]
    assert pace.divergence_action in run_menu.actions() and pace.divergence_action.isCheckable()
    # By default nothing is paced.
    assert pace.pace() == SetPace(None, None, False)
    pace.set_speed(5.0)
    pace.pause_at.setValue(120)
    pace.divergence_action.setChecked(True)
    assert pace.pace() == SetPace(5.0, 120, True)
    with pytest.raises(ValueError, match="speed 3.0"):
        pace.set_speed(3.0)


def test_a_set_speed_holds_the_rate_and_pause_at_step_n_stops_exactly_there(window, qtbot):
    snaps = Recorder()
    window.worker.snapshot.connect(snaps.record)
    window.builder.steps.setValue(100_000)
    window.pace.set_speed(10.0)
    window.pace.pause_at.setValue(20)
    window.start_run()
    qtbot.waitUntil(lambda: window.state is RunState.PAUSED, timeout=WAIT_MS)
    facts = wait_engine_settled(qtbot, window, WAIT_MS)
    assert facts["step_index"] == 20 == window.mirror.steps_run == len(window.mirror)
    assert ("pause", 20) in [(e.kind, e.step) for e in window.mirror.events]
    assert "step 20" in window.status.currentMessage()
    # The engine's own rate, over the last second of steps (past the first second, whose window
    # starts at Run), never above the speed asked and not far below it.
    rates = [s.steps_per_s for s in snaps.items if s.running and s.step >= 13]
    assert rates and max(rates) <= 10.0 * 1.1 and min(rates) >= 6.0, rates
    # Resume goes on past N.
    window.pace.set_speed(None)
    window.toggle_run()
    qtbot.waitUntil(lambda: window.mirror.steps_run > 25, timeout=WAIT_MS)
    assert window.state is RunState.RUNNING


def test_rates_read_as_words(window):
    assert rate_text(1.0) == "1 step/s" and rate_text(1.3) == "1 step/s"
    assert rate_text(2.0) == "2 steps/s" and rate_text(1250.0) == "1,250 steps/s"
    window.status._on_progress_changed(Progress(5, 100, 1.0))
    assert window.status.rate_label.text() == "1 step/s, ~2 min left"  # 95 steps to go


def test_pause_when_a_toggle_applies_sits_next_to_pause_on_divergence_and_stops_the_run(window, qtbot):
    from gradsim.commands import Scheduled, SetBatchNorm

    pace = window.pace
    run_menu = {a.text(): a.menu() for a in window.menuBar().actions()}["&Run"]
    acts = run_menu.actions()
    assert pace.toggle_action in acts and pace.toggle_action.isCheckable()
    assert acts.index(pace.toggle_action) == acts.index(pace.divergence_action) + 1
    pace.toggle_action.setChecked(True)
    assert pace.pace() == SetPace(None, None, False, True)
    window.builder.steps.setValue(5_000)
    window.builder.set_schedule((Scheduled(9, SetBatchNorm(True)),))
    window.start_run()
    qtbot.waitUntil(lambda: window.state is RunState.PAUSED, timeout=WAIT_MS)
    facts = wait_engine_settled(qtbot, window, WAIT_MS)
    assert facts["step_index"] == 10 == window.mirror.steps_run  # step 9 trained with the change
    assert "batchnorm" in window.status.currentMessage()


@pytest.mark.parametrize("flag, want", [("1", 1.0), ("3", 3.0), ("30", 30.0), ("full", None), ("FULL", None)])
def test_speed_flag_is_parsed(flag, want):
    from ui.app import build_parser

    assert build_parser().parse_args(["--speed", flag]).speed == want


@pytest.mark.parametrize("flag", ["0", "fast", "1.5", "200000"])
def test_a_bad_speed_flag_is_one_line_exit_2(flag, capsys):
    from ui.app import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--speed", flag])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "full" in err[0]


def test_the_speed_flag_sets_the_toolbar_speed_any_whole_rate_goes_in_order(window):
    import ui.app as app
    from ui import pace_controls

    assert (app.MIN_SPEED, app.MAX_SPEED) == (pace_controls.MIN_SPEED, pace_controls.MAX_SPEED)
    args = app.build_parser().parse_args(["--speed", "3"])
    window.pace.set_speed(args.speed, any_rate=True)
    speed = window.pace.speed
    assert speed.currentText() == "3 steps/s" and window.pace.pace().steps_per_s == 3.0
    rates = [speed.itemData(i) for i in range(speed.count())]
    assert rates[:4] == [1.0, 2.0, 3.0, 5.0] and rates[-1] is None
    window.pace.set_speed(None)
    assert window.pace.pace().steps_per_s is None
    with pytest.raises(ValueError):
        window.pace.set_speed(3.5)  # only the flag adds rates


def test_main_applies_speed_to_the_window(monkeypatch, qtbot):
    """main() --speed: the shown window trains at that speed (app.exec patched to return at once)."""
    import ui.app as app
    from PySide6.QtWidgets import QApplication

    seen = {}

    def fake_exec(self=None):
        w = next(w for w in QApplication.topLevelWidgets() if w.objectName() == "GradSimMainWindow" and w.isVisible())
        seen["speed"] = w.pace.pace().steps_per_s
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    monkeypatch.setattr(app, "_close_on_signals", lambda window: None)
    # with a preset: a first start without one opens the welcome, which is not this test's business
    assert app.main(["--speed", "2", "--preset", "healthy-relu-he"]) == 0
    assert seen["speed"] == 2.0


@pytest.mark.parametrize("left, rate, want", [
    (95, 1.0, "~2 min left"), (19, 1.0, ""), (30, 1.0, "~30 s left"), (7200, 1.0, "~2 h left"),
    (4500, 1.0, "~75 min left"), (6000, 1.0, "~1 h 40 min left"), (100, 0.0, ""), (0, 5.0, ""),
    (2_000_000, 1000.0, "~33 min left"),
])
def test_a_slow_run_gets_a_time_estimate(left, rate, want):
    from ui.status_bar import eta_text

    assert eta_text(left, rate) == want


def test_width_2048_at_one_step_a_second_shows_the_time_left(window):
    """A wide net trains slowly: the status bar says how long the rest takes at the measured rate."""
    window.status._on_progress_changed(Progress(100, 1500, 1.0))
    assert window.status.rate_label.text() == "1 step/s, ~23 min left"
    window.status._on_progress_changed(Progress(100, 1500, 900.0))
    assert window.status.rate_label.text() == "900 steps/s"
