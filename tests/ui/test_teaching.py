"""The teaching layer in the window: exercise loading, live objectives, theory overlay, Jacobian, submission.

Driven as a student does: the panel's buttons are clicked (never their signals
emitted by the test), and results are awaited where they land (the builder,
the plots, the files, the dialogs).
"""
import json
import logging

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog

from gradsim.teaching.exercises import exercise_files, load_exercise
from gradsim.grading.grader import grade
from ui.settings import KEY_STUDENT, read_str, settings


def _exercise(prefix):
    return load_exercise(next(f for f in exercise_files() if f.name.startswith(prefix)))


def _click(qtbot, button):
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_exercise_start_loads_config_and_run_fills_objectives_and_theory(window, qtbot, tmp_path, monkeypatch):
    ex = _exercise("01-")
    panel = window.teaching.exercise
    assert not panel.active  # free play until an exercise is opened
    assert window.teaching.open_exercise(ex.id)
    assert panel.active and window.teaching.exercise_dock.isVisible()
    assert window.builder.config() != ex.config  # the tiny test config, until the button is clicked
    window.plots.set_metric("grad_norm")
    _click(qtbot, panel.start_button)
    # the plots open on what the exercise's questions are about (||dL/dz||), not on ||dL/dW||
    assert ex.view_metric == "act_grad_norm" and window.plots.metric_name == "act_grad_norm"
    cfg = window.builder.config()
    assert cfg == ex.config and cfg.activation == "sigmoid" and cfg.depth == 20
    assert window.builder.schedule() == tuple(ex.events)
    window.builder.set_config(cfg.with_changes(steps=12))
    # theory overlay: the prediction the trainer recorded, drawn when the depth profile shows act_grad_norm
    window.plots.set_metric("act_grad_norm")
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state == "finished", timeout=60000)
    dp = window.plots.depth_profile
    qtbot.waitUntil(lambda: dp.prediction is not None and dp.step == 11, timeout=20000)
    assert dp.prediction.size == 21 and dp.prediction_step == 10  # recorded every stats_every = 10 steps
    gains = window.mirror.layer_metric("pred_gain")[10].astype(np.float64)
    np.testing.assert_allclose(dp.prediction[:-1] / dp.prediction[1:], gains[:-1], rtol=1e-6)
    assert "gain from linear 4" in dp.readout_at(0, 3.0, 0.0)
    # the vanishing objective turns done live
    qtbot.waitUntil(lambda: panel.statuses()["vanishes"] == "done", timeout=5000)
    # submission through the worker (Export button, folder dialog answered): graded equal to a direct grade
    sub = tmp_path / "sub"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(sub), "")))
    panel.answer_edits["q_ratio"].setText("1e-12")
    # no name typed yet: Export asks once, and the answer is remembered for next time
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: (asked.append(a), ("  Ada   Lovelace ", True))[1]))
    _click(qtbot, panel.export_button)
    qtbot.waitUntil(lambda: window.teaching.last_submission == str(sub), timeout=20000)
    doc = json.loads((sub / "submission.json").read_text())
    assert doc["exercise"] == ex.id and doc["student"] == "Ada Lovelace" and len(asked) == 1
    assert panel.student() == "Ada Lovelace" and read_str(settings(), KEY_STUDENT) == "Ada Lovelace"
    # the window's session replays bit for bit (theory overlay and objectives ran during the run)
    g = grade(ex, sub)
    assert g.error == "" and g.verified and g.config_problems == [] and g.results[0].passed
    assert g.student == "Ada Lovelace"
    # the next window starts with the remembered name (the controller reads it at start-up)
    panel.set_student("")
    window.teaching.restore_student()
    assert panel.student() == "Ada Lovelace"
    assert window.dialogs == []


def test_jacobian_on_demand_from_the_live_network(window, qtbot):
    window.builder.set_config(window.builder.config().with_changes(depth=6, width=16, activation="linear", init="orthogonal", steps=3, lr=1e-9))
    assert window.start_run(paused=True)
    qtbot.waitUntil(lambda: window.mirror is not None and len(window.mirror.events) > 0, timeout=20000)
    jac = window.teaching.jacobian
    window.teaching.jacobian_dock.raise_()
    _click(qtbot, jac.compute_button)
    qtbot.waitUntil(lambda: jac.values.size > 0, timeout=20000)
    # a linear net with orthogonal weights is an exact isometry: every singular value is 1
    assert jac.values.shape == (8, 16)
    np.testing.assert_allclose(jac.values, 1.0, atol=1e-5)


def test_submission_to_unwritable_place_shows_error_and_keeps_session(window, qtbot, tmp_path):
    ex = _exercise("01-")
    window.builder.set_config(ex.config.with_changes(steps=3))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state == "finished", timeout=60000)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    window.teaching.submit_to(str(blocker / "sub"), ex, {})
    qtbot.waitUntil(lambda: len(window.dialogs) > 0, timeout=20000)
    assert window.dialogs[-1].windowTitle() == "Submission not written"
    assert "not written" in window.dialogs[-1].text() and "sub" in window.dialogs[-1].text()
    window.teaching.submit_to(str(tmp_path / "ok"), ex, {})
    qtbot.waitUntil(lambda: window.teaching.last_submission == str(tmp_path / "ok"), timeout=20000)
    assert (tmp_path / "ok" / "layers.csv").is_file()


def test_a_defect_while_submitting_is_logged_and_shown_as_an_error(window, qtbot, tmp_path, caplog):
    """A programming error is not reported as "cannot write": it is logged with its type.

    The defect is real and happens in the engine process: an objective that reads a
    metric no session has (KeyError), as a broken exercise file could.
    """
    import dataclasses

    from gradsim.teaching.exercises import Compare, Quantity

    ex = _exercise("01-")
    window.builder.set_config(ex.config.with_changes(steps=3))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state == "finished", timeout=60000)
    ex = dataclasses.replace(ex, objectives=(Compare("broken", "a metric nobody records", Quantity("step_mean", "objective metric")),))

    with caplog.at_level(logging.ERROR, logger="ui.teaching"):
        window.teaching.submit_to(str(tmp_path / "sub"), ex, {})
        qtbot.waitUntil(lambda: len(window.dialogs) > 0, timeout=20000)
    box = window.dialogs[-1]
    assert "error in GradSim" in box.windowTitle() and "KeyError" in box.text()
    assert "cannot write" not in box.text()
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)
