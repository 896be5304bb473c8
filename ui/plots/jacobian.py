"""The singular values of the hidden-to-hidden Jacobian: dynamical isometry at a glance.

Why a spectrum and not just a norm: a gradient can keep its overall size while
some directions vanish and others explode. The Jacobian from the first to the
last hidden layer (gradsim.theory.jacobian.jacobian_spectrum) maps every input-side
direction; when all its singular values sit near 1 (orthogonal init in a
linear or tanh net, Saxe et al. 2013, Pennington et al. 2017) every direction
passes unchanged, when they spread over decades (Gaussian init) the network is
ill-conditioned whatever its mean gain. The worker computes the values on
demand (the "Compute" button) between two training steps; this widget only
draws them.

Run alone: ``python -m ui.plots.jacobian`` (orthogonal vs Gaussian init on two
small GradNets, computed with gradsim directly).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from .axes import plain_axes, scene_to_view
from .decimate import LOG_CEIL, LOG_FLOOR
from .labels import fmt, make_note, make_readout

#: Histogram bins per decade of singular value.
BINS_PER_DECADE = 10
#: The histogram spans at least this many decades, so a spike at 1 still reads as a spike.
MIN_DECADES = 1.0
#: Fewest and most histogram bins (a narrow spectrum gets finer bins than 10 per decade).
MIN_BINS = 20
MAX_BINS = 400


class JacobianSpectrumPlot(QWidget):
    """Histogram of singular values (log x) with the isometry line at 1 and a min/median/max summary."""

    #: The user asked for the spectrum at the current weights (the window asks the worker).
    compute_requested = Signal()

    TIP = (
        "Singular values of the Jacobian from the first to the last hidden layer at the current weights: "
        "all near 1 (orthogonal init in a linear or tanh net) means signals neither vanish nor explode in any "
        "direction; a wide spread means some directions vanish while others explode. With residual "
        "connections it is the stream's Jacobian \u2202z_last / \u2202z_1 (z = the pre-activation the skips carry)."
    )

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        #: The values last given, as float64 (samples, width); empty when none.
        self.values: np.ndarray = np.empty((0, 0))
        #: Every non-nan value, clamped to [LOG_FLOOR, LOG_CEIL]: what the rug marks show.
        self.clamped: np.ndarray = np.empty(0)
        #: Histogram bin edges (singular value units) and fraction of values per bin.
        self.edges: np.ndarray = np.empty(0)
        self.fractions: np.ndarray = np.empty(0)
        #: min, median, max, condition (median over samples of max/min), cond_lo, cond_hi, samples, width, nan.
        self.stats: dict[str, float] = {}
        self.label = ""

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        top = QHBoxLayout()
        self.header = QLabel("")
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.header.setToolTip("Which network the spectrum was computed for (and when).")
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip(
            "Compute the singular values at the current weights (taken between two training steps; "
            "costs one SVD per sample, so it runs on demand)."
        )
        top.addWidget(self.header, 1)
        top.addWidget(self.compute_button)
        layout.addLayout(top)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setToolTip(self.TIP)
        self.graphics.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        plain_axes(self.plot)
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLimits(xMin=math.log10(LOG_FLOOR) - 1, xMax=math.log10(LOG_CEIL) + 1)
        self.plot.setLabel("bottom", "singular value \u03c3 of \u2202h_last / \u2202h_1")
        self.plot.setLabel("left", "fraction of singular values")
        self.hist = self.plot.plot(
            stepMode="center", fillLevel=0, pen=pg.mkPen("#56b4e9", width=1), brush=pg.mkBrush(86, 180, 233, 110)
        )
        #: One mark per singular value under the histogram, so a lone outlier is never lost in a bin.
        self.rug = self.plot.plot(pen=None, symbol="|", symbolSize=8, symbolPen=pg.mkPen("#e69f00"), symbolBrush=None)
        self.isometry = pg.InfiniteLine(
            pos=0.0, angle=90, movable=False, pen=pg.mkPen("#66bb6a", width=1, style=Qt.PenStyle.DashLine),
            label="isometry \u03c3 = 1", labelOpts={"position": 0.92, "color": "#66bb6a"},
        )
        self.plot.addItem(self.isometry, ignoreBounds=True)
        self.plot.getViewBox().disableAutoRange()
        self.plot.setXRange(-1.0, 1.0, padding=0)
        self.plot.setYRange(0.0, 1.0, padding=0)
        layout.addWidget(self.graphics, 1)

        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setToolTip(
            "Smallest, median and largest singular value, and the condition number max/min: "
            "1 is a perfect isometry, 1e6 means some directions are a million times weaker than others."
        )
        layout.addWidget(self.summary)
        self.note = make_note()
        layout.addWidget(self.note)
        self.readout = make_readout("The histogram bin under the mouse: its range of singular values and how many fall in it.")
        layout.addWidget(self.readout)
        self.setToolTip(self.TIP)

        self.compute_button.clicked.connect(self._on_compute_clicked)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.set_spectrum(None)

    # ----------------------------------------------------------------- public
    def set_spectrum(self, values: Optional[np.ndarray], label: str = "") -> None:
        """Draw singular values: (samples, width) from ``theory.jacobian_spectrum``, or one 1-D set.

        None clears the plot. Nan values are counted and left out; 0 and values
        below 1e-20 are drawn at 1e-20, inf and values above 1e20 at 1e20 (a log
        axis cannot show them), and the note under the plot says so.
        """
        self.label = label
        self.header.setText(label)
        if values is None:
            self.values = np.empty((0, 0))  # nothing of an earlier spectrum stays (Reset, a new run)
            self._clear("Press Compute for the singular values at the current weights.")
            return
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 0:
            arr = arr.reshape(1, 1)
        elif arr.ndim == 1:
            arr = arr.reshape(1, -1)
        elif arr.ndim > 2:
            arr = arr.reshape(arr.shape[0], -1)
        self.values = arr
        if arr.size == 0:
            self._clear("No singular values (empty spectrum).")
            return
        nan = np.isnan(arr)
        flat = arr[~nan]
        n_nan = int(nan.sum())
        if flat.size == 0:
            self._clear(f"All {arr.size} singular values are nan: the network's weights or activations are not finite.")
            self.note.setText(f"{n_nan} nan values, not drawn")
            return
        abs_flat = np.abs(flat)  # singular values are >= 0; a negative input is a caller's mistake, shown by size
        with np.errstate(invalid="ignore"):
            low = abs_flat < LOG_FLOOR
            high = abs_flat > LOG_CEIL
        clamped = np.clip(abs_flat, LOG_FLOOR, LOG_CEIL)
        self.clamped = clamped
        self._draw_histogram(clamped)
        self.stats = self._statistics(arr, n_nan)
        self.summary.setText(self._summary_text())
        notes = []
        if n_nan:
            notes.append(f"{n_nan} nan value(s) not drawn")
        if low.any():
            notes.append(f"{int(low.sum())} value(s) 0 or < 1e-20 drawn at 1e-20 (log axis)")
        if high.any():
            notes.append(f"{int(high.sum())} value(s) inf or > 1e20 drawn at 1e20")
        self.note.setText("; ".join(notes))

    def clear(self) -> None:
        """Remove the spectrum (a new run: the old weights are gone)."""
        self.set_spectrum(None)

    # ------------------------------------------------------------------ slots
    @Slot()
    def _on_compute_clicked(self) -> None:
        self.compute_requested.emit()

    @Slot(object)
    def _on_mouse_moved(self, pos: QPointF) -> None:
        """Name the bin under the mouse: the histogram is read at a glance, the counts here."""
        p = scene_to_view(self.plot, pos)
        if p is None or self.edges.size < 2:
            return
        sv = 10.0 ** p.x()
        i = int(np.searchsorted(self.edges, sv, side="right")) - 1
        if not 0 <= i < self.fractions.size:
            self.readout.setText(f"\u03c3 = {fmt(sv)}: outside the histogram")
            return
        n = int(round(self.fractions[i] * self.clamped.size))
        self.readout.setText(
            f"\u03c3 from {fmt(self.edges[i])} to {fmt(self.edges[i + 1])}: {n} value(s) ({self.fractions[i]:.1%})"
        )

    # ---------------------------------------------------------------- drawing
    def _clear(self, message: str) -> None:
        self.clamped = np.empty(0)
        self.edges = np.empty(0)
        self.fractions = np.empty(0)
        self.stats = {}
        if self.values.size == 0 and message.startswith("Press"):
            self.values = np.empty((0, 0))
        self.hist.setData([], [])
        self.rug.setData([], [])
        self.summary.setText(message)
        self.note.setText("")
        self.readout.setText(" ")

    def _draw_histogram(self, clamped: np.ndarray) -> None:
        lv = np.log10(clamped)
        lo = math.floor(float(lv.min()) * BINS_PER_DECADE) / BINS_PER_DECADE
        hi = math.ceil(float(lv.max()) * BINS_PER_DECADE) / BINS_PER_DECADE
        if hi - lo < MIN_DECADES:
            # A narrow spectrum (an isometry puts every value at 1): centre it in an odd number
            # of bins, so a single repeated value sits in the middle of one bin, not on an edge.
            mid = 0.5 * (float(lv.min()) + float(lv.max()))
            lo, hi = mid - MIN_DECADES / 2, mid + MIN_DECADES / 2
            n_bins = MIN_BINS | 1
        else:
            n_bins = min(MAX_BINS, max(MIN_BINS, int(round((hi - lo) * BINS_PER_DECADE))))
        log_edges = np.linspace(lo, hi, n_bins + 1)
        counts, _ = np.histogram(lv, bins=log_edges)
        self.edges = 10.0 ** log_edges
        self.fractions = counts / float(clamped.size)
        self.hist.setData(self.edges, self.fractions)
        top = float(self.fractions.max()) if self.fractions.size else 1.0
        rug_y = -0.04 * top
        self.rug.setData(clamped, np.full(clamped.size, rug_y))
        # View: the data and the isometry line, a little margin; reset on every new spectrum.
        self.plot.setXRange(min(lo, -0.25) - 0.05, max(hi, 0.25) + 0.05, padding=0)
        self.plot.setYRange(2.5 * rug_y, 1.08 * top, padding=0)

    @staticmethod
    def _statistics(arr: np.ndarray, n_nan: int) -> dict[str, float]:
        flat = arr[~np.isnan(arr)]
        conds = []
        for row in arr:
            r = row[~np.isnan(row)]
            if r.size == 0:
                continue
            mx, mn = float(r.max()), float(r.min())
            conds.append(math.inf if mn <= 0 else mx / mn)
        conds_arr = np.asarray(conds, dtype=np.float64)
        return {
            "min": float(flat.min()),
            "median": float(np.median(flat)),
            "max": float(flat.max()),
            "condition": float(np.median(conds_arr)) if conds_arr.size else math.nan,
            "cond_lo": float(conds_arr.min()) if conds_arr.size else math.nan,
            "cond_hi": float(conds_arr.max()) if conds_arr.size else math.nan,
            "samples": float(arr.shape[0]),
            "width": float(arr.shape[1]),
            "nan": float(n_nan),
        }

    def _summary_text(self) -> str:
        s = self.stats
        samples = int(s["samples"])
        text = (
            f"\u03c3 min {fmt(s['min'])}, median {fmt(s['median'])}, max {fmt(s['max'])}; "
            f"condition number max/min {fmt(s['condition'])}"
        )
        if samples > 1:
            text += f" (median over {samples} samples, from {fmt(s['cond_lo'])} to {fmt(s['cond_hi'])})"
        text += f" \u2014 {samples} x {int(s['width'])} values"
        if s["condition"] == math.inf:
            text += "; a zero singular value: some direction is lost entirely"
        return text


# ------------------------------------------------------------------------ demo
def _demo_spectrum(init: str, depth: int, width: int, activation: str, seed: int) -> np.ndarray:
    """The spectrum of a fresh GradNet, computed with gradsim directly (no worker)."""
    import torch

    from gradsim.models.mlp import GradNet
    from gradsim.theory.jacobian import jacobian_spectrum

    net = GradNet(2, 2, depth, width, activation, batchnorm=False)
    net.reinit(init, torch.Generator().manual_seed(seed))
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(seed + 1))
    return jacobian_spectrum(net, x)


def main(argv: Optional[list[str]] = None) -> int:
    """Two plots side by side: orthogonal vs Gaussian (xavier_normal) init; Compute re-draws new weights."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Jacobian spectrum of orthogonal vs Gaussian init.")
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--png", help="save a screenshot to this file and exit")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    app = pg.mkQApp("JacobianSpectrumPlot")
    window = QWidget()
    window.setWindowTitle(f"GradSim - Jacobian spectrum, {args.depth} {args.activation} layers of {args.width}")
    row = QHBoxLayout(window)
    seeds = {"orthogonal": 0, "xavier_normal": 0}
    for init in seeds:
        plot = JacobianSpectrumPlot()
        row.addWidget(plot)

        def recompute(init: str = init, plot: JacobianSpectrumPlot = plot) -> None:
            seeds[init] += 1
            values = _demo_spectrum(init, args.depth, args.width, args.activation, seeds[init])
            plot.set_spectrum(values, f"{init} init, seed {seeds[init]}")

        plot.compute_requested.connect(recompute)
        recompute()
    window.resize(1200, 500)
    if args.png:
        window.show()
        app.processEvents()
        return 0 if window.grab().save(args.png) else 1
    window.show()
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
