"""Which layers the per-layer curves show: the default picks and the typed list."""
from __future__ import annotations

from typing import Mapping, Optional

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


def parse_layers(text: str, names: Optional[Mapping[str, int]] = None) -> list[int]:
    """Parse "1, 5, 10" or "1 5 10" into layer numbers; raises ValueError on junk.

    With ``names`` (unit name -> layer), a comma-separated entry may also be a
    unit's name, in any case: "1, linear 5, output". Between commas, words split
    at spaces, so only one-word names ("output") can be typed without commas.
    """
    lookup = {k.strip().lower(): v for k, v in (names or {}).items()}
    layers: list[int] = []
    for part in text.split(","):
        part = part.strip()
        # a comma-separated entry is a unit's name, or numbers separated by spaces
        values = [lookup[part.lower()]] if part.lower() in lookup else [
            lookup[p.lower()] if p.lower() in lookup else int(p) for p in part.split()]
        for v in values:
            if v not in layers:
                layers.append(v)
    return layers
