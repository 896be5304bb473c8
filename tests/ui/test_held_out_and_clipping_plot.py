"""The loss/accuracy plot names batch and held-out accuracy, draws the held-out curve where it was
measured and marks clipped steps; the status bar says "batch accuracy" and shows the held-out one."""
from __future__ import annotations

import math

import numpy as np

from gradsim.commands import Scheduled, SetClip
from gradsim.config import RunConfig
from gradsim.metrics import STEP_INDEX
from gradsim.session.store import Session
from gradsim.train.trainer import Trainer
from ui.plots.loss_accuracy import CLIP_BAND_Y, MAX_HELD_POINTS, LossAccuracyPlot, held_out_points


def _session(clip_from: int = 12) -> Session:
    cfg = RunConfig(dataset="moons", n_samples=200, depth=3, width=12, batch_size=32, steps=40, stats_every=5, lr=0.2)
    t = Trainer(cfg, (Scheduled(clip_from, SetClip("norm", 1e-3)),))  # every step from here is clipped
    t.run()
    return t.session


def test_the_plot_draws_held_out_where_measured_and_marks_clipped_steps(qtbot):
    s = _session()
    plot = LossAccuracyPlot()
    qtbot.addWidget(plot)
    plot.refresh(s)
    hx, hy = plot.held_curve._x, plot.held_curve._y
    held = s.column("test_accuracy")
    rows = np.flatnonzero(np.isfinite(held))
    np.testing.assert_array_equal(hx, s.steps[rows])
    np.testing.assert_array_equal(hy, held[rows])
    assert list(s.steps[rows]) == [0, 5, 10, 15, 20, 25, 30, 35]
    clipped = s.steps[s.column("clipped") > 0]
    assert clipped.min() == 12 and len(clipped) == 28
    np.testing.assert_array_equal(plot.clip_band._x, clipped)
    assert np.all(plot.clip_band._y == CLIP_BAND_Y)
    assert plot.legend.texts() == ["loss", "batch accuracy", "held-out accuracy", "clipped steps (dots)"]
    assert "clipped on 28 of 40" in plot.note.text()
    text = plot.readout_at(1, 17.0, 0.5)
    assert "held-out = " in text and "(step 15)" in text and "clipped" in text and "batch accuracy" in text


def test_held_out_points_are_thinned_to_a_bound_keeping_the_ends():
    n = 3 * MAX_HELD_POINTS
    scalars = np.zeros((n, len(STEP_INDEX)))
    scalars[:, STEP_INDEX["test_accuracy"]] = np.linspace(0, 1, n)
    s = Session.from_arrays(np.arange(n), scalars, np.zeros((n, 2, 11), np.float32), np.zeros(n, bool), {"depth": 1})
    x, y = held_out_points(s)
    assert len(x) == MAX_HELD_POINTS and x[0] == 0 and x[-1] == n - 1
    np.testing.assert_array_equal(y, scalars[x.astype(int), STEP_INDEX["test_accuracy"]])


def test_the_status_bar_names_batch_accuracy_and_shows_the_latest_held_out(window, qtbot):
    from tests.ui.conftest import wait_engine_settled

    window.start_run(paused=True)
    window.run.step(13)
    qtbot.waitUntil(lambda: window.mirror is not None and window.mirror.steps_run >= 13, timeout=60_000)
    wait_engine_settled(qtbot, window, 60_000)
    window.run._set_progress(window.run.progress)  # a progress update redraws the labels
    held = window.mirror.column("test_accuracy")
    last = held[np.isfinite(held)][-1]  # stats_every = 5: step 10's
    assert math.isnan(held[-1])
    assert window.status.held_label.text() == f"held-out {last:.1%}"
    assert window.status.acc_label.text().startswith("batch accuracy ")
