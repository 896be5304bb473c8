"""Loss (log y) and accuracy (0..1) over time: what the gradients do to learning.

Why next to the gradient plots: a vanishing gradient reads as a loss that stalls
and an exploding one as a loss that shoots up and turns nan; seeing the two
together ties the cause to the symptom.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from gradsim.metrics import STEP_INDEX
from gradsim.session.store import Session

from .base import RangeFollower, TimePlotBase
from .axes import make_log_plot, plain_axes
from .decimate import LOG_CEIL, LOG_FLOOR, MAX_CURVE_BINS, BinCache, Bins, curve_points, nearest_row, nonfinite_note
from .labels import fmt
from .markers import EventMarkers, events_text
from .items import LineItem


def _add(plot: pg.PlotItem, item: LineItem) -> LineItem:
    plot.addItem(item)
    return item


_COLS = np.array([STEP_INDEX["loss"], STEP_INDEX["accuracy"]])


class LossAccuracyPlot(TimePlotBase):
    """Loss on a log axis above accuracy on a fixed 0..1 axis, x-linked."""

    TIP = (
        "Training loss (log scale) and accuracy: a loss that stalls means the gradient is not reaching the "
        "layers that need it; one that shoots up and turns nan means it exploded."
    )
    EMPTY_HINT = "Press Run to train; this plot will show the training loss and accuracy over the steps."

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._cache = BinCache(MAX_CURVE_BINS)
        self._bins: Optional[Bins] = None

        self.loss_plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        make_log_plot(self.loss_plot, "loss")
        self.loss_plot.setLabel("bottom", "")
        self.loss_curve = _add(self.loss_plot, LineItem(pg.mkPen("#ff7043", width=1)))
        self.acc_plot: pg.PlotItem = self.graphics.addPlot(row=1, col=0)
        plain_axes(self.acc_plot)
        self.acc_plot.setLabel("left", "accuracy")
        self.acc_plot.setLabel("bottom", "step")
        self.acc_plot.setXLink(self.loss_plot)
        self.acc_plot.enableAutoRange(y=False)
        self.acc_plot.setYRange(0.0, 1.0, padding=0.02)
        self.acc_plot.setLimits(yMin=-0.05, yMax=1.05)
        self.acc_curve = _add(self.acc_plot, LineItem(pg.mkPen("#66bb6a", width=1)))
        # Branch B of a forked run: same colours, dashed (created once, empty until a fork).
        dash = Qt.PenStyle.DashLine
        self.loss_curve_b = _add(self.loss_plot, LineItem(pg.mkPen("#ffcc80", width=1, style=dash)))
        self.acc_curve_b = _add(self.acc_plot, LineItem(pg.mkPen("#c5e1a5", width=1, style=dash)))
        self._cache_b = BinCache(MAX_CURVE_BINS)
        self._b_shown = False
        self.graphics.ci.layout.setRowStretchFactor(0, 1)
        self.graphics.ci.layout.setRowStretchFactor(1, 1)
        self.markers_list.append(EventMarkers(self.loss_plot))
        self.follower = RangeFollower(self.loss_plot, x=True, y_log=True)
        self.followers.append(self.follower)
        self.markers_list.append(EventMarkers(self.acc_plot, labels=False))
        self._hover_plots.extend([self.loss_plot, self.acc_plot])
        self._finish_layout()

    @property
    def curves(self) -> list[LineItem]:
        """[loss curve, accuracy curve]."""
        return [self.loss_curve, self.acc_curve]

    def reset(self) -> None:
        super().reset()
        self._cache.reset()
        self._bins = None
        self._cache_b.reset()
        self._b_shown = False
        for c in (self.loss_curve, self.acc_curve, self.loss_curve_b, self.acc_curve_b):
            c.setData([], [])

    def _draw(self, store: Session) -> None:
        if len(store) == 0:
            return
        scalars = store.scalars
        cols = _COLS
        bins = self._cache.update(store, "loss_accuracy", lambda a, b: scalars[a:b][:, cols])
        self._bins = bins
        steps = store.steps
        x, loss = curve_points(steps, bins, 0)
        with np.errstate(invalid="ignore"):
            np.clip(loss, LOG_FLOOR, LOG_CEIL, out=loss)
        self.loss_curve.setData(x, loss)
        x, acc = curve_points(steps, bins, 1)
        self.acc_curve.setData(x, acc)
        b = self.compare
        if b is not None and len(b):
            bins_b = self._cache_b.update(b, "loss_accuracy_b", lambda i, j: b.scalars[i:j][:, cols])
            xb, loss_b = curve_points(b.steps, bins_b, 0)
            with np.errstate(invalid="ignore"):
                np.clip(loss_b, LOG_FLOOR, LOG_CEIL, out=loss_b)
            self.loss_curve_b.setData(xb, loss_b)
            self.acc_curve_b.setData(*curve_points(b.steps, bins_b, 1))
            self._b_shown = True
            self.follower.update(float(steps[0]), float(max(steps[-1], b.steps[-1])), np.concatenate([loss, loss_b]))
        else:
            if self._b_shown:
                self._b_shown = False
                self._cache_b.reset()
                self.loss_curve_b.setData([], [])
                self.acc_curve_b.setData([], [])
            self.follower.update(float(steps[0]), float(steps[-1]), loss)
        notes = []
        if bins.k > 1:
            notes.append(f"{bins.k} steps per point (min and max)")
        loss_note = nonfinite_note(Bins(bins.k, bins.n_rows, bins.mx[:, :1], bins.mn[:, :1]), steps, "loss")
        if loss_note:
            notes.append(loss_note)
        if store.diverged_at is not None:
            notes.append(f"diverged at step {store.diverged_at}")
        self.note.setText("; ".join(notes))

    def readout_at(self, plot_index: int, x: float, y: float) -> str:
        store = self._store
        if store is None:
            return ""
        row = nearest_row(store.steps, x)
        if row is None:
            return ""
        loss = store.column("loss")[row]
        acc = store.column("accuracy")[row]
        plot = self.loss_plot if plot_index == 0 else self.acc_plot
        text = f"step {int(store.steps[row])}: loss = {fmt(loss)}, accuracy = {fmt(acc)}"
        b = self.compare
        if b is not None and len(b):
            rb = nearest_row(b.steps, x)
            if rb is not None:
                text = "A " + text + f" | B: loss = {fmt(b.column('loss')[rb])}, accuracy = {fmt(b.column('accuracy')[rb])}"
        return text + events_text(self.markers, x, plot)


if __name__ == "__main__":
    from .demo_data import run_demo

    raise SystemExit(run_demo(LossAccuracyPlot))
