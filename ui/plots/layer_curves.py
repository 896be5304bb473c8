"""A per-layer metric over time for a few chosen layers (default first, middle, last).

Why only a few: the heatmap already shows every layer; curves make the gap
between the input-side and output-side layers readable as numbers, and 100
curves would cost ~50 ms a frame (docs/architecture.md#pitfalls-measured-here).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QWidget

from gradsim.metrics import LAYER_METRICS
from gradsim.session.store import Session

from .base import RangeFollower, TimePlotBase
from .axes import make_log_plot
from .decimate import LOG_CEIL, LOG_FLOOR, MAX_CURVE_BINS, BinCache, Bins, curve_points, nearest_row, nonfinite_note
from .branch_b import b_pen, end_dot, last_finite
from .labels import AXIS_LABELS, fmt, LegendLabel, unit_name
from .layer_choice import default_layers, parse_layers
from .markers import EventMarkers, events_text
from .unit_axis import default_units
from .style import LAYER_COLOURS, MAX_SELECTED_LAYERS
from .items import LineItem


class SelectedLayersPlot(TimePlotBase):
    """Curves of one per-layer metric over steps for selected layers, log y.

    The curve items are created once (one per possible selection slot) and
    only their data and visibility change.
    """

    #: Emitted with the new selection when the user edits the layer list.
    layers_changed = Signal(list)

    LAYERS_TIP = (
        "Layers to draw, e.g. '1, 10, 20' (1 = next to the input); empty = first, middle and last, "
        "whose gap shows how much the gradient shrinks or grows across depth."
    )

    def __init__(self, parent: Optional[QWidget] = None, metric: str = "grad_norm") -> None:
        super().__init__(parent)
        self.metric_name = metric
        self._wanted: Optional[list[int]] = None
        self._shown_layers: list[int] = []
        self._cache = BinCache(MAX_CURVE_BINS)
        self._bins: Optional[Bins] = None

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        label = QLabel("Layers:")
        label.setToolTip(self.LAYERS_TIP)
        controls.addWidget(label)
        self.layer_edit = QLineEdit()
        self.layer_edit.setPlaceholderText("first, middle, last")
        self.layer_edit.setToolTip(self.LAYERS_TIP)
        self.layer_edit.setMaximumWidth(100)
        self.layer_edit.setMinimumWidth(48)
        self.layer_edit.editingFinished.connect(self._on_layers_edited)
        controls.addWidget(self.layer_edit)
        #: The curves' colours and layers, beside the layer box (never over the data).
        self.legend = LegendLabel()
        controls.addWidget(self.legend, 1)
        self._layout.addLayout(controls)

        self.plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        make_log_plot(self.plot, AXIS_LABELS.get(metric, metric))
        self._pool: list[LineItem] = []
        #: The same layers of branch B (a forked run), dashed; created once, hidden until a fork.
        self._pool_b: list[LineItem] = []
        for colour in LAYER_COLOURS:
            item = LineItem(pg.mkPen(colour, width=1))
            item.setVisible(False)
            self.plot.addItem(item)
            self._pool.append(item)
        #: B's end dots, one per curve: a short or diverged branch B stays visible (ui/plots/branch_b.py).
        self._ends_b: list[LineItem] = []
        for colour in LAYER_COLOURS:
            item = LineItem(b_pen(colour))
            item.setVisible(False)
            self.plot.addItem(item)
            self._pool_b.append(item)
            dot = end_dot(colour)
            self.plot.addItem(dot)
            self._ends_b.append(dot)
        self._cache_b = BinCache(MAX_CURVE_BINS)
        self._b_shown = False
        self.markers_list.append(EventMarkers(self.plot))
        self.follower = RangeFollower(self.plot, x=True, y_log=True)
        self.followers.append(self.follower)
        self._hover_plots.append(self.plot)
        self._finish_layout()

    # ----------------------------------------------------------------- public
    @property
    def layers(self) -> list[int]:
        """The layers drawn (1-based), in curve order."""
        return list(self._shown_layers)

    @property
    def curves(self) -> list[LineItem]:
        """The visible curve items, one per entry of ``layers`` (``getOriginalDataset()`` = clamped data)."""
        return self._pool[: len(self._shown_layers)]

    def set_layers(self, layers: Optional[Sequence[int]]) -> None:
        """Draw these layers (1-based; at most 8); None or [] returns to first, middle, last."""
        wanted = None if not layers else [int(v) for v in layers][:MAX_SELECTED_LAYERS]
        self._wanted = wanted
        text = "" if wanted is None else ", ".join(str(v) for v in wanted)
        if self.layer_edit.text() != text:
            self.layer_edit.setText(text)
        self.redraw()

    def reset(self) -> None:
        super().reset()
        self._cache.reset()
        self._bins = None
        self._shown_layers = []
        self._cache_b.reset()
        self._b_shown = False
        for item in self._pool + self._pool_b:
            item.setData([], [])
            item.setVisible(False)
        for dot in self._ends_b:
            dot.setData([], [])
        self.legend.set_entries([])

    # ---------------------------------------------------------------- drawing
    def _effective_layers(self, n_layers: int) -> list[int]:
        if self._wanted:
            chosen = [v for v in self._wanted if 1 <= v <= n_layers]
            if chosen:
                return chosen
        # first, middle and last of the units this metric is defined for (time steps, not weight groups)
        picked = default_units(self._store, self.metric_name) if self._store is not None else []
        return picked if picked and max(picked) <= n_layers else default_layers(n_layers)

    def _sync_items(self, layers: list[int]) -> None:
        """Show one pooled curve per layer and name them in the legend (only when the selection changes)."""
        if layers == self._shown_layers:
            return
        for i, item in enumerate(self._pool):
            active = i < len(layers)
            item.setVisible(active)
            if not active:
                item.setData([], [])
        self._shown_layers = list(layers)
        self._cache.reset()
        self._cache_b.reset()
        self._b_shown = False
        self._show_legend()

    def _show_legend(self) -> None:
        entries = [(LAYER_COLOURS[i], unit_name(self._store, layer), False) for i, layer in enumerate(self._shown_layers)]
        if self.compare is not None:
            entries.append(("#bdbdbd", "B", True))
        self.legend.set_entries(entries)

    def _draw(self, store: Session) -> None:
        layers = self._effective_layers(store.n_layers)
        self._sync_items(layers)
        if len(store) == 0:
            return
        idx = np.asarray(layers, dtype=np.intp) - 1
        view = store.layer_metric(self.metric_name)
        bins = self._cache.update(store, (self.metric_name, tuple(layers)), lambda a, b: view[a:b][:, idx])
        self._bins = bins
        steps = store.steps
        ys = []
        for i, item in enumerate(self.curves):
            x, y = curve_points(steps, bins, i)
            with np.errstate(invalid="ignore"):
                np.clip(y, LOG_FLOOR, LOG_CEIL, out=y)
            item.setData(x, y)
            ys.append(y)
        x_end = float(steps[-1])
        b = self.compare
        if b is not None and len(b):
            bins_b = self._cache_b.update(b, (self.metric_name, tuple(layers), "B"), lambda i, j: b.layer_metric(self.metric_name)[i:j][:, idx])
            for i, item in enumerate(self._pool_b):
                if i < len(layers):
                    xb, yb = curve_points(b.steps, bins_b, i)
                    with np.errstate(invalid="ignore"):
                        np.clip(yb, LOG_FLOOR, LOG_CEIL, out=yb)
                    item.setData(xb, yb)
                    item.setVisible(True)
                    self._ends_b[i].setData(*last_finite(xb, yb))
                    ys.append(yb)
                else:
                    self._ends_b[i].setData([], [])
                    if item.isVisible():
                        item.setVisible(False)
            x_end = max(x_end, float(b.steps[-1]))
            if not self._b_shown:
                self._b_shown = True
                self._show_legend()
        elif self._b_shown:
            self._b_shown = False
            self._cache_b.reset()
            for item in self._pool_b:
                item.setData([], [])
                item.setVisible(False)
            for dot in self._ends_b:
                dot.setData([], [])
            self._show_legend()
        self.follower.update(float(steps[0]), x_end, self._range_values(ys))
        note = nonfinite_note(bins, steps, AXIS_LABELS.get(self.metric_name, self.metric_name))
        if bins.k > 1:
            note = f"{bins.k} steps per point (min and max)" + ("; " + note if note else "")
        self.note.setText(note)

    def _range_values(self, ys: list[np.ndarray]) -> np.ndarray:
        """The y values the view must show (subclasses add reference lines)."""
        return np.concatenate(ys) if ys else np.empty(0)

    # ------------------------------------------------------------------ hover
    def readout_at(self, plot_index: int, x: float, y: float) -> str:
        store = self._store
        if store is None or not self._shown_layers:
            return ""
        row = nearest_row(store.steps, x)
        if row is None:
            return ""
        values = store.layer_metric(self.metric_name)[row]
        parts = [f"{unit_name(store, layer)} = {fmt(values[layer - 1])}" for layer in self._shown_layers]
        text = f"step {int(store.steps[row])}: {AXIS_LABELS.get(self.metric_name, self.metric_name)} " + ", ".join(parts)
        b = self.compare
        if b is not None and len(b):
            rb = nearest_row(b.steps, x)
            if rb is not None:
                vb = b.layer_metric(self.metric_name)[rb]
                text = "A " + text + " | B " + ", ".join(f"{unit_name(b, layer)} = {fmt(vb[layer - 1])}" for layer in self._shown_layers)
        return text + events_text(self.markers, x, self.plot)

    @Slot()
    def _on_layers_edited(self) -> None:
        """The user typed a layer list: redraw and let the sibling plot follow."""
        text = self.layer_edit.text().strip()
        try:
            units = self._store.units if self._store is not None else []
            layers = parse_layers(text, {u.name: u.layer for u in units})
        except ValueError:
            self.note.setText(f"layers {text!r}: type numbers like 1, 10, 20 or unit names like 1, linear 5, output")
            return
        if (layers or None) == self._wanted:
            return
        self.set_layers(layers)
        self.layers_changed.emit(self.layers)


class LayerCurves(SelectedLayersPlot):
    """The chosen metric over time for selected layers (default first, middle, last)."""

    TIP = (
        "The chosen metric over training for a few layers: when the input-side curve sits decades below "
        "the output-side one, the gradient vanishes on its way back."
    )
    EMPTY_HINT = "Press Run to train; this plot will show the chosen metric over the steps for the first, middle and last layer."

    def set_metric(self, name: str) -> None:
        """Plot another per-layer metric (any of ``LAYER_METRICS``)."""
        if name not in LAYER_METRICS:
            raise ValueError(f"metric {name!r}: one of {', '.join(LAYER_METRICS)}")
        self.metric_name = name
        self.plot.setLabel("left", AXIS_LABELS.get(name, name))
        self._cache.reset()
        self.redraw()


if __name__ == "__main__":
    from .demo_data import run_demo

    raise SystemExit(run_demo(LayerCurves, metric="act_grad_norm"))
