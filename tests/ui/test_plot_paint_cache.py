"""The lean curve items (ui/plots/items.py) draw exactly the values they are given."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402

from ui.plots.common import LOG_CEIL, LOG_FLOOR  # noqa: E402
from ui.plots.items import LineItem  # noqa: E402


# ----------------------------------------------------------------------- LineItem
def _segments(item: LineItem) -> list[tuple[float, float]]:
    """(x from, x to) of every line segment in the item's path."""
    path = item._path
    out = []
    for i in range(1, path.elementCount()):
        e = path.elementAt(i)
        if e.isLineTo():
            out.append((path.elementAt(i - 1).x, e.x))
    return out


def test_line_item_draws_the_values_given_and_breaks_at_nan(qtbot):
    w = pg.PlotWidget()
    qtbot.addWidget(w)
    plot = w.getPlotItem()
    plot.setLogMode(x=False, y=True)
    item = LineItem(pg.mkPen("#ffffff"))
    plot.addItem(item)
    x = np.arange(6, dtype=np.float64)
    y = np.array([1.0, 10.0, np.nan, 100.0, LOG_CEIL, LOG_FLOOR])
    item.setData(x, y)
    ox, oy = item.getOriginalDataset()
    np.testing.assert_array_equal(ox, x)
    np.testing.assert_array_equal(oy, y)
    dx, dy = item.getData()
    np.testing.assert_array_equal(dy, [0.0, 1.0, np.nan, 2.0, 20.0, -20.0])
    assert item.dataBounds(1) == (-20.0, 20.0) and item.dataBounds(0) == (0.0, 5.0)
    segs = _segments(item)  # nothing drawn to or from the nan at x = 2 (pyqtgraph's 'finite' paths)
    assert all(a != 2 and b != 2 and not (a < 2 < b) for a, b in segs)
    assert {(0, 1), (3, 4), (4, 5)} <= set(segs)
    plot.setLogMode(x=False, y=False)  # the item follows the axis mode
    np.testing.assert_array_equal(item.getData()[1][[0, 1, 3]], [1.0, 10.0, 100.0])
    item.setData([], [])
    assert item.dataBounds(0) == (None, None) and item.boundingRect().isEmpty()


def test_line_item_dots_only_at_finite_points(qtbot):
    item = LineItem(dots=5, brush="#56b4e9")
    item.setLogMode(False, True)
    item.setData([1, 2, 3, 4], [1e-3, np.nan, np.inf, 10.0])
    assert item._points.size() == 2  # nan and inf draw no dot (the plots mark them apart)
    assert item.dataBounds(1) == (-3.0, 1.0)
