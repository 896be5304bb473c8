"""The teaching layer in the window: exercise loading, live objectives, theory overlay, Jacobian, submission."""
import json

import numpy as np
import pytest

from gradsim.exercises import exercise_files, grade, load_exercise


def _exercise(prefix):
    return load_exercise(next(f for f in exercise_files() if f.name.startswith(prefix)))


def test_exercise_start_loads_config_and_run_fills_objectives_and_theory(window, qtbot, tmp_path):
    ex = _exercise("01-")
    window.teaching.exercise.select_exercise(ex.id)
    with qtbot.waitSignal(window.teaching.exercise.start_requested):
        window.teaching.exercise.start_requested.emit(ex)
    cfg = window.builder.config()
    assert cfg.activation == "sigmoid" and cfg.depth == 20
    window.builder.set_config(cfg.with_changes(steps=12))
    # theory overlay: only computed and drawn when the depth profile shows act_grad_norm
    window.plots.set_metric("act_grad_norm")
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state == "finished", timeout=60000)
    qtbot.waitUntil(lambda: window.teaching.last_prediction is not None, timeout=20000)
    window.teaching._on_objectives_timer()
    dp = window.plots.depth_profile
    assert dp.prediction is not None and dp.prediction.size == 21
    np.testing.assert_allclose(dp.prediction, window.teaching.last_prediction.act_grad_norm)
    assert "gain from layer" in dp.readout_at(0, 3.0, 0.0)
    # the vanishing objective turns done live
    window.teaching.exercise.update_from(window.mirror)
    assert window.teaching.exercise.statuses()["vanishes"] == "done"
    # submission through the worker: graded equal to a direct grade of the same files
    with qtbot.waitSignal(window.worker.session_task_done, timeout=20000):
        window.teaching.submit_to(str(tmp_path / "sub"), ex, {"q_ratio": 1e-12})
    sub = tmp_path / "sub"
    assert json.loads((sub / "submission.json").read_text())["exercise"] == ex.id
    g = grade(ex, sub)
    assert g.error == "" and g.config_problems == [] and g.results[0].passed


def test_jacobian_on_demand_from_the_live_network(window, qtbot):
    window.builder.set_config(window.builder.config().with_changes(depth=6, width=16, activation="linear", init="orthogonal", steps=3, lr=1e-9))
    assert window.start_run(paused=True)
    qtbot.waitUntil(lambda: window.mirror is not None, timeout=20000)
    with qtbot.waitSignal(window.worker.session_task_done, timeout=20000, check_params_cb=lambda tag, _: tag == "jacobian"):
        window.teaching.jacobian.compute_requested.emit()
    # a linear net with orthogonal weights is an exact isometry: every singular value is 1
    values = window.teaching.jacobian.values
    assert values.shape == (8, 16)
    np.testing.assert_allclose(values, 1.0, atol=1e-5)


def test_submission_to_unwritable_place_shows_error_and_keeps_session(window, qtbot, tmp_path):
    ex = _exercise("01-")
    window.builder.set_config(ex.config.with_changes(steps=3))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state == "finished", timeout=60000)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with qtbot.waitSignal(window.worker.session_task_failed, timeout=20000):
        window.teaching.submit_to(str(blocker / "sub"), ex, {})
    qtbot.waitUntil(lambda: len(window.dialogs) > 0, timeout=5000)
    with qtbot.waitSignal(window.worker.session_task_done, timeout=20000):
        window.teaching.submit_to(str(tmp_path / "ok"), ex, {})
    assert (tmp_path / "ok" / "layers.csv").is_file()
