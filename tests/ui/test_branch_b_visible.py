"""A short or diverged branch B stays visible: wider dashed lines, a dot at its last finite point, a note."""
from __future__ import annotations

import numpy as np

from gradsim.commands import SetLR
from gradsim.config import RunConfig
from gradsim.train.fork import fork_trainer
from gradsim.train.trainer import Trainer
from ui.plots.branch_b import B_WIDTH, END_DOT
from ui.plots.layer_curves import LayerCurves
from ui.plots.loss_accuracy import LossAccuracyPlot


def _fork():
    cfg = RunConfig(dataset="moons", n_samples=120, depth=3, width=8, batch_size=16, steps=60, stats_every=5,
                    activation="relu")
    a = Trainer(cfg)
    a.run(30)
    b = fork_trainer(a)
    b.apply(SetLR(1e30))  # B blows up within a few steps of the fork
    a.run()
    b.run()
    assert b.diverged_at is not None and b.diverged_at < 35
    return a.session, b.session


def test_a_diverged_b_gets_an_end_dot_at_its_last_finite_point_and_a_note(qtbot):
    a, b = _fork()
    plot = LossAccuracyPlot()
    qtbot.addWidget(plot)
    plot.set_compare(b)
    plot.refresh(a)
    assert plot.loss_curve_b.opts["pen"].width() == B_WIDTH > plot.loss_curve.opts["pen"].width()
    loss_b = b.column("loss")
    finite = np.flatnonzero(np.isfinite(loss_b))
    x, y = plot.loss_end_b._x, plot.loss_end_b._y
    assert len(x) == 1 and x[0] == b.steps[finite[-1]]
    assert np.isfinite(y[0]) and y[0] > 0
    assert plot.loss_end_b.dots == END_DOT
    assert len(plot.acc_end_b._x) == 1
    assert f"diverged at step {b.diverged_at:,}" in plot.note.text() and "branch B ends at step" in plot.note.text()
    plot.set_compare(None)
    plot.refresh(a)
    assert len(plot.loss_end_b._x) == 0 and "branch B" not in plot.note.text()


def test_layer_curves_mark_the_end_of_each_b_curve(qtbot):
    a, b = _fork()
    curves = LayerCurves()
    qtbot.addWidget(curves)
    curves.set_compare(b)
    curves.refresh(a)
    shown = [i for i, item in enumerate(curves._pool_b) if item.isVisible()]
    assert shown
    for i in shown:
        xb = curves._pool_b[i]._x
        yb = curves._pool_b[i]._y
        ok = np.flatnonzero(np.isfinite(yb))
        assert curves._ends_b[i]._x.tolist() == [xb[ok[-1]]]
    assert all(len(curves._ends_b[i]._x) == 0 for i in range(len(curves._pool_b)) if i not in shown)
