"""Plot axes: log axes limited to the clamp range, plain (prefix-free, cached) axes, mouse mapping."""
from __future__ import annotations

from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsItem

from .decimate import LOG_CEIL_EXP, LOG_FLOOR_EXP


def cache_axes(plot: pg.PlotItem) -> None:
    """Keep each axis as a pixmap that Qt redraws only when the axis changes.

    Why: every new point of a curve repaints the view box plus a pixel or two
    around it, and the axes overlap it (their ticks point inward), so each one
    replayed its whole tick picture in Python (10 axes, ~1.2 ms of a live frame
    at 100 layers x 100,000 steps). With a device-coordinate cache Qt blits the
    overlap from the pixmap; the axis' own ``update()`` (range, ticks, label,
    style) drops the pixmap, so a changed axis is always repainted. Qt sizes
    the pixmap for the screen's pixel ratio (checked at 2x: identical text).
    """
    for name in ("left", "bottom"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def plain_axes(plot: pg.PlotItem) -> None:
    """No automatic SI prefixes ("(x0.001)" next to a log axis reads as a different value); cached axes."""
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    cache_axes(plot)
    plot.setMenuEnabled(False)



def make_log_plot(plot: pg.PlotItem, left: str, bottom: str = "step") -> None:
    """Log y axis limited to [1e-20, 1e+20]: readable whatever the gradients do."""
    plain_axes(plot)
    plot.setLogMode(x=False, y=True)
    # minYRange in decades: a flat profile still gets power-of-ten ticks.
    plot.setLimits(yMin=LOG_FLOOR_EXP - 1, yMax=LOG_CEIL_EXP + 1, minYRange=1.0)
    plot.setLabel("left", left)
    plot.setLabel("bottom", bottom)



def scene_to_view(plot: pg.PlotItem, pos: QPointF) -> Optional[QPointF]:
    """The view coordinates of a scene position, or None when it is outside the plot."""
    vb = plot.getViewBox()
    if not vb.sceneBoundingRect().contains(pos):
        return None
    return vb.mapSceneToView(pos)
