"""Layer x step heatmap of log10 of a per-layer metric: vanishing and exploding at a glance.

All layers at once as one image (100 curves would cost ~50 ms a frame;
docs/architecture.md, pitfalls). The step axis is reduced to at most ``MAX_IMAGE_COLUMNS`` bins; each
bin shows the value of its rows farthest from 1 in log10 (the most vanished or
most exploded), so a one-step spike survives downsampling.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from gradsim.models.family import unit_rows
from gradsim.session.store import Session

from .base import RangeFollower, TimePlotBase, head_room
from .axes import plain_axes
from .decimate import MAX_IMAGE_COLUMNS, BinCache, Bins, nearest_row
from .unit_ticks import UnitAxis
from .labels import AXIS_LABELS, HEATMAP_METRICS, METRIC_LABELS, METRIC_TIPS, fmt, unit_name, unit_ticks
from .markers import EventMarkers, events_text
from .unit_axis import rows_of_kind, set_unit_title, unit_axis_title
from .unit_filter import UnitFilterBox, matches, row_ticks, separators

#: Colour of cells holding nan, +inf or a negative value (not a valid norm).
NONFINITE_RGB = (255, 0, 255)
#: Default colour range in log10 units.
DEFAULT_LEVELS = (-12.0, 4.0)
_N_COLOURS = 255  # indices 0..254 are the colour map, 255 is the non-finite colour



#: The ratio view's colour range, log10 B/A either way: a million times for an MLP
#: (a toggle there moves gradients by decades); one decade for a transformer, whose
#: norm placement moves a block's gradient by a factor of a few (the fork lesson would
#: be a faint tint on the million-times scale).
RATIO_SPAN = 6.0
TRANSFORMER_RATIO_SPAN = 1.0


def ratio_span(store: Optional[Session]) -> float:
    config = getattr(store, "config", None) or {}
    return TRANSFORMER_RATIO_SPAN if isinstance(config, dict) and config.get("model") == "transformer" else RATIO_SPAN

class GradientHeatmap(TimePlotBase):
    """Layer (y, layer 1 at the bottom) x step (x) image of log10 of a per-layer metric."""

    TIP = (
        "Each row is a layer (1 = next to the input) and each column a range of steps; "
        "dark rows near the input mean the gradient vanishes on its way back, bright ones that it explodes."
    )
    EMPTY_HINT = "Press Run to train; this heatmap will show every layer's gradient over the steps, dark where it vanishes."

    #: Emitted with a step when the user clicks the image (the depth profile can follow it).
    step_picked = Signal(int)
    #: Emitted on a double-click: go back to following the latest step.
    latest_requested = Signal()
    #: Emitted when the user picks another metric in the combo box.
    metric_changed = Signal(str)
    #: Emitted when the user picks what a forked run's heatmap shows: "A", "B" or "ratio".
    branch_changed = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None, max_columns: int = MAX_IMAGE_COLUMNS) -> None:
        super().__init__(parent)
        self.max_columns = int(max_columns)
        self.metric_name = "grad_norm"
        self.levels: tuple[float, float] = DEFAULT_LEVELS
        self._cache = BinCache(self.max_columns)
        self._bins: Optional[Bins] = None
        self._x0 = 0.0
        self._dx = 1.0  # steps per column
        # Column buffers (layers, max_columns + 1); only columns that changed are recomputed.
        self._val = np.zeros((0, 0), np.float32)
        self._bad = np.zeros((0, 0), bool)
        self._idx = np.zeros((0, 0), np.uint8)
        self._rgba = np.zeros((0, 0, 4), np.uint8)
        self._set_views(0)

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        label = QLabel("Heatmap of")
        controls.addWidget(label)
        self.combo = QComboBox()
        for name in HEATMAP_METRICS:
            self.combo.addItem(METRIC_LABELS[name], name)
            self.combo.setItemData(self.combo.count() - 1, METRIC_TIPS[name], Qt.ItemDataRole.ToolTipRole)
        self.combo.setToolTip(
            "Which per-layer quantity colours the heatmap; ||dL/dz|| shows the backprop signal vanish or explode with depth."
        )
        label.setToolTip(self.combo.toolTip())
        self.combo.currentIndexChanged.connect(self._on_combo_changed)
        controls.addWidget(self.combo)
        #: Which branch of a forked run the image shows (hidden until a fork).
        self.branch_combo = QComboBox()
        for text, key, tip in (
            ("branch A", "A", "The run as it went on after the fork (solid curves elsewhere)."),
            ("branch B", "B", "The forked branch (dashed curves elsewhere)."),
            ("log10 B/A", "ratio", "log10 of branch B's value over branch A's, per layer and step: 0 (white) = equal, "
                                   "red = B larger, blue = B smaller."),
        ):
            self.branch_combo.addItem(text, key)
            self.branch_combo.setItemData(self.branch_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.branch_combo.setToolTip("Compare a forked run: show branch A, branch B, or where they differ (log10 of B/A).")
        self.branch_combo.setVisible(False)
        self.branch_combo.currentIndexChanged.connect(self._on_branch_changed)
        controls.addWidget(self.branch_combo)
        #: Which units of a transformer run the image shows: its residual stream (one row per block
        #: boundary, the gradient's path) or its sublayers (attention and MLP of each block).
        self.unit_combo = QComboBox()
        self.unit_combo.addItem("stream units", "stream")
        self.unit_combo.addItem("block units", "block")
        self.unit_combo.setToolTip("A transformer run: rows for the residual stream between blocks (||dL/dx_l||), "
                                   "or for each block's attention and MLP sublayers.")
        self.unit_combo.setVisible(False)
        self.unit_combo.currentIndexChanged.connect(self._on_unit_kind_changed)
        controls.addWidget(self.unit_combo)
        controls.addStretch(1)
        #: Which units (module paths) the image shows (ui/plots/unit_filter.py).
        self.unit_filter = UnitFilterBox()
        self.unit_filter.textChanged.connect(self._on_filter_changed)
        controls.addWidget(self.unit_filter)
        self._layout.addLayout(controls)

        self.plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0, axisItems={"left": UnitAxis("left")})
        plain_axes(self.plot)
        self.plot.setLabel("left", "layer (1 = input side)")
        self.plot.setLabel("bottom", "step")
        self.plot.getViewBox().setMouseEnabled(x=True, y=False)
        self.plot.getViewBox().disableAutoRange(axis=pg.ViewBox.YAxis)
        self._n_layers_shown = 0
        self._ticks: list[tuple[float, str]] = []
        #: 0-based store rows the image shows, one per image row; None: every row.
        self._rows: Optional[list[int]] = None
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setToolTip(self.TIP)
        self.plot.addItem(self.image)
        self.cmap = pg.colormap.get("viridis")
        lut = np.full((_N_COLOURS + 1, 4), 255, np.uint8)
        lut[:_N_COLOURS, :3] = self.cmap.getLookupTable(nPts=_N_COLOURS, alpha=False)
        lut[_N_COLOURS, :3] = NONFINITE_RGB
        #: colour index -> RGBA; index 255 is the non-finite colour.
        self.lut = lut
        self._lut_sequential = lut
        diverging = pg.colormap.get("CET-D1")
        lut_d = lut.copy()
        lut_d[:_N_COLOURS, :3] = diverging.getLookupTable(nPts=_N_COLOURS, alpha=False)
        self._lut_diverging = lut_d
        self._cmap_sequential, self._cmap_diverging = self.cmap, diverging
        #: What the image shows of a forked run: "A", "B" or "ratio" (log10 B/A).
        self.branch = "A"
        self._levels_sequential = self.levels
        self.colorbar = pg.ColorBarItem(
            values=self.levels,
            colorMap=self.cmap,
            interactive=False,
            width=14,
            label="log10",
        )
        self.colorbar.setToolTip(
            "log10 of the value: bottom colour also means exactly 0 (or below the range), "
            "top colour anything above it, magenta nan/inf (non-finite)."
        )
        self.graphics.addItem(self.colorbar, row=0, col=1)
        self.step_cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ffffff", width=1))
        self.step_cursor.setVisible(False)
        self.step_cursor.setZValue(30)
        self.plot.addItem(self.step_cursor, ignoreBounds=True)
        self.markers_list.append(EventMarkers(self.plot, halo=True))
        #: Lines between groups of units (``encoder.layers.3.*``), made once and reused.
        self._separators: list[pg.InfiniteLine] = []
        self.follower = RangeFollower(self.plot, x=True)
        self.followers.append(self.follower)
        self._hover_plots.append(self.plot)
        self.graphics.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self._finish_layout()
        self._update_tooltip()

    # ----------------------------------------------------------------- public
    def set_unit_kind(self, kind: str) -> None:
        """Show a transformer run's "stream" units (the default) or its "block" units."""
        idx = self.unit_combo.findData(kind)
        if idx < 0:
            raise ValueError(f"unit kind {kind!r}: one of stream, block")
        self.unit_combo.setCurrentIndex(idx)

    def _on_unit_kind_changed(self, _index: int) -> None:
        self._cache.reset()
        self.redraw()

    def set_metric(self, name: str) -> None:
        """Colour the image by another per-layer metric (one of ``HEATMAP_METRICS``)."""
        if name not in HEATMAP_METRICS:
            raise ValueError(f"metric {name!r}: the heatmap shows one of {', '.join(HEATMAP_METRICS)}")
        if name == self.metric_name and self.combo.currentData() == name:
            return
        self.metric_name = name
        idx = self.combo.findData(name)
        if self.combo.currentIndex() != idx:
            self.combo.blockSignals(True)
            self.combo.setCurrentIndex(idx)
            self.combo.blockSignals(False)
        self._cache.reset()
        self._update_tooltip()
        self.redraw()

    def set_levels(self, low: float, high: float) -> None:
        """Change the fixed colour range (log10 units); it never follows the data by itself."""
        if not (np.isfinite(low) and np.isfinite(high) and high > low):
            raise ValueError(f"levels ({low}, {high}): need finite low < high")
        self.levels = (float(low), float(high))
        self.colorbar.setLevels(values=self.levels)
        self._update_tooltip()
        if self._n_cols:
            self._quantise(0, self._n_cols)
            self._push_image()

    def set_forked(self, forked: bool) -> None:
        """Offer (or hide) the branch choice; not forked means branch A."""
        self.branch_combo.setVisible(forked)
        if not forked and self.branch != "A":
            self.set_branch("A")

    def set_branch(self, key: str) -> None:
        """Show branch "A", branch "B" or "ratio" (log10 B/A on a diverging scale centred on 0)."""
        if key not in ("A", "B", "ratio"):
            raise ValueError(f"branch {key!r}: one of A, B, ratio")
        idx = self.branch_combo.findData(key)
        if self.branch_combo.currentIndex() != idx:
            self.branch_combo.blockSignals(True)
            self.branch_combo.setCurrentIndex(idx)
            self.branch_combo.blockSignals(False)
        if key == self.branch:
            return
        was_ratio = self.branch == "ratio"
        self.branch = key
        self._cache.reset()
        if key == "ratio":
            self._levels_sequential = self.levels
            self.lut = self._lut_diverging
            self.colorbar.setColorMap(self._cmap_diverging)
            self.colorbar.getAxis("left").setLabel("log10 B/A")
            span = ratio_span(self._store)
            self.set_levels(-span, span)
        elif was_ratio:
            self.lut = self._lut_sequential
            self.colorbar.setColorMap(self._cmap_sequential)
            self.colorbar.getAxis("left").setLabel("log10")
            self.set_levels(*self._levels_sequential)

    @Slot(int)
    def _on_branch_changed(self, index: int) -> None:
        key = self.branch_combo.itemData(index)
        if key:
            self.set_branch(key)
            self.branch_changed.emit(key)

    def show_step(self, step: Optional[int]) -> None:
        """Draw the step cursor at ``step`` (None hides it)."""
        if step is None:
            self.step_cursor.setVisible(False)
        else:
            self.step_cursor.setPos(step)
            self.step_cursor.setVisible(True)

    def reset(self) -> None:
        super().reset()
        self._cache.reset()
        self._bins = None
        self._set_views(0)
        self.image.clear()
        self.step_cursor.setVisible(False)
        self._n_layers_shown = 0
        self.set_forked(False)

    # ---------------------------------------------------------------- drawing
    def _update_tooltip(self) -> None:
        lo, hi = self.levels
        self.image.setToolTip(
            f"{METRIC_TIPS[self.metric_name]} Colour = log10 from {lo:g} to {hi:g}; exactly 0 and anything below "
            f"take the bottom colour, magenta = nan/inf. With more than {self.max_columns} steps each column "
            "shows the value of its steps farthest from 1 in log10 (most vanished or exploded)."
        )

    def _draw(self, store: Session) -> None:
        if self.branch == "ratio":
            span = ratio_span(store)
            if self.levels != (-span, span):
                self.set_levels(-span, span)
        n = len(store)
        if n == 0:
            self.image.clear()
            self._set_views(0)
            return
        view = store.layer_metric(self.metric_name)
        rows = unit_rows(store.units, self.metric_name)
        self.unit_combo.setVisible(any(u.kind == "stream" for u in store.units))
        rows = rows_of_kind(store.units, rows, self.unit_combo.currentData())
        filter_note = ""
        if self.unit_filter.text().strip():
            kept = matches([store.units[r].name for r in rows], self.unit_filter.text())
            if kept:
                rows = [rows[k] for k in kept]
            else:
                filter_note = f"no unit matches {self.unit_filter.text().strip()!r}: showing all"
        if len(rows) == store.n_layers:  # every unit (an MLP): no gather
            self._rows = None
            bins = self._cache.update(store, (self.metric_name, store.n_layers), lambda a, b: view[a:b])
        else:  # only the units this metric is defined for (time steps, not weight groups)
            self._rows = rows
            bins = self._cache.update(store, (self.metric_name, store.n_layers, tuple(rows)), lambda a, b: view[a:b, rows])
        self._bins = bins
        n_cols, n_layers = bins.mx.shape
        start = bins.stable
        if self._val.shape[0] != n_layers:
            self._val = np.empty((n_layers, self.max_columns + 1), np.float32)
            self._bad = np.zeros((n_layers, self.max_columns + 1), bool)
            self._idx = np.zeros((n_layers, self.max_columns + 1), np.uint8)
            self._rgba = np.zeros((n_layers, self.max_columns + 1, 4), np.uint8)
            start = 0
        start = min(start, self._n_cols)  # columns before ``start`` are unchanged since the last frame
        mx, mn = bins.mx[start:], bins.mn[start:]
        with np.errstate(divide="ignore", invalid="ignore"):
            lmx = np.log10(mx)
            lmn = np.log10(mn)
            # nan anywhere in a bin -> nan here; inf -> lmx inf; negative -> lmn nan
            bad = ~(np.isfinite(mx) & np.isfinite(mn) & (mn >= 0))
            value = np.where(np.abs(lmx) >= np.abs(lmn), lmx, lmn)
        self._val[:, start:n_cols] = value.T
        self._bad[:, start:n_cols] = bad.T
        self._quantise(start, n_cols)
        self._set_views(n_cols)
        steps = store.steps
        span = float(steps[-1] - steps[0]) / (n - 1) if n > 1 else 1.0
        span = span if span > 0 else 1.0
        self._dx = span * bins.k
        self._x0 = float(steps[0]) - span / 2
        self._push_image()
        watched = store.model == "watched"
        shown = [store.units[r].name for r in (self._rows if self._rows is not None else range(n_layers))]
        # Module paths: grouped ticks and separators (a simulator run keeps its familiar axis).
        ticks = row_ticks(shown) if watched else unit_ticks(store, n_layers, shown=self._rows)
        self._show_separators(separators(shown) if watched else [])
        if n_layers != self._n_layers_shown or ticks != self._ticks:
            self._n_layers_shown = n_layers
            self._ticks = ticks
            self.plot.setYRange(0.5, n_layers + 0.5 + head_room(self.plot.getViewBox(), float(n_layers)), padding=0)
            self.plot.getAxis("left").setTicks([ticks])
        set_unit_title(self.plot, "left", unit_axis_title(store, self._rows))
        self.follower.update(self._x0, float(steps[-1]) + span / 2)
        note = [filter_note] if filter_note else []
        if self._rows is not None and self.unit_filter.text().strip() and not filter_note:
            note.append(f"{n_layers} of {store.n_layers} units match the filter")
        if bins.k > 1:
            note.append(f"{bins.k} steps per column (most extreme)")
        bad_cols = self.nonfinite_mask.any(axis=0)
        if bad_cols.any():
            first = int(np.argmax(bad_cols))
            note.append(f"non-finite (magenta) from step {int(steps[first * bins.k])}")
        self.note.setText("; ".join(note))

    def _show_separators(self, ys: list[float]) -> None:
        while len(self._separators) < len(ys):
            line = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("#ffffff", width=1, style=Qt.PenStyle.DotLine))
            line.setZValue(20)
            self.plot.addItem(line, ignoreBounds=True)
            self._separators.append(line)
        for i, line in enumerate(self._separators):
            if i < len(ys):
                line.setPos(ys[i])
            line.setVisible(i < len(ys))

    @Slot(str)
    def _on_filter_changed(self, _text: str) -> None:
        self.redraw()

    def _set_views(self, n_cols: int) -> None:
        self._n_cols = n_cols
        #: log10 of the shown value per (layer, column): -inf for 0, nan/inf where non-finite.
        self.image_data = self._val[:, :n_cols]
        #: True where a column's rows held nan, inf or a negative value (drawn magenta).
        self.nonfinite_mask = self._bad[:, :n_cols]
        #: The uint8 colour-index image handed to the ImageItem.
        self.index_image = self._idx[:, :n_cols]

    def _quantise(self, start: int, stop: int) -> None:
        """Map log10 values of columns start..stop into colour indices of the fixed range."""
        lo, hi = self.levels
        val = self._val[:, start:stop]
        bad = self._bad[:, start:stop]
        with np.errstate(invalid="ignore"):
            q = (val - lo) * ((_N_COLOURS - 1) / (hi - lo))
            np.clip(q, 0, _N_COLOURS - 1, out=q)
            # Round, not truncate: log10 of a float32 lands a hair below a level
            # (1e-3 -> -2.9999998) and truncation would shift it a colour down.
            np.rint(q, out=q)
        q[bad] = _N_COLOURS
        self._idx[:, start:stop] = q  # nan only where bad, already replaced
        # RGBA, not indices + colour table: Qt draws an Indexed8 image ~4x slower.
        self._rgba[:, start:stop] = self.lut[self._idx[:, start:stop]]

    def _push_image(self) -> None:
        """Hand the colour-index image to the ImageItem, placed on the real step range."""
        n_layers, n_cols = self.index_image.shape
        # Colours are fixed by ``levels`` in _quantise; the image item only copies them.
        self.image.setImage(self._rgba[:, :n_cols], autoLevels=False, levels=None)
        self.image.setRect(QRectF(self._x0, 0.5, self._dx * n_cols, n_layers))

    # ------------------------------------------------------------------ hover
    def readout_at(self, plot_index: int, x: float, y: float) -> str:
        store, bins = self._store, self._bins
        if store is None or bins is None or bins.n_bins == 0 or self.image_data.size == 0:
            return ""
        col = int(np.floor((x - self._x0) / self._dx))
        pos = int(round(y))  # image row, 1-based; the unit's layer differs where rows are left out
        if not (0 <= col < bins.n_bins and 1 <= pos <= self.image_data.shape[0]):
            return ""
        layer = self._rows[pos - 1] + 1 if self._rows is not None else pos
        steps = store.steps
        a = col * bins.k
        b = min(a + bins.k, bins.n_rows) - 1
        name = self.metric_name
        if a == b:
            v = float(store.layer_metric(name)[a, layer - 1])
            text = f"step {int(steps[a])}, {unit_name(store, layer)}: {AXIS_LABELS.get(name, name)} = {fmt(v)}"
        else:
            lo, hi = float(bins.mn[col, pos - 1]), float(bins.mx[col, pos - 1])
            text = (
                f"steps {int(steps[a])}-{int(steps[b])}, {unit_name(store, layer)}: {AXIS_LABELS.get(name, name)} in [{fmt(lo)}, {fmt(hi)}]"
                f" (shown: log10 = {fmt(self.image_data[pos - 1, col])})"
            )
        if self.nonfinite_mask[pos - 1, col]:
            text += " [non-finite]"
        return text + events_text(self.markers, x, self.plot)

    @Slot(object)
    def _on_mouse_clicked(self, event: object) -> None:
        """A click on the image picks that step (so the depth profile can show it); a double-click lets go."""
        if event.double():  # type: ignore[attr-defined]
            self.show_step(None)
            self.latest_requested.emit()
            return
        store = self._store
        if store is None or len(store) == 0:
            return
        pos = event.scenePos()  # type: ignore[attr-defined]
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        x = vb.mapSceneToView(pos).x()
        i = nearest_row(store.steps, x)
        if i is None:
            return
        step = int(store.steps[i])
        self.show_step(step)
        self.step_picked.emit(step)

    @Slot(int)
    def _on_combo_changed(self, index: int) -> None:
        """The user picked another metric: recolour and tell the panel so other plots follow."""
        name = self.combo.itemData(index)
        if name and name != self.metric_name:
            self.set_metric(name)
            self.metric_changed.emit(name)


if __name__ == "__main__":
    from .demo_data import run_demo

    raise SystemExit(run_demo(GradientHeatmap, metric="act_grad_norm"))
