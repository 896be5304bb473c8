"""Colours every GradSim plot shares: event markers by kind and the selected-layer curves.

Colours are plain "#rrggbb" strings (no Qt here), so the tables can be checked
without a display; the plots turn them into pens.
"""
from __future__ import annotations

from gradsim.events import EVENT_KINDS

#: Marker colour of each event kind; its keys are gradsim.events' kinds, so a new kind
#: without a colour fails at import here instead of drawing in the unknown-kind grey.
_EVENT_COLOURS: dict[str, str] = {
    "activation": "#ffb300",
    "init": "#29b6f6",
    "batchnorm": "#66bb6a",
    "layernorm": "#d4e157",
    "residual": "#ec407a",
    "clip": "#ab47bc",
    "lr": "#ff7043",
    "optimizer": "#26c6da",
    "recurrent_init": "#8d6e63",
    "forget_bias": "#9ccc65",
    "norm": "#7e57c2",
    "warmup": "#ffca28",
    "start": "#9e9e9e",
    "pause": "#bdbdbd",
    "note": "#eeeeee",
    "prediction": "#7e57c2",
    "diverged": "#ff1744",
}
#: Colours for event markers, by event kind, in the registry's order.
EVENT_COLOURS: dict[str, str] = {kind: _EVENT_COLOURS[kind] for kind in EVENT_KINDS}
#: A kind the registry does not know (a newer build's session): drawn, but plainly.
UNKNOWN_EVENT_COLOUR = "#eeeeee"

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
