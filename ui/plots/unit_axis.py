"""What the unit axis of the heatmap and the depth profile is called, from the units drawn.

An MLP's rows are layers (1 = next to the input); a recurrent run's signal rows are
time steps of its top layer (t = 1 = the first input, so "toward the input" is
"back in time"); its parameter rows are weight groups shared by every step.
"""
from __future__ import annotations

from typing import Optional, Sequence

from gradsim.models.family import unit_rows

from .layer_choice import default_layers

LAYER_TITLE = "layer (1 = input side)"
TIME_TITLE = "time step t (1 = first input)"
PARAM_TITLE = "parameter group"
STREAM_TITLE = "residual stream entering block l (1 = input side)"
BLOCK_TITLE = "sublayer (attn l, mlp l; 1 = input side)"
#: What each title shortens to where the axis is too short for it (a dock open at 1280x720 leaves
#: the depth profile ~160 px: "residual stream entering block l" was cut at both ends).
SHORT_TITLES = {LAYER_TITLE: "layer", TIME_TITLE: "time step t", PARAM_TITLE: "group", STREAM_TITLE: "stream l",
                BLOCK_TITLE: "sublayer"}


def set_unit_title(plot: object, side: str, title: str) -> None:
    """Put ``title`` on the ``side`` axis of ``plot``, or its short form where it does not fit.

    The full title is the axis's tooltip. Cheap enough per frame: the label is set only
    when the text changes.
    """
    from PySide6.QtGui import QFontMetrics

    axis = plot.getAxis(side)  # type: ignore[attr-defined]
    length = axis.height() if side in ("left", "right") else axis.width()
    fits = QFontMetrics(axis.label.font()).horizontalAdvance(title) + 8 <= length
    text = title if fits or length <= 0 else SHORT_TITLES.get(title, title)
    if getattr(axis, "_unit_title", None) != text:
        axis._unit_title = text
        plot.setLabel(side, text)  # type: ignore[attr-defined]
        axis.setToolTip(title)


def unit_axis_title(store: object, rows: Optional[Sequence[int]] = None) -> str:
    """The title for the units at 0-based ``rows`` of ``store`` (every unit when None)."""
    units = list(getattr(store, "units", None) or ())
    shown = [units[i] for i in (rows if rows is not None else range(len(units))) if 0 <= i < len(units)]
    kinds = {u.kind for u in shown}
    if kinds == {"time"}:
        return TIME_TITLE
    if kinds == {"param"}:
        return PARAM_TITLE
    if kinds == {"stream"}:
        return STREAM_TITLE
    if "block" in kinds and kinds <= {"block", "param"}:  # sublayers, with the embedding or head beside them
        return BLOCK_TITLE
    return LAYER_TITLE


def default_units(store: object, metric: str) -> list[int]:
    """The layer numbers (1-based) the per-layer curves show by default for ``metric``: the
    first, middle and last of the units that metric is defined for (a recurrent run:
    t = 1, T/2 and T for a signal metric, its weight groups for a parameter metric)."""
    units = list(getattr(store, "units", None) or ())
    if not units:
        return []
    rows = unit_rows(units, metric)
    # the same first / middle / last as for every layer of an MLP (layer_choice.default_layers)
    return [rows[p - 1] + 1 for p in default_layers(len(rows))]


def rows_of_kind(units: Sequence[object], rows: Sequence[int], kind: str) -> list[int]:
    """``rows`` narrowed to the units of ``kind`` ("stream" or "block") for a transformer run,
    so one plot never mixes the residual stream with its sublayers; ``rows`` unchanged for
    other runs, or when no unit of ``kind`` is among them (a parameter metric has no stream)."""
    kinds = [getattr(u, "kind", "") for u in units]
    if "stream" not in kinds:
        return list(rows)
    picked = [i for i in rows if kinds[i] == kind]
    return picked or list(rows)
