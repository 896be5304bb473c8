"""Never lose work: Reset, a new Run, Quit and the viewer ask Save / Discard / Cancel before an unexported
run (or its fork, or typed answers) is replaced, and do not ask when nothing would be lost.

The question box is patched to answer each button; the outcome (the run kept, exported, or replaced)
is read from the run model and from the files written.
"""
from __future__ import annotations

import json

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from ui.run_controller import RunState

WAIT_MS = 60_000
Button = QMessageBox.StandardButton


@pytest.fixture
def answer(monkeypatch):
    """``answer(Button.X)``: every question from now on answers X; returns the list of questions asked."""
    asked: list[str] = []

    def set_answer(button):
        def reply(_parent, _title, text, *_args, **_kwargs):
            asked.append(text)
            return button

        monkeypatch.setattr(QMessageBox, "question", staticmethod(reply))
        return asked

    return set_answer


def _save_to(monkeypatch, path) -> list:
    """File > Export's dialog answers ``path`` (None: the dialog is cancelled); returns the calls."""
    calls: list = []

    def dialog(*a, **k):
        calls.append(a)
        return (str(path), "Session folder (*)") if path is not None else ("", "")

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    return calls


def _finished_run(qtbot, window):
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.mirror.steps_run == window.run.config.steps, timeout=WAIT_MS)
    return window.mirror, window.run.generation


def _steps_in(folder) -> int:
    return len((folder / "steps.csv").read_text().splitlines()) - 1


# ---------------------------------------------------------------- nothing to lose: no question
def test_a_fresh_window_quits_and_resets_without_asking(qtbot, window, answer):
    asked = answer(Button.Cancel)  # would keep the window open, had it been asked
    window.reset_run()
    assert asked == []
    window.close()
    assert asked == [] and not window.isVisible() and not window.worker.isRunning()


def test_an_exported_unchanged_run_is_replaced_without_asking(qtbot, window, answer, monkeypatch, tmp_path):
    _finished_run(qtbot, window)
    _save_to(monkeypatch, tmp_path / "out")
    with qtbot.waitSignal(window.worker.export_finished, timeout=WAIT_MS):
        window.window_actions.export.trigger()
    asked = answer(Button.Cancel)
    window.reset_run()
    assert asked == [] and window.state is RunState.IDLE


# ---------------------------------------------------------------- Reset (R)
def test_reset_cancel_keeps_the_run(qtbot, window, answer):
    mirror, generation = _finished_run(qtbot, window)
    asked = answer(Button.Cancel)
    window.window_actions.reset.trigger()
    assert len(asked) == 1 and "Reset" in asked[0] and f"{mirror.steps_run:,} steps" in asked[0]
    assert window.state is RunState.FINISHED and window.mirror is mirror and window.run.generation == generation
    window.guard.enabled = False  # the fixture closes the window


def test_reset_discard_replaces_the_run(qtbot, window, answer):
    _finished_run(qtbot, window)
    asked = answer(Button.Discard)
    window.window_actions.reset.trigger()
    assert len(asked) == 1 and window.state is RunState.IDLE and window.mirror is None


def test_reset_save_exports_then_resets(qtbot, window, answer, monkeypatch, tmp_path):
    mirror, _ = _finished_run(qtbot, window)
    steps = mirror.steps_run
    answer(Button.Save)
    out = tmp_path / "saved"
    _save_to(monkeypatch, out)
    with qtbot.waitSignal(window.worker.export_finished, timeout=WAIT_MS):
        window.reset_run()
        assert window.state is RunState.FINISHED  # nothing replaced before the files are written
    qtbot.waitUntil(lambda: window.state is RunState.IDLE, timeout=WAIT_MS)
    assert _steps_in(out) == steps
    assert json.loads((out / "session.json").read_text())["steps_run"] == steps


def test_save_with_the_file_dialog_cancelled_changes_nothing(qtbot, window, answer, monkeypatch):
    mirror, generation = _finished_run(qtbot, window)
    answer(Button.Save)
    calls = _save_to(monkeypatch, None)
    window.reset_run()
    assert len(calls) == 1
    assert window.state is RunState.FINISHED and window.mirror is mirror and window.run.generation == generation
    window.guard.enabled = False


