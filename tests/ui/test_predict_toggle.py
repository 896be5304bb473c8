"""Predict, then toggle, in the window: the prompt, what it sends, the outcome shown, and hidden marks."""
from __future__ import annotations

import dataclasses
import shutil

import pytest

from gradsim.commands import Annotate, SetBatchNorm, SetLR
from gradsim.events import PREDICTION
from gradsim.resources import resource_path
from gradsim.teaching.exercises import exercise_files, load_exercise
from gradsim.teaching.predictions import Prediction, evaluate_prediction, parse_prediction
from gradsim.train.trainer import Trainer
from ui.panels.exercise import AT_GRADING, DONE, ExercisePanel
from ui.panels.toggles import TogglesPanel
from ui.predictions import short_text

# The offscreen platform says so whenever a top-level dialog shows (and cannot raise one).
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints", "does not support raise")


@pytest.fixture
def toggles(qtbot):
    p = TogglesPanel()
    qtbot.addWidget(p)
    p.set_live(True)
    sent: list = []
    p.command_requested.connect(sent.append)
    p.sent = sent  # type: ignore[attr-defined]
    return p


def test_switch_off_sends_the_toggle_at_once(toggles):
    assert not toggles.predict.isChecked()  # free play: off by default
    toggles.batchnorm.click()
    assert toggles.sent == [SetBatchNorm(True)] and toggles.pending is None


def test_prediction_is_sent_first_then_the_toggle(toggles, qtbot):
    toggles.set_predict(True)
    toggles.batchnorm.click()
    dialog = toggles.pending
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    assert toggles.sent == []  # nothing before the student commits
    assert not dialog.ok_button.isEnabled()  # no direction is chosen for them
    qtbot.mouseClick(dialog.buttons["grows"], qtbot_left())
    assert dialog.decades.text() == "1 decade"
    dialog.decades.setValue(2)
    assert dialog.decades.text() == "2 decades"
    qtbot.mouseClick(dialog.ok_button, qtbot_left())
    annotation, toggle = toggles.sent
    assert isinstance(annotation, Annotate) and annotation.kind == PREDICTION
    assert parse_prediction(annotation.note) == Prediction("batchnorm=on", "grows", 2)
    assert toggle == SetBatchNorm(True)
    assert toggles.batchnorm.isChecked() and toggles.pending is None


def test_stays_disables_the_decades_and_records_zero(toggles, qtbot):
    toggles.set_predict(True)
    toggles.lr.setText("0.2")
    toggles.lr_apply.click()
    dialog = toggles.pending
    dialog.decades.setValue(3)
    qtbot.mouseClick(dialog.buttons["stays"], qtbot_left())
    assert not dialog.decades.isEnabled()
    qtbot.mouseClick(dialog.ok_button, qtbot_left())
    assert parse_prediction(toggles.sent[0].note) == Prediction("lr=0.2", "stays", 0)
    assert toggles.sent[1] == SetLR(0.2)


def test_cancel_sends_nothing_and_puts_the_checkbox_back(toggles, qtbot):
    toggles.set_predict(True)
    toggles.batchnorm.click()
    assert toggles.batchnorm.isChecked()  # the click shows at once...
    qtbot.mouseClick(toggles.pending.cancel_button, qtbot_left())
    assert toggles.sent == [] and toggles.pending is None
    assert not toggles.batchnorm.isChecked()  # ...and is undone: the run's state is shown again


def test_a_second_toggle_while_one_waits_is_refused(toggles):
    toggles.set_predict(True)
    toggles.batchnorm.click()
    first = toggles.pending
    toggles.layernorm.click()
    assert toggles.pending is first and not toggles.layernorm.isChecked()
    assert "answer or cancel the open prediction first" in toggles.error_label.text()
    assert toggles.sent == []


def test_the_run_ending_closes_the_prompt_without_sending(toggles):
    toggles.set_predict(True)
    toggles.batchnorm.click()
    toggles.set_live(False)
    assert toggles.pending is None and toggles.sent == [] and not toggles.batchnorm.isChecked()
    assert toggles.predict.isEnabled()  # the switch can be set between runs


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


