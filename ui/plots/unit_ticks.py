"""An axis naming units ("linear 3") that never lets two tick labels run together.

Why: the depth profile at ~250 px wide drew eleven "linear N" labels on top of
each other. pyqtgraph draws every tick it is given; this axis, at each
repaint (a resize repaints it), keeps the given ticks that fit its length:
the full names when they fit, else the short ones ("L3"), thinned to an even
spread that keeps the first and the last unit. The ticks set with
``setTicks`` stay as given (``_tickLevels``); only what is drawn is thinned.
"""
from __future__ import annotations

import math
from typing import Callable

import pyqtgraph as pg

from .labels import compact_name

#: Pixels kept free between two tick labels.
GAP_PX = 8


def thin_ticks(ticks: list[tuple[float, str]], px_per_unit: float, room: Callable[[list[str]], float]) -> list[tuple[float, str]]:
    """The ticks to draw: ``room(labels)`` is the pixels each label needs along the axis;
    full names if every second one fits, else compact names; then every k-th, keeping both ends."""
    if len(ticks) < 2 or px_per_unit <= 0:
        return list(ticks)
    spacing = max(min(b[0] - a[0] for a, b in zip(ticks, ticks[1:])) * px_per_unit, 1e-9)
    labels = [t for _, t in ticks]
    k = max(1, math.ceil((room(labels) + GAP_PX) / spacing))
    if k > 1:  # not every full name fits: short names, as many as fit
        short = [compact_name(t) for t in labels]
        k_short = max(1, math.ceil((room(short) + GAP_PX) / spacing))
        if k_short < k:
            labels, k = short, k_short
    chosen = list(range(0, len(ticks), k))
    last = len(ticks) - 1
    if chosen[-1] != last:
        if (last - chosen[-1]) < k and len(chosen) > 1:
            chosen[-1] = last  # the last unit is named; its neighbour would touch it
        else:
            chosen.append(last)
    return [(ticks[i][0], labels[i]) for i in chosen]


class UnitAxis(pg.AxisItem):
    """A bottom or left axis whose given ticks are thinned to the room it has when drawn."""

    def generateDrawSpecs(self, p):  # pyqtgraph API
        given = self._tickLevels
        if not given or not given[0]:
            return super().generateDrawSpecs(p)
        ticks = list(given[0])
        view = self.linkedView()
        if view is None:
            return super().generateDrawSpecs(p)
        horizontal = self.orientation in ("bottom", "top")
        lo, hi = view.viewRange()[0 if horizontal else 1]
        length = self.geometry().width() if horizontal else self.geometry().height()
        px = length / (hi - lo) if hi > lo else 0.0
        fm = pg.QtGui.QFontMetrics(self.style.get("tickFont") or p.font())
        if horizontal:
            def room(labels: list[str]) -> float:
                return max(fm.horizontalAdvance(t) for t in labels)
        else:
            def room(labels: list[str]) -> float:
                return fm.height()
        self._tickLevels = [thin_ticks(ticks, px, room)] + list(given[1:])
        try:
            return super().generateDrawSpecs(p)
        finally:
            self._tickLevels = given