def test_save_that_fails_does_not_reset(qtbot, window, answer, monkeypatch, tmp_path):
    mirror, generation = _finished_run(qtbot, window)
    answer(Button.Save)
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    _save_to(monkeypatch, a_file / "inside")
    with qtbot.waitSignal(window.worker.export_failed, timeout=WAIT_MS):
        window.reset_run()
    qtbot.wait(50)  # the failure's slot ran: a reset would have happened by now
    assert window.state is RunState.FINISHED and window.mirror is mirror and window.run.generation == generation
    window.guard.enabled = False


# ---------------------------------------------------------------- a new Run over a finished one
def test_run_over_an_unexported_finished_run_asks(qtbot, window, answer):
    mirror, generation = _finished_run(qtbot, window)
    asked = answer(Button.Cancel)
    window.toggle_run()
    assert len(asked) == 1 and "new run" in asked[0]
    assert window.mirror is mirror and window.run.generation == generation
    answer(Button.Discard)
    window.toggle_run()
    assert window.run.generation == generation + 1 and window.mirror is not mirror


# ---------------------------------------------------------------- Quit / close
def test_quit_cancel_keeps_the_window_and_the_run(qtbot, window, answer):
    mirror, _ = _finished_run(qtbot, window)
    asked = answer(Button.Cancel)
    window.window_actions.quit.trigger()
    assert len(asked) == 1 and "Quitting" in asked[0]
    assert window.isVisible() and window.worker.isRunning() and window.mirror is mirror
    window.guard.enabled = False


def test_quit_discard_closes(qtbot, window, answer):
    _finished_run(qtbot, window)
    asked = answer(Button.Discard)
    window.close()
    assert len(asked) == 1 and not window.isVisible() and not window.worker.isRunning()


def test_quit_save_exports_then_closes(qtbot, window, answer, monkeypatch, tmp_path):
    mirror, _ = _finished_run(qtbot, window)
    answer(Button.Save)
    out = tmp_path / "at-quit"
    _save_to(monkeypatch, out)
    window.close()
    assert window.isVisible()  # still open until the files are written
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    assert _steps_in(out) == mirror.steps_run
    qtbot.waitUntil(lambda: not window.worker.isRunning(), timeout=WAIT_MS)


def test_a_changed_run_asks_again_after_an_export(qtbot, window, answer, monkeypatch, tmp_path):
    window.start_run(paused=True)
    window.run.step(2)
    qtbot.waitUntil(lambda: window.mirror is not None and window.mirror.steps_run == 2, timeout=WAIT_MS)
    _save_to(monkeypatch, tmp_path / "first")
    with qtbot.waitSignal(window.worker.export_finished, timeout=WAIT_MS):
        window.window_actions.export.trigger()
    assert window.guard.at_risk() == []
    window.run.step(1)
    qtbot.waitUntil(lambda: window.mirror.steps_run == 3, timeout=WAIT_MS)
    assert window.guard.at_risk() and "3 steps" in window.guard.at_risk()[0]


# ---------------------------------------------------------------- typed answers
def test_typed_answers_ask_and_save_hands_them_in(qtbot, window, answer, monkeypatch, tmp_path):
    teaching = window.teaching
    assert teaching.open_exercise(teaching.exercise.exercises()[0].id)
    panel = teaching.exercise
    ex = panel.current_exercise()
    if not panel.answer_edits:
        pytest.skip("the first exercise asks no question")
    window.builder.set_config(ex.config.with_changes(steps=3))
    _finished_run(qtbot, window)
    aid, edit = next(iter(panel.answer_edits.items()))
    edit.setText("0.25")
    assert teaching.unsaved_answers() == ex.title
    panel.set_student("Ada")
    asked = answer(Button.Save)
    folder = tmp_path / "hand-in"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(folder), "")))
    window.reset_run()
    assert "typed answers" in asked[0] and window.state is RunState.FINISHED
    qtbot.waitUntil(lambda: window.state is RunState.IDLE, timeout=WAIT_MS)
    submission = json.loads((folder / "submission.json").read_text())
    assert json.dumps(submission).count("0.25") >= 1
    assert (folder / "steps.csv").is_file()
    # Handed in as typed: nothing is at risk any more.
    assert teaching.unsaved_answers() == "" and window.guard.at_risk() == []


