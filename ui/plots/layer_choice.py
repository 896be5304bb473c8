"""Which layers the per-layer curves show: the default picks and the typed list."""
from __future__ import annotations

from gradsim.metrics import middle_layer


def default_layers(n_layers: int) -> list[int]:
    """First, middle and last layer (1-based, deduplicated): the depth extremes and a midpoint
    (the same "middle" as the exercises', gradsim.metrics.middle_layer)."""
    picks = [1, middle_layer(n_layers), n_layers]
    out: list[int] = []
    for p in picks:
        if 1 <= p <= n_layers and p not in out:
            out.append(p)
    return out


def parse_layers(text: str) -> list[int]:
    """Parse "1, 5, 10" or "1 5 10" into layer numbers; raises ValueError on junk."""
    parts = [p for p in text.replace(",", " ").split() if p]
    layers: list[int] = []
    for p in parts:
        v = int(p)
        if v not in layers:
            layers.append(v)
    return layers