# ------------------------------------------------------------------ the outcome beside the prediction
def test_window_shows_prediction_and_outcome_after_the_window_of_steps(qtbot):
    """The teaching layer's tracker on a real run's session: a line in the event log and the toggles' panel."""
    from ui.predictions import PredictionTracker
    from ui.panels.event_log import EventLog

    log, toggles = EventLog(), TogglesPanel()
    qtbot.addWidget(log)
    qtbot.addWidget(toggles)
    tracker = PredictionTracker(log, toggles)
    cfg = load_exercise(resource_path("exercises", "05-batchnorm-rescue.toml")).config.with_changes(steps=100)
    t = Trainer(cfg)
    t.run(steps=50)
    pred = Prediction("batchnorm=on", "grows", 2)
    t.apply(Annotate(PREDICTION, "toggle=batchnorm=on;signal=grows;decades=2"))
    t.apply(SetBatchNorm(True))
    t.run(steps=20)
    tracker.update(t.session)
    assert not toggles.outcome_label.isVisibleTo(toggles) and log.lines() == []  # the window has not passed
    t.run()
    tracker.update(t.session)
    tracker.update(t.session)  # reported once
    truth = evaluate_prediction(t.session, 50, pred)
    [(step, kind, text)] = log.lines()
    assert (step, kind) == ("50", "outcome")
    assert text == f"grew {abs(truth.decades):.1f} decades; you said grows 2"  # short: the value column is narrow
    tip = log.tree.topLevelItem(0).toolTip(2)
    assert "you predicted the early signal grows by 2 decades" in tip and f"grew by {abs(truth.decades):.1f} decades" in tip
    shown = toggles.outcome_label.text()
    assert "You predicted" in shown and "grows by 2 decades" in shown and f"grew by {abs(truth.decades):.1f} decades" in shown
    assert toggles.outcome_label.isVisibleTo(toggles)
    tracker.clear()
    assert not toggles.outcome_label.isVisibleTo(toggles)


# ------------------------------------------------------------------ hide_marks
def test_hide_marks_shows_no_right_or_wrong(qtbot, tmp_path, monkeypatch):
    res = tmp_path / "resources"
    shutil.copytree(resource_path("presets"), res / "presets")
    (res / "exercises").mkdir()
    for f in exercise_files():
        text = f.read_text()
        if "01-" in f.name:
            text = text.replace('level = "intro"', 'level = "intro"\nhide_marks = true', 1)
            assert "hide_marks" in text
        shutil.copy(f, res / "exercises" / f.name)
        (res / "exercises" / f.name).write_text(text)
    monkeypatch.setenv("GRADSIM_RESOURCES", str(res))
    panel = ExercisePanel()
    qtbot.addWidget(panel)
    ex = panel.current_exercise()
    assert ex.hide_marks
    cfg = dataclasses.replace(ex.config, width=16, n_samples=200, batch_size=32)
    trainer = Trainer(cfg, ex.events)
    for _ in range(3):
        trainer.step()
    panel.update_from(trainer.session)
    truth = ex.evaluate(trainer.session)
    assert any(r.passed for r in truth) and any(not r.passed for r in truth)  # there would be marks to show
    answers = {r.id: r.value for r in truth if r.id == "q_ratio"}
    qtbot.keyClicks(panel.answer_edits["q_ratio"], f"{answers['q_ratio']:.3e}")  # the right answer...
    status = panel.statuses()
    assert status["q_ratio"] == "answered"  # ...is not marked right
    assert {status[o.id] for o in ex.objectives if o.id != "q_ratio"} == {AT_GRADING}
    assert DONE not in status.values()
    assert "marked when your submission is graded" in panel.summary.text()
    assert "marked at grading" in panel.mode_label.text()
    shown = {lab.text() for lab, _ in panel.objective_rows.values()}
    assert not any("\u2713" in s or "\u2717" in s for s in shown)


# ------------------------------------------------------------------ the whole window, through the engine
def test_window_records_the_prediction_in_the_engine_then_applies_the_toggle(window, qtbot):
    from ui.run_controller import RunState

    wait = 60_000
    window.builder.set_config(window.builder.config().with_changes(steps=30))
    window.teaching.open_exercise("batchnorm-rescue")
    assert window.toggles.predict.isChecked()  # exercise mode asks by default
    window.teaching.exercise.set_active(False)
    assert not window.toggles.predict.isChecked()  # free play leaves it to the switch
    window.toggles.set_predict(True)
    window.start_run(paused=True)
    for n in (1, 2, 3):
        window.step_once()
        qtbot.waitUntil(lambda n=n: window.mirror is not None and window.mirror.steps_run == n, timeout=wait)
    window.toggles.batchnorm.click()
    dialog = window.toggles.pending
    dialog.choose("grows", 1)
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: any(e.kind == "batchnorm" for e in window.mirror.events), timeout=wait)
    kinds = [(e.step, e.kind) for e in window.mirror.events if e.kind in (PREDICTION, "batchnorm")]
    assert kinds == [(3, PREDICTION), (3, "batchnorm")]
    window.toggle_run()
    qtbot.waitUntil(lambda: window.state in (RunState.FINISHED, RunState.FAILED), timeout=wait)
    qtbot.waitUntil(lambda: any(line[1] == "outcome" for line in window.event_log.lines()), timeout=wait)
    line = next(line for line in window.event_log.lines() if line[1] == "outcome")
    truth = evaluate_prediction(window.mirror, 3, Prediction("batchnorm=on", "grows", 1))
    assert line[0] == "3" and line[2] == short_text(Prediction("batchnorm=on", "grows", 1), truth)
    shown = next(line for line in window.event_log.lines() if line[1] == PREDICTION)
    assert shown[2] == "batchnorm=on: grows by 1 decade"  # the prediction in words, not its raw value
    assert "You predicted" in window.toggles.outcome_label.text()
