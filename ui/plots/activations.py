"""Saturated and dead units per layer at the latest sampled step: why gradients vanish.

Why: a saturated sigmoid/tanh unit passes almost no gradient back, and a dead
ReLU unit passes none; the fraction of such units per layer is the mechanism
behind the decay the other plots show.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gradsim.models.family import unit_rows
from gradsim.session.store import Session

from .base import PlotBase
from .axes import plain_axes
from .labels import fmt, LegendLabel
from .unit_axis import set_unit_title, unit_axis_title

_WIDTH = 0.4


class ActivationStats(PlotBase):
    """act_saturation and act_dead per layer (bars) at the latest step with sampled statistics."""

    TIP = (
        "Fraction of saturated units (flat sigmoid/tanh region) and dead units (ReLU always zero) per layer: "
        "both pass little or no gradient back, so high bars explain a vanishing gradient."
    )
    EMPTY_HINT = "Press Run to train; this plot will show the fraction of saturated and dead units per layer."

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        #: The step whose statistics are shown (None before any sampled step).
        self.step: Optional[int] = None
        #: Raw per-layer values at ``step`` (nan where not recorded).
        self.saturation: np.ndarray = np.empty(0)
        self.dead: np.ndarray = np.empty(0)
        self.mean: np.ndarray = np.empty(0)
        self.std: np.ndarray = np.empty(0)

        self.header.setToolTip("The step whose activation statistics are shown: they are sampled every few steps.")
        self._layout.addWidget(self.header)
        self.legend = LegendLabel()
        self.legend.set_entries([("#ffb300", "saturated", False), ("#e53935", "dead", False)])
        self._layout.addWidget(self.legend)
        self.plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        plain_axes(self.plot)
        self.plot.setLabel("left", "fraction of units")
        self.plot.setLabel("bottom", "layer (1 = input side)")
        self.plot.enableAutoRange(y=False)
        self.plot.setYRange(0.0, 1.0, padding=0.02)
        self.plot.setLimits(yMin=-0.05, yMax=1.05)
        self.saturation_bars = pg.BarGraphItem(x=[], height=[], width=_WIDTH, brush="#ffb300", pen=None, name="saturated")
        self.dead_bars = pg.BarGraphItem(x=[], height=[], width=_WIDTH, brush="#e53935", pen=None, name="dead")
        self.plot.addItem(self.saturation_bars)
        self.plot.addItem(self.dead_bars)
        #: Said in words when every bar is zero: an empty plot would look broken, but zero is the value.
        self.zero_text = pg.TextItem("no saturated\nor dead units", color="#bdbdbd", anchor=(0.5, 0.5))
        self.zero_text.setPos(0.5, 0.5)
        self.zero_text.setVisible(False)
        self.plot.addItem(self.zero_text, ignoreBounds=True)
        self._hover_plots.append(self.plot)
        self.plot.getViewBox().disableAutoRange(axis=pg.ViewBox.XAxis)
        self._n_layers_shown = 0
        #: (step, layers, saturation bytes, dead bytes) of the bars drawn (None: none yet).
        self._drawn: Optional[tuple] = None
        self._finish_layout()
        self.legend.setVisible(False)  # until there are bars

    def set_empty(self, empty: bool) -> None:
        super().set_empty(empty)
        self.legend.setVisible(not empty)  # no bars, nothing to name

    def reset(self) -> None:
        super().reset()
        self.step = None
        self.saturation = self.dead = self.mean = self.std = np.empty(0)
        self.saturation_bars.setOpts(x=[], height=[])
        self.dead_bars.setOpts(x=[], height=[])
        self.header.set_variants("")
        self.zero_text.setVisible(False)
        self._n_layers_shown = 0
        self._drawn = None

    def _draw(self, store: Session) -> None:
        hs = store.has_stats
        if hs.size == 0:
            return
        last = hs.size - 1 - int(np.argmax(hs[::-1]))
        if not hs[last]:
            self.note.setText("no step with activation statistics yet (they are sampled every few steps)")
            return
        step = int(store.steps[last])
        self.step = step
        # the units with activations (a recurrent run's time steps, not its weight groups)
        rows = unit_rows(store.units, "act_saturation")
        self.saturation = store.layer_metric("act_saturation")[last, rows].astype(np.float64)
        self.dead = store.layer_metric("act_dead")[last, rows].astype(np.float64)
        self.mean = store.layer_metric("act_mean")[last, rows].astype(np.float64)
        self.std = store.layer_metric("act_std")[last, rows].astype(np.float64)
        n_shown = len(rows)
        # Statistics are sampled every few steps: most frames find the same row. Redrawing
        # the bars then would cost a frame's share of GUI time for an unchanged picture.
        set_unit_title(self.plot, "bottom", unit_axis_title(store, rows))
        drawn = (step, n_shown, self.saturation.tobytes(), self.dead.tobytes())
        if drawn == self._drawn:
            return
        self._drawn = drawn
        x = np.arange(1, n_shown + 1, dtype=np.float64)
        sat = np.nan_to_num(self.saturation, nan=0.0, posinf=1.0, neginf=0.0).clip(0.0, 1.0)
        dead = np.nan_to_num(self.dead, nan=0.0, posinf=1.0, neginf=0.0).clip(0.0, 1.0)
        self.saturation_bars.setOpts(x=x - _WIDTH / 2, height=sat, width=_WIDTH)
        self.dead_bars.setOpts(x=x + _WIDTH / 2, height=dead, width=_WIDTH)
        if n_shown != self._n_layers_shown:
            self._n_layers_shown = n_shown
            self.plot.setXRange(0.3, n_shown + 0.7, padding=0)
        self.header.set_variants(
            f"Saturated and dead units at step {step} (latest with statistics)",
            f"Saturated and dead units, step {step}",
            f"Units at step {step}",
            f"step {step}",
        )
        zero = bool(np.all(sat == 0) and np.all(dead == 0))
        self.zero_text.setPos((n_shown + 1) / 2, 0.5)
        self.zero_text.setVisible(zero)
        missing = ~(np.isfinite(self.saturation) & np.isfinite(self.dead))
        self.note.setText(
            f"layers {', '.join(str(int(v)) for v in x[missing][:8])}: non-finite statistics, drawn as 0"
            if missing.any()
            else ""
        )

    def readout_at(self, plot_index: int, x: float, y: float) -> str:
        if self.saturation.size == 0 or not np.isfinite(x):
            return ""
        layer = int(round(x))
        if not 1 <= layer <= self.saturation.size:
            return ""
        i = layer - 1
        return (
            f"step {self.step}, layer {layer}: saturated {fmt(self.saturation[i])}, dead {fmt(self.dead[i])}, "
            f"mean {fmt(self.mean[i])}, std {fmt(self.std[i])}"
        )


if __name__ == "__main__":
    from .demo_data import run_demo

    raise SystemExit(run_demo(ActivationStats))
