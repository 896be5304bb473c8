"""A per-layer metric against depth at one step: the shape of vanishing or exploding.

A straight line on this log plot means a constant factor per layer, the
signature of a vanishing (sloping up towards the output) or exploding (sloping
down) gradient. For ||dL/dz|| a dashed curve shows the theory's prediction for
the weights of the step shown: the per-layer gains the trainer recorded
(``pred_gain``, gradsim.theory.mean_field), carried down from the measured output layer.
Where no prediction applies the note says why in words instead of a line; where
one was recorded but training has since moved the weights away from the i.i.d.
draw the theory assumes (gradsim.theory_domain), the line stays, marked in the
legend, and the note says in words that it no longer applies and by how much;
for a vanilla RNN out of its domain (gradsim.theory_domain_rnn) the words replace the line.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from gradsim.metrics import LAYER_INDEX, LAYER_METRICS, PRED_MIN_WIDTH
from gradsim.models.family import unit_rows
from gradsim.session.store import Session
from gradsim.theory_domain import Verdict
from gradsim.theory_verdicts import verdict_at
from gradsim.transformer_reference import Reference, fresh_at, norm_position_at, reference_at
from gradsim.theory_domain_rnn import RecurrentVerdict

from .base import PlotBase, RangeFollower
from .axes import make_log_plot
from .decimate import LOG_CEIL, LOG_FLOOR, clamp_for_log
from .unit_ticks import UnitAxis
from .labels import AXIS_LABELS, fmt, LegendLabel, unit_name, unit_ticks
from .branch_b import b_pen
from .items import LineItem
from .unit_axis import rows_of_kind, set_unit_title, unit_axis_title


class DepthProfile(PlotBase):
    """The chosen metric against layer index at the latest step (or a picked one), log y."""

    TIP = (
        "The chosen metric for every layer at one step: a straight slope on this log axis is a constant "
        "factor per layer, the mark of vanishing (rising to the output) or exploding (falling) gradients."
    )
    EMPTY_HINT = "Press Run to train; this plot will show the chosen metric for every layer at one step."

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.metric_name = "grad_norm"
        self.gains: Optional[np.ndarray] = None
        self._step_wanted: Optional[int] = None
        #: The step plotted (None before the first refresh).
        self.step: Optional[int] = None
        #: Raw metric values per layer at ``step`` (float64, unclamped).
        self.values: np.ndarray = np.empty(0)
        #: The theory prediction per layer, as drawn (None when not shown).
        self.prediction: Optional[np.ndarray] = None
        #: Step whose recorded pred_gain the drawn prediction uses (None: none drawn).
        self.prediction_step: Optional[int] = None
        #: Why no prediction is drawn for ||dL/dz|| at the step shown ("" when one is).
        self.prediction_gap = ""
        #: The theory-domain verdict on the drawn prediction's step (None: none drawn or nothing tested).
        self.domain: Optional[Verdict] = None
        #: Draw the recorded prediction when the metric is act_grad_norm (off: only set_prediction()).
        self.show_recorded_prediction = True

        self.header.setToolTip("The step shown: the latest, or the one clicked on the heatmap (double-click it to follow the latest again).")
        self._layout.addWidget(self.header)
        #: Measured vs prediction, above the plot (only while a prediction is drawn).
        self.legend = LegendLabel()
        self.legend.setVisible(False)
        self._layout.addWidget(self.legend)
        self.plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0, axisItems={"bottom": UnitAxis("bottom")})
        make_log_plot(self.plot, AXIS_LABELS[self.metric_name], bottom="layer (1 = input side)")
        #: The measured profile: a line with gaps at nan (values clamped to the log range).
        self.curve = self._add(LineItem(pg.mkPen("#56b4e9", width=1)))
        # One dot per finite layer value (lean items: the profile changes every frame).
        self.points = self._add(LineItem(dots=5, brush="#56b4e9"))
        self.prediction_curve = self._add(LineItem(pg.mkPen("#e69f00", width=1, style=Qt.PenStyle.DashLine)))
        #: A transformer's reference level (Xiong et al. 2020, Pre-LN at init) over its block units, dashed.
        self.reference_curve = self._add(LineItem(pg.mkPen("#009e73", width=1, style=Qt.PenStyle.DashLine)))
        #: The reference value per drawn position (x, y) of the step shown; empty when no line applies.
        self.reference: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0))
        #: Branch B of a forked run at the same step, dashed (empty until a fork).
        self.curve_b = self._add(LineItem(b_pen("#56b4e9")))
        #: Raw metric values per layer of branch B at ``step`` (empty when not comparing).
        self.values_b: np.ndarray = np.empty(0)
        self.floor_marks = self.plot.plot(pen=None, symbol="t", symbolSize=9, symbolBrush="#ff9800", symbolPen=None)
        self.nan_marks = self.plot.plot(pen=None, symbol="x", symbolSize=10, symbolBrush="#ff00ff", symbolPen="#ff00ff")
        self._hover_plots.append(self.plot)
        self.follower = RangeFollower(self.plot, x=False, y_log=True)
        #: The layers drawn as floor / nan marks at the last frame (their masks' bytes).
        self._marked: tuple[bytes, bytes] = (b"", b"")
        self.plot.getViewBox().disableAutoRange(axis=pg.ViewBox.XAxis)
        self._n_layers_shown = 0
        self._ticks: list[tuple[float, str]] = []
        #: 0-based store rows drawn at x = 1, 2, ...; None: every row.
        self._rows: Optional[list[int]] = None
        #: Which units of a transformer run are drawn: "stream" or "block" (see set_unit_kind).
        self.unit_kind = "stream"
        self._finish_layout()
        # Two lines: a transformer's reference words and the theory's gap lead with clauses
        # wider than this plot's ~400 px at 1280x720 (one line showed only their first words).
        self.note.set_lines(2)

    def _add(self, item: LineItem) -> LineItem:
        self.plot.addItem(item)
        return item

    # ----------------------------------------------------------------- public
    def set_metric(self, name: str) -> None:
        """Plot another per-layer metric (any of ``LAYER_METRICS``)."""
        if name not in LAYER_METRICS:
            raise ValueError(f"metric {name!r}: one of {', '.join(LAYER_METRICS)}")
        self.metric_name = name
        self.plot.setLabel("left", AXIS_LABELS.get(name, name))
        self.redraw()

    def set_unit_kind(self, kind: str) -> None:
        """Draw a transformer run's "stream" units or its "block" units (other runs: no change)."""
        if kind not in ("stream", "block"):
            raise ValueError(f"unit kind {kind!r}: one of stream, block")
        self.unit_kind = kind
        self.redraw()

    def show_step(self, step: Optional[int]) -> None:
        """Show the profile at the recorded step at or before ``step``; None follows the latest step."""
        self._step_wanted = None if step is None else int(step)
        self.redraw()

    def set_prediction(self, values: "Optional[Sequence[float] | np.ndarray]", gains: "Optional[Sequence[float] | np.ndarray]" = None) -> None:
        """Draw a dashed curve of predicted values per layer (layer 1 first); None removes it.

        ``gains`` (optional, per layer): the predicted factor from layer l+1 back to
        layer l, shown on hover next to the prediction.
        """
        self.gains = None if gains is None else np.asarray(gains, dtype=np.float64).ravel()
        if values is None:
            self.prediction = None
            self.prediction_curve.setData([], [])
            self._update_legend()
            return
        arr = np.asarray(values, dtype=np.float64).ravel()
        self.prediction = arr
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(arr)
        x = np.arange(1, arr.size + 1, dtype=np.float64)
        self.prediction_curve.setData(x[ok], clamp_for_log(arr[ok]))
        self._update_legend()

    def _update_legend(self) -> None:
        """Named only when there is more than the measured curve: branch B, a prediction."""
        comparing = self.values_b.size > 0
        a_name, b_name = self._branch_names()
        entries = [("#56b4e9", a_name if comparing else "measured", False)]
        if comparing:
            entries.append(("#56b4e9", b_name, True))
        if self.prediction is not None:
            out = self.domain is not None and not self.domain.in_domain
            entries.append(("#e69f00", "prediction (no longer applies)" if out else "prediction", True))
        if self.reference[0].size:
            entries.append(("#009e73", "reference (Xiong et al.)", True))
        self.legend.set_entries(entries)
        visible = len(entries) > 1
        if self.legend.isVisibleTo(self) != visible:
            self.legend.setVisible(visible)

    def _fork_words(self) -> str:
        """The lesson in words when the two branches of a forked transformer run have their
        norms in different places at the step shown ("" otherwise): the reference's "fork the
        run" hint is done by then, and what to read is the one curve against the other."""
        a_name, b_name = self._branch_names()
        if a_name == "A" or a_name[3:] == b_name[3:] or self.values_b.size == 0:
            return ""
        post, pre = (a_name, b_name) if "post" in a_name else (b_name, a_name)
        return (f"{post} vs {pre} on the same weights; at this width Post-LN's profile rises toward the output "
                f"relative to Pre-LN's (log10 B/A on the heatmap shows where they part); no reference line: "
                f"Xiong et al.'s Post-LN bound has no per-block shape to draw")

    def _branch_names(self) -> tuple[str, str]:
        """"A" and "B", with where each branch's layer norms sit at the step shown for a
        transformer (the fork lesson moves them on one branch: the legend says which is which)."""
        store, b = self._store, self.compare
        if store is None or b is None or self.step is None or (store.config or {}).get("model") != "transformer":
            return "A", "B"
        return f"A ({norm_position_at(store, self.step)}-LN)", f"B ({norm_position_at(b, self.step)}-LN)"

    def reset(self) -> None:
        super().reset()
        self._step_wanted = None
        self.step = None
        self.values = np.empty(0)
        self.values_b = np.empty(0)
        self.set_prediction(None)  # the prediction describes the old run too
        self._draw_reference(None)
        self.prediction_step = None
        self.prediction_gap = ""
        self.domain = None
        for item in (self.curve, self.points, self.curve_b, self.floor_marks, self.nan_marks):
            item.setData([], [])
        self._marked = (b"", b"")
        self.header.set_variants("")
        self.follower.reset()
        self._n_layers_shown = 0

    # ---------------------------------------------------------------- drawing
    def _draw(self, store: Session) -> None:
        n = len(store)
        if n == 0:
            return
        steps = store.steps
        if self._step_wanted is None:
            row = n - 1
        else:
            row = int(np.clip(np.searchsorted(steps, self._step_wanted, side="right") - 1, 0, n - 1))
        self.step = int(steps[row])
        # only the units this metric is defined for (time steps, not weight groups; a
        # transformer's stream or its blocks, as the heatmap shows)
        rows = rows_of_kind(store.units, unit_rows(store.units, self.metric_name), self.unit_kind)
        self._rows = None if len(rows) == store.n_layers else rows
        values = self._shown(store.layer_metric(self.metric_name)[row].astype(np.float64))
        self.values = values
        x = np.arange(1, values.size + 1, dtype=np.float64)
        y = clamp_for_log(values)
        self.curve.setData(x, y)
        with np.errstate(invalid="ignore"):
            low = values <= LOG_FLOOR
            high = ~np.isfinite(values) | (values > LOG_CEIL)
        ok = ~np.isnan(y)
        self.points.setData(x[ok], y[ok])
        if store.model == "watched":
            # module paths side by side on a horizontal axis overlap past a few units: number
            # them, few enough for three digits to fit (the heatmap and the hover read-out name them)
            ticks = [(x, str(int(x))) for x, _ in unit_ticks(store, values.size, most=6, shown=self._rows)]
        else:
            # as many unit names as fit side by side ("t 200" is about 40 px wide)
            most = max(3, min(12, int(self.plot.getViewBox().width() // _TICK_PX)))
            ticks = unit_ticks(store, values.size, most=most, shown=self._rows)
        if values.size != self._n_layers_shown or ticks != self._ticks:
            self._n_layers_shown = values.size
            self._ticks = ticks
            self.plot.setXRange(0.5, values.size + 0.5, padding=0)
            self.plot.getAxis("bottom").setTicks([ticks])
        set_unit_title(self.plot, "bottom", unit_axis_title(store, self._rows))
        marks = np.array([LOG_FLOOR if low.any() else np.nan, LOG_CEIL if high.any() else np.nan])
        if self.show_recorded_prediction:
            self._draw_recorded_prediction(store, row, values)
        pred = self.prediction if self.prediction is not None else np.empty(0)
        b = self.compare
        yb = np.empty(0)
        if b is not None and len(b):
            rb = int(np.clip(np.searchsorted(b.steps, self.step, side="right") - 1, 0, len(b) - 1))
            self.values_b = self._shown(b.layer_metric(self.metric_name)[rb].astype(np.float64))
            yb = clamp_for_log(self.values_b)
            self.curve_b.setData(x[: yb.size], yb)
        elif self.values_b.size:
            self.values_b = np.empty(0)
            self.curve_b.setData([], [])
        self.follower.update(y=np.concatenate([y, yb, marks, clamp_for_log(pred)]))
        self._update_legend()
        # The marks change rarely: a scatter's setData costs about a millisecond even
        # when empty, so it is skipped while the marked layers stay the same.
        marked = (low.tobytes(), high.tobytes())
        if marked != self._marked:
            self._marked = marked
            self.floor_marks.setData(x[low], np.full(int(low.sum()), LOG_FLOOR))
            self.nan_marks.setData(x[high], np.full(int(high.sum()), LOG_CEIL))
        which = "latest step" if self._step_wanted is None else "picked step"
        self.header.set_variants(
            f"{AXIS_LABELS.get(self.metric_name, self.metric_name)} per layer at step {self.step} ({which})",
            f"{AXIS_LABELS.get(self.metric_name, self.metric_name)} at step {self.step} ({which.split()[0]})",
            f"step {self.step} ({which.split()[0]})",
            f"step {self.step}",
        )
        notes = []
        if self.prediction_gap:
            notes.append(self.prediction_gap)
        else:
            # Whether the line still applies first: in a narrow pane only the first parts fit.
            if self.domain is not None and not self.domain.in_domain:
                notes.append(self.domain.words())
            if self.prediction_step is not None and self.prediction_step != self.step:
                notes.append(f"prediction for the weights of step {self.prediction_step} (the last one recorded before)")
        ref = reference_at(store, row) if self.metric_name == "grad_norm" else None
        self._draw_reference(ref)
        if ref is not None:
            # the transformer's reference (Xiong et al. 2020) in words; at a fresh draw with the two
            # branches' norms apart, what to read in the two curves instead
            fork = self._fork_words() if ref.line is None and fresh_at(store, self.step) else ""
            notes.append(fork or ref.words)
        if low.any():
            notes.append(f"layers {_layer_list(x[low])}: 0 or < 1e-20, drawn at 1e-20 (triangles)")
        if high.any():
            notes.append(f"layers {_layer_list(x[high])}: nan/inf or > 1e+20, marked at 1e+20 (crosses)")
        self.note.setText("; ".join(notes))

    def _draw_reference(self, ref: Optional[Reference]) -> None:
        """The reference line over the block units' positions where one applies, else nothing."""
        xs: list[float] = []
        ys: list[float] = []
        if ref is not None and ref.line is not None:
            pos = {r: i + 1 for i, r in enumerate(self._rows)} if self._rows is not None else {r: r + 1 for r in ref.rows}
            for r, v in zip(ref.rows, ref.line):
                if r in pos:
                    xs.append(float(pos[r]))
                    ys.append(float(v))
        x, y = np.asarray(xs), np.asarray(ys)
        if x.size != self.reference[0].size or not (np.array_equal(x, self.reference[0]) and np.array_equal(y, self.reference[1])):
            self.reference = (x, y)
            self.reference_curve.setData(x, clamp_for_log(y) if y.size else y)
            self._update_legend()

    # ------------------------------------------------------------- prediction
    def _draw_recorded_prediction(self, store: Session, row: int, values: np.ndarray) -> None:
        """The dashed ||dL/dz|| prediction of the step shown, from the recorded pred_gain.

        The trainer records the gains at step 0, at events and every stats_every
        steps; a step in between uses the last recorded one at or before it.
        The profile is anchored at the measured output layer of the step shown.
        """
        self.domain = None
        if self.metric_name != "act_grad_norm":
            self.prediction_gap = ""
            self.prediction_step = None
            if self.prediction is not None:
                self.set_prediction(None)
            return
        found = _last_recorded_prediction(store, row)
        if found is None:
            self.prediction_step = None
            self.prediction_gap = _why_no_prediction(store, row)
            if self.prediction is not None:
                self.set_prediction(None)
            return
        src, gains = found
        gains = self._shown(gains)
        self.prediction_step = int(store.steps[src])
        self.prediction_gap = ""
        self.domain = verdict_at(store, src)
        if isinstance(self.domain, RecurrentVerdict) and not self.domain.in_domain:
            # out of the recurrent theory's domain the line would mislead: words instead
            self.prediction_gap = self.domain.words()
            if self.prediction is not None:
                self.set_prediction(None)
            return
        anchor = float(values[-1]) if values.size else float("nan")
        profile = np.full(gains.size, np.nan)
        if np.isfinite(anchor):
            profile[-1] = anchor
            with np.errstate(over="ignore", invalid="ignore"):
                for l in range(gains.size - 2, -1, -1):
                    profile[l] = profile[l + 1] * gains[l]
        self.set_prediction(profile, gains)

    def _shown(self, per_unit: np.ndarray) -> np.ndarray:
        """The entries of a per-unit array at the units drawn (all of them for an MLP)."""
        return per_unit if self._rows is None else per_unit[self._rows]

    def _unit(self, store: Optional[Session], pos: int) -> str:
        """The name of the unit drawn at x = ``pos`` (1-based)."""
        rows = self._rows
        return unit_name(store, rows[pos - 1] + 1 if rows is not None and 1 <= pos <= len(rows) else pos)

    # ------------------------------------------------------------------ hover
    def readout_at(self, plot_index: int, x: float, y: float) -> str:
        if self.values.size == 0 or not np.isfinite(x):
            return ""
        layer = int(round(x))
        if not 1 <= layer <= self.values.size:
            return ""
        store = self._store
        text = f"step {self.step}, {self._unit(store, layer)}: {AXIS_LABELS.get(self.metric_name, self.metric_name)} = {fmt(self.values[layer - 1])}"
        if self.values_b.size >= layer:
            text += f" (A), {fmt(self.values_b[layer - 1])} (B)"
        if self.prediction is not None and layer <= self.prediction.size:
            text += f" (prediction {fmt(self.prediction[layer - 1])}"
            if self.gains is not None and layer <= self.gains.size and np.isfinite(self.gains[layer - 1]):
                text += f", gain from {self._unit(store, layer + 1)}: x{fmt(self.gains[layer - 1])}"
            text += ")"
        return text


_PRED = LAYER_INDEX["pred_gain"]
_TICK_PX = 55  # horizontal room one unit-name tick label needs
_SEARCH_BACK = 4096  # rows looked at first; recorded predictions are at most stats_every steps apart


def _last_recorded_prediction(store: Session, row: int) -> Optional[tuple[int, np.ndarray]]:
    """(row index, gains as float64) of the last row <= ``row`` with a recorded prediction."""
    if len(store) == 0 or store.n_layers < 2:
        return None
    layer1 = store.layers[: row + 1, 0, _PRED]  # strided view of one column: no copy of the store
    lo = max(0, row + 1 - _SEARCH_BACK)
    hits = np.flatnonzero(np.isfinite(layer1[lo:]))
    if hits.size:
        src = lo + int(hits[-1])
    else:
        hits = np.flatnonzero(np.isfinite(layer1[:lo]))
        if not hits.size:
            return None
        src = int(hits[-1])
    return src, store.layers[src, :, _PRED].astype(np.float64)


def _why_no_prediction(store: Session, row: int) -> str:
    """Words for the depth profile when there is no recorded prediction to draw."""
    cfg = store.config or {}
    width, depth = cfg.get("width"), cfg.get("depth")
    model = cfg.get("model", "mlp")
    if model in ("lstm", "gru"):
        return f"no theory line: the mean-field gain through time is the vanilla RNN's; it does not model an {model.upper()}'s gates"
    if model == "rnn" and isinstance(width, int) and width < PRED_MIN_WIDTH:
        return f"no theory line: width {width} is too narrow for the mean-field theory (it needs {PRED_MIN_WIDTH} or more hidden units)"
    if model not in ("mlp", "rnn"):
        return f"no theory line (GradSim has no mean-field theory for model {model!r})"
    if isinstance(width, int) and isinstance(depth, int) and depth >= 2 and width < PRED_MIN_WIDTH:
        return f"no theory line: width {width} is too narrow for the mean-field theory (it needs {PRED_MIN_WIDTH} or more units per layer)"
    if not np.isfinite(store.layer_metric("pred_gain")[:, 0]).any():
        return "no theory line: this session has no recorded prediction (saved by an older GradSim, or the model never applied)"
    return "no theory line at this step: the mean-field model does not apply (non-finite or overflowing signal)"


def _layer_list(layers: np.ndarray, limit: int = 8) -> str:
    items = [str(int(v)) for v in layers[:limit]]
    return ", ".join(items) + (f" and {layers.size - limit} more" if layers.size > limit else "")


if __name__ == "__main__":
    from .demo_data import run_demo

    raise SystemExit(run_demo(DepthProfile, metric="act_grad_norm"))
