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
    if kinds == {"block"}:
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
