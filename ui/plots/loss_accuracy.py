"""Loss (log y) and accuracy (0..1) over time: what the gradients do to learning.

Why next to the gradient plots: a vanishing gradient reads as a loss that stalls
and an exploding one as a loss that shoots up and turns nan; seeing the two
together ties the cause to the symptom.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gradsim.metrics import STEP_INDEX
from gradsim.session.store import Session

from .base import RangeFollower, TimePlotBase
from .axes import make_log_plot, plain_axes
from .decimate import LOG_CEIL, LOG_FLOOR, MAX_CURVE_BINS, BinCache, Bins, curve_points, nearest_row, nonfinite_note
from .branch_b import b_pen, branch_note, end_dot, last_finite
from .labels import LegendLabel, fmt
from .markers import EventMarkers, events_text
from .items import LineItem


def _add(plot: pg.PlotItem, item: LineItem) -> LineItem:
    plot.addItem(item)
    return item


_COLS = np.array([STEP_INDEX["loss"], STEP_INDEX["accuracy"], STEP_INDEX["clipped"]])
_HELD = STEP_INDEX["test_accuracy"]
#: Where the clipped-steps band sits on the accuracy axis (below 0, inside its limits).
CLIP_BAND_Y = -0.03
#: At most this many held-out points are drawn (evenly picked; a long run measures thousands).
MAX_HELD_POINTS = 2000
LOSS_COLOUR, BATCH_COLOUR, HELD_COLOUR, CLIP_COLOUR = "#ff7043", "#66bb6a", "#42a5f5", "#ab47bc"


def held_out_points(store: Session) -> tuple[np.ndarray, np.ndarray]:
    """(steps, held-out accuracy) of the rows where it was measured, at most MAX_HELD_POINTS (the last kept)."""
    col = store.column("test_accuracy")
    rows = np.flatnonzero(np.isfinite(col))
    if len(rows) > MAX_HELD_POINTS:
        pick = np.unique(np.linspace(0, len(rows) - 1, MAX_HELD_POINTS).round().astype(int))
        rows = rows[pick]
    return store.steps[rows].astype(np.float64), col[rows].astype(np.float64)


def clipped_steps(store: Session, bins: Bins) -> np.ndarray:
    """The x of every clipped step (one per bin holding one when the curve is binned)."""
    if bins.n_bins == 0:
        return np.empty(0)
    return store.steps[bins.starts()][bins.mx[:, 2] > 0].astype(np.float64)


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
        self.loss_curve = _add(self.loss_plot, LineItem(pg.mkPen(LOSS_COLOUR, width=1)))
        self.acc_plot: pg.PlotItem = self.graphics.addPlot(row=1, col=0)
        plain_axes(self.acc_plot)
        self.acc_plot.setLabel("left", "accuracy")
        self.acc_plot.setLabel("bottom", "step")
        self.acc_plot.setXLink(self.loss_plot)
        self.acc_plot.enableAutoRange(y=False)
        self.acc_plot.setYRange(0.0, 1.0, padding=0.02)
        self.acc_plot.setLimits(yMin=-0.05, yMax=1.05)
        self.acc_curve = _add(self.acc_plot, LineItem(pg.mkPen(BATCH_COLOUR, width=1)))
        # Held-out accuracy: the points where it was measured (every stats_every steps), joined.
        self.held_curve = _add(self.acc_plot, LineItem(pg.mkPen(HELD_COLOUR, width=2)))
        # Clipping shown where it happens: a band of marks under the accuracy curve, one per clipped step.
        self.clip_band = _add(self.acc_plot, LineItem(pg.mkPen(CLIP_COLOUR), dots=3.0, brush=CLIP_COLOUR))
        self.legend = LegendLabel()
        self.legend.setToolTip("accuracy is the training batch's; held-out is measured on the test split "
                               "every stats interval; clipped marks the steps whose gradient was clipped")
        self._layout.addWidget(self.legend)
        # Branch B of a forked run: same colours, dashed (created once, empty until a fork).
        # Wider than A and with a dot at its end, so a short or diverged B cannot hide (ui/plots/branch_b.py).
        self.loss_curve_b = _add(self.loss_plot, LineItem(b_pen("#ffcc80")))
        self.acc_curve_b = _add(self.acc_plot, LineItem(b_pen("#c5e1a5")))
        self.loss_end_b = _add(self.loss_plot, end_dot("#ffcc80"))
        self.acc_end_b = _add(self.acc_plot, end_dot("#c5e1a5"))
        self._cache_b = BinCache(MAX_CURVE_BINS)
        self._b_shown = False
        # The accuracy plot gets the larger share: its axis title is the longer one, and it holds
        # three things (batch, held-out, the clipped-steps band) to the loss's one.
        self.graphics.ci.layout.setRowStretchFactor(0, 2)
        self.graphics.ci.layout.setRowStretchFactor(1, 3)
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
        for c in (self.loss_curve, self.acc_curve, self.loss_curve_b, self.acc_curve_b, self.held_curve, self.clip_band,
                  self.loss_end_b, self.acc_end_b):
            c.setData([], [])
        self.legend.set_entries([])

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
        hx, hy = held_out_points(store)
        self.held_curve.setData(hx, hy)
        cx = clipped_steps(store, bins)
        self.clip_band.setData(cx, np.full(len(cx), CLIP_BAND_Y))
        entries = [(LOSS_COLOUR, "loss", False), (BATCH_COLOUR, "batch accuracy", False)]
        if len(hx):
            entries.append((HELD_COLOUR, "held-out accuracy", False))
        if len(cx):
            entries.append((CLIP_COLOUR, "clipped steps (dots)", False))
        self.legend.set_entries(entries)
        b = self.compare
        if b is not None and len(b):
            bins_b = self._cache_b.update(b, "loss_accuracy_b", lambda i, j: b.scalars[i:j][:, cols])
            xb, loss_b = curve_points(b.steps, bins_b, 0)
            with np.errstate(invalid="ignore"):
                np.clip(loss_b, LOG_FLOOR, LOG_CEIL, out=loss_b)
            self.loss_curve_b.setData(xb, loss_b)
            xa, acc_b = curve_points(b.steps, bins_b, 1)
            self.acc_curve_b.setData(xa, acc_b)
            self.loss_end_b.setData(*last_finite(xb, loss_b))
            self.acc_end_b.setData(*last_finite(xa, acc_b))
            self._b_shown = True
            self.follower.update(float(steps[0]), float(max(steps[-1], b.steps[-1])), np.concatenate([loss, loss_b]))
        else:
            if self._b_shown:
                self._b_shown = False
                self._cache_b.reset()
                for c in (self.loss_curve_b, self.acc_curve_b, self.loss_end_b, self.acc_end_b):
                    c.setData([], [])
            self.follower.update(float(steps[0]), float(steps[-1]), loss)
        notes = []
        if bins.k > 1:
            notes.append(f"{bins.k} steps per point (min and max)")
        loss_note = nonfinite_note(Bins(bins.k, bins.n_rows, bins.mx[:, :1], bins.mn[:, :1]), steps, "loss")
        if loss_note:
            notes.append(loss_note)
        if store.diverged_at is not None:
            notes.append(f"diverged at step {store.diverged_at}")
        if b is not None and len(b):
            notes.append(branch_note(b))
        n_clipped = int(np.count_nonzero(store.column("clipped") > 0))
        if n_clipped:
            notes.append(f"clipped on {n_clipped:,} of {len(store):,} steps (gradient clipping, counted on the recorded steps)")
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
        text = f"step {int(store.steps[row])}: loss = {fmt(loss)}, batch accuracy = {fmt(acc)}"
        held = store.column("test_accuracy")[: row + 1]
        measured = np.flatnonzero(np.isfinite(held))
        if len(measured):
            r = int(measured[-1])
            text += f", held-out = {fmt(held[r])} (step {int(store.steps[r])})"
        if store.column("clipped")[row] > 0:
            text += ", clipped"
        b = self.compare
        if b is not None and len(b):
            rb = nearest_row(b.steps, x)
            if rb is not None:
                text = "A " + text + f" | B: loss = {fmt(b.column('loss')[rb])}, accuracy = {fmt(b.column('accuracy')[rb])}"
        return text + events_text(self.markers, x, plot)


if __name__ == "__main__":
    from .demo_data import run_demo

    raise SystemExit(run_demo(LossAccuracyPlot))