# ---------------------------------------------------------------- a saved session opened over a run
@pytest.fixture(scope="module")
def saved_session(tmp_path_factory):
    """A tiny headless run, exported (another network than the window's, so a mix-up shows)."""
    from gradsim.config import RunConfig
    from gradsim.session.io import export_session
    from gradsim.train.trainer import Trainer

    t = Trainer(RunConfig(dataset="moons", n_samples=120, depth=3, width=8, batch_size=16, steps=12, stats_every=4, activation="tanh"))
    t.run()
    return export_session(t.session, tmp_path_factory.mktemp("saved") / "other-run")


def _open(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.viewer.opened, timeout=WAIT_MS):
        window.open_session(str(path))
    assert window.state is RunState.VIEWING


def test_closing_the_viewer_returns_to_the_running_run(qtbot, window, answer, saved_session):
    from tests.ui.conftest import wait_engine_settled

    window.builder.steps.setValue(100_000)
    config = window.builder.config()
    window.start_run()
    qtbot.waitUntil(lambda: window.mirror is not None and window.mirror.steps_run > 3, timeout=WAIT_MS)
    mirror, generation = window.mirror, window.run.generation
    asked = answer(Button.Cancel)
    _open(qtbot, window, saved_session)
    assert asked == []  # nothing is replaced: the run waits behind the session
    assert window.builder.config().depth == 3  # the builder shows the opened run
    window.viewer.close_action.trigger()
    assert asked == []
    assert window.state is RunState.PAUSED and window.mirror is mirror and window.run.generation == generation
    assert window.builder.config() == config
    # Every step the engine made before it paused reached the run's mirror, none was dropped.
    facts = wait_engine_settled(qtbot, window, WAIT_MS)
    assert mirror.steps_run == facts["step_index"] == len(mirror)
    window.refresh_plots_now()
    x, _ = window.plots.loss_accuracy.loss_curve.getOriginalDataset()
    assert list(x) == list(mirror.steps)
    # and it goes on from there
    window.run.step(2)
    qtbot.waitUntil(lambda: mirror.steps_run == facts["step_index"] + 2, timeout=WAIT_MS)
    window.guard.enabled = False


def test_closing_the_viewer_without_a_run_leaves_an_empty_window(qtbot, window, saved_session):
    _open(qtbot, window, saved_session)
    window.viewer.close_session()
    assert window.state is RunState.IDLE and window.mirror is None


def test_quit_while_viewing_asks_for_the_run_behind_and_saves_it(qtbot, window, answer, monkeypatch, tmp_path, saved_session):
    mirror, _ = _finished_run(qtbot, window)
    _open(qtbot, window, saved_session)
    asked = answer(Button.Save)
    out = tmp_path / "behind"
    _save_to(monkeypatch, out)
    window.close()
    assert len(asked) == 1 and f"{mirror.steps_run:,} steps" in asked[0]
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    # The run behind the session was written, not the session shown.
    assert _steps_in(out) == mirror.steps_run == window.run.hidden.mirror.steps_run
    assert json.loads((out / "session.json").read_text())["config"]["depth"] == mirror.config["depth"]


def test_rerun_over_a_kept_run_asks(qtbot, window, answer, saved_session):
    mirror, generation = _finished_run(qtbot, window)
    _open(qtbot, window, saved_session)
    asked = answer(Button.Cancel)
    assert not window.viewer.rerun()
    assert len(asked) == 1 and window.state is RunState.VIEWING
    window.viewer.close_session()
    assert window.state is RunState.FINISHED and window.mirror is mirror and window.run.generation == generation
    window.guard.enabled = False


def test_a_forked_run_comes_back_forked_after_the_viewer(qtbot, window, answer, saved_session):
    window.start_run(paused=True)
    window.run.step(4)
    qtbot.waitUntil(lambda: window.mirror is not None and window.mirror.steps_run >= 4, timeout=WAIT_MS)
    with qtbot.waitSignal(window.run.run_forked, timeout=WAIT_MS):
        assert window.fork.fork()
    qtbot.waitUntil(lambda: window.run.branch_mirror is not None, timeout=WAIT_MS)
    a, b = window.run.mirror, window.run.branch_mirror
    asked = answer(Button.Cancel)
    assert "forked run" in window.guard.at_risk()[0]
    _open(qtbot, window, saved_session)
    assert not window.fork.bar.isVisible() and window.run.branch_mirror is None
    window.viewer.close_session()
    assert asked == [] and window.state is RunState.PAUSED
    assert window.run.mirror is a and window.run.branch_mirror is b
    assert window.fork.bar.isVisible() and window.fork.fork_step == 4
    window.guard.enabled = False
