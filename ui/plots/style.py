"""Colours every GradSim plot shares: event markers by kind and the selected-layer curves.

Colours are plain "#rrggbb" strings (no Qt here), so the tables can be checked
without a display; the plots turn them into pens.
"""
from __future__ import annotations

#: Colours for event markers, by event kind.
EVENT_COLOURS: dict[str, str] = {
    "start": "#9e9e9e",
    "activation": "#ffb300",
    "init": "#29b6f6",
    "batchnorm": "#66bb6a",
    "clip": "#ab47bc",
    "lr": "#ff7043",
    "optimizer": "#26c6da",
    "diverged": "#ff1744",
    "pause": "#bdbdbd",
    "note": "#eeeeee",
}

#: Colours for the selected-layer curves (colour-blind friendly, Okabe-Ito).
LAYER_COLOURS: tuple[str, ...] = (
    "#56b4e9",
    "#e69f00",
    "#009e73",
    "#f0e442",
    "#cc79a7",
    "#d55e00",
    "#0072b2",
    "#ffffff",
)
MAX_SELECTED_LAYERS = len(LAYER_COLOURS)
