"""The depth profile's theory line is the recorded prediction of the step shown."""
import numpy as np
from gradsim.commands import parse_event
from gradsim.config import RunConfig
from gradsim.theory.mean_field import predict
from gradsim.train.trainer import Trainer
from ui.plots.depth_profile import DepthProfile


def _run_with_independent_predictions(cfg, events=(), at=(0,)):
    """Run ``cfg``; at each step in ``at``, compute the prediction directly from the live
    weights and that step's batch with theory.predict (after the step's events, before
    its update), independently of the trainer's recording."""
    t = Trainer(cfg, [parse_event(e) for e in events])
    expected = {}
    draw = t._batch

    def batch_and_predict():
        x, y = draw()
        if t.step_index in at:
            expected[t.step_index] = predict(t.net, x=x).gain
        return x, y

    t._batch = batch_and_predict
    t.run()
    return t.session, expected


def _shown(qtbot, session, step):
    dp = DepthProfile()
    qtbot.addWidget(dp)
    dp.set_metric("act_grad_norm")
    dp.refresh(session)
    dp.show_step(step)
    return dp


def test_prediction_at_the_chosen_step_uses_that_steps_weights(qtbot):
    cfg = RunConfig(dataset="moons", n_samples=400, depth=6, width=32, activation="tanh", init="normal", init_std=0.4,
                    batch_size=64, steps=25, stats_every=10, lr=0.5)
    session, expected = _run_with_independent_predictions(cfg, events=["7:init=xavier_normal"], at=(0, 7, 20))
    measured = session.layer_metric("act_grad_norm").astype(np.float64)
    for step in (0, 7, 20):
        dp = _shown(qtbot, session, step)
        assert dp.step == step and dp.prediction_step == step and dp.prediction_gap == ""
        g = expected[step]
        want = np.empty(cfg.depth + 1)
        want[-1] = measured[step, -1]
        for l in range(cfg.depth - 1, -1, -1):
            want[l] = want[l + 1] * g[l]
        np.testing.assert_allclose(dp.prediction, want, rtol=1e-5)
        assert "gain from linear 3" in dp.readout_at(0, 2.0, 0.0)
    # the re-initialisation at step 7 changed the prediction: step 0's would be wrong at step 7
    assert not np.allclose(expected[0][:-1], expected[7][:-1], rtol=0.05)
    # a step without its own record uses the last recorded one before it, and says so
    dp = _shown(qtbot, session, 5)
    assert dp.step == 5 and dp.prediction_step == 0
    assert "weights of step 0" in dp.note.text()
    assert dp.prediction[-1] == measured[5, -1]  # anchored at the step shown


def test_other_metrics_and_reset_show_no_prediction(qtbot):
    cfg = RunConfig(dataset="moons", n_samples=400, depth=4, width=32, batch_size=64, steps=3)
    t = Trainer(cfg)
    t.run()
    dp = _shown(qtbot, t.session, 0)
    assert dp.prediction is not None
    dp.set_metric("grad_norm")
    assert dp.prediction is None
    dp.set_metric("act_grad_norm")
    assert dp.prediction is not None
    dp.reset()  # Reset of the window: nothing of the old run stays
    assert dp.prediction is None and dp.prediction_step is None
    x, _ = dp.prediction_curve.getOriginalDataset()
    assert x is None or len(x) == 0


def test_where_the_model_does_not_apply_the_overlay_says_so(qtbot):
    cfg = RunConfig(dataset="moons", n_samples=400, depth=4, width=8, batch_size=64, steps=3)
    t = Trainer(cfg)
    t.run()
    assert np.isnan(t.session.layer_metric("pred_gain")).all()
    dp = _shown(qtbot, t.session, 0)
    assert dp.prediction is None
    assert "too narrow" in dp.prediction_gap and "too narrow" in dp.note.text()
    # a version-1 session (no pred_gain recorded) at a usable width
    t = Trainer(cfg.with_changes(width=32))
    t.run()
    t.session.layer_metric("pred_gain")[:] = np.nan
    dp = _shown(qtbot, t.session, 1)
    assert dp.prediction is None and "no recorded prediction" in dp.note.text()


def test_reset_clears_every_overlay_and_dock_of_the_run(window, qtbot):
    """After Reset nothing describes the discarded run: no predicted points on the depth
    profile, no 'at step N' Jacobian, no objective ticked off."""
    from PySide6.QtCore import Qt

    from gradsim.teaching.exercises import exercise_files, load_exercise

    ex = load_exercise(next(f for f in exercise_files() if f.name.startswith("01-")))
    panel = window.teaching.exercise
    assert window.teaching.open_exercise(ex.id)  # exercise mode is opt-in (free play checks nothing)
    window.builder.set_config(ex.config.with_changes(steps=12))
    window.plots.set_metric("act_grad_norm")
    assert window.start_run()
    qtbot.waitUntil(lambda: window.state == "finished", timeout=60000)
    dp = window.plots.depth_profile
    qtbot.waitUntil(lambda: dp.prediction is not None, timeout=20000)
    window.teaching.exercise_dock.raise_()
    qtbot.waitUntil(lambda: panel.statuses()["vanishes"] == "done", timeout=5000)
    jac = window.teaching.jacobian
    window.teaching.jacobian_dock.show()  # closed by default, opened from the View menu
    window.teaching.jacobian_dock.raise_()
    qtbot.mouseClick(jac.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: jac.values.size > 0, timeout=20000)
    assert "at step" in jac.header.text()

    window.reset_run()
    assert dp.prediction is None and dp.prediction_step is None
    x, _ = dp.prediction_curve.getOriginalDataset()
    assert x is None or len(x) == 0
    assert jac.values.size == 0 and "at step" not in jac.header.text() and "No run" in jac.header.text()
    assert set(panel.statuses().values()) == {"pending"}
    window.teaching._on_objectives_timer()  # the live check does not bring the old run back
    assert set(panel.statuses().values()) == {"pending"}
