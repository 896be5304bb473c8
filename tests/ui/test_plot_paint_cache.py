"""Cheap live frames must never show a stale picture; lean curve items draw exactly what they are given.

The plots keep work from frame to frame: axes and event markers are painted
into pixmaps that Qt reuses (ui/plots/markers.py, ui/plots/axes.py), curves are lean items that
build their path once per setData (ui/plots/items.py). These tests drive a
panel the way a live run does (rows arrive, events arrive, the step axis
grows, a metric or a toggle changes), letting the event loop paint every frame
so the caches are filled and reused, and then compare what the panel shows
with a rendering from scratch with every cache switched off. A stale axis,
marker or curve differs from it in hundreds of pixels.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QGraphicsItem

from gradsim.session.store import Rows, Session
from ui.plots.decimate import LOG_CEIL, LOG_FLOOR, BinCache
from ui.plots.demo_data import make_demo_session
from ui.plots.items import LineItem
from ui.plots.panel import PlotPanel

#: A shown top-level panel makes the offscreen platform say it cannot resize to hints (harmless).
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

#: Pixels a cached rendering may differ from an uncached one: the end pixels of an
#: axis line lie just outside the axis' bounding rectangle, so Qt's pixmap cache
#: clips them (at most two for each of the panel's 14 cached axes; 7-13 seen). A stale
#: axis differs in hundreds (its tick labels), a stale marker in hundreds more.
TOLERATED_PIXELS = 28


def pixels(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return a[:, : img.width() * 4].reshape(img.height(), img.width(), 4)[:, :, :3].copy()


def differing(a: QImage, b: QImage) -> int:
    """Pixels that differ (every pixel when the sizes differ)."""
    pa, pb = pixels(a), pixels(b)
    if pa.shape != pb.shape:
        return max(pa.shape[0] * pa.shape[1], pb.shape[0] * pb.shape[1])
    return int(np.any(pa != pb, axis=2).sum())


def set_caches(panel: PlotPanel, on: bool) -> list:
    """Switch Qt's item caches of every plot off (or back on); returns the items that had one."""
    cached = []
    for plot in panel.plots:
        for item in plot.graphics.scene().items():
            if item.cacheMode() != QGraphicsItem.CacheMode.NoCache:
                cached.append(item)
    for item in cached:
        item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache if on else QGraphicsItem.CacheMode.NoCache)
    return cached


def solid_markers(panel: PlotPanel) -> None:
    """Draw event lines solid: a dash pattern starts at a different phase in a pixmap
    than on the view, which would differ in every other pixel of a line without
    anything being stale."""
    for plot in panel.time_plots:
        for m in plot.markers_list:
            for pen in m.item._pens.values():
                pen.setStyle(Qt.PenStyle.SolidLine)


def uncached_grab(panel: PlotPanel) -> QImage:
    solid_markers(panel)
    cached = set_caches(panel, False)
    img = panel.grab().toImage()
    for item in cached:
        item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    return img


def head(full: Session, n: int) -> Session:
    store = Session.from_arrays(full.steps[:n], full.scalars[:n], full.layers[:n], full.has_stats[:n], max_memory_mb=1e6)
    for ev in full.events:
        if ev.step < n:
            store.add_event(ev.step, ev.kind, ev.value)
    return store


def grow(store: Session, full: Session, n: int) -> None:
    a = len(store)
    store.append_rows(Rows(full.steps[a:n], full.scalars[a:n], full.layers[a:n], full.has_stats[a:n]))


def live_panel(qtbot) -> PlotPanel:
    panel = PlotPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 700)
    panel.show()
    QApplication.processEvents()
    return panel


def frame(panel: PlotPanel, store: Session) -> None:
    """One live frame: refresh, then let the event loop paint what changed (filling the caches)."""
    panel.refresh(store)
    solid_markers(panel)
    QApplication.processEvents()


def test_live_frames_match_a_rendering_without_caches(qtbot):
    full = make_demo_session(8, 2400, "exploding")
    store = head(full, 60)
    panel = live_panel(qtbot)
    frame(panel, store)
    assert set_caches(panel, True), "the axes and markers are expected to be cached"
    first = {p: p.graphics.grab().toImage() for p in panel.time_plots}
    for n in range(120, 2400, 180):  # the step axis grows past its head room several times
        grow(store, full, n)
        if n == 1020:
            store.add_event(int(store.steps[-1]), "lr", "0.05")  # a new marker and flag
        frame(panel, store)
        shown = panel.grab().toImage()
        assert differing(shown, uncached_grab(panel)) <= TOLERATED_PIXELS, f"stale picture at {n} rows"
    for plot in panel.time_plots:  # and the data did change what is shown
        assert differing(first[plot], plot.graphics.grab().toImage()) > 1000


def test_an_event_alone_repaints_the_cached_markers(qtbot):
    """A toggle in a paused run adds an event but no row: the view stays put, the flags change."""
    full = make_demo_session(8, 2400, "exploding")
    store = head(full, 2300)
    panel = live_panel(qtbot)
    frame(panel, store)
    before = panel.grab().toImage()
    store.add_event(500, "clip", "norm:1")
    frame(panel, store)
    shown = panel.grab().toImage()
    assert "500: clip norm:1" in panel.layer_curves.markers.texts
    assert differing(shown, before) > 100
    assert differing(shown, uncached_grab(panel)) <= TOLERATED_PIXELS, "stale markers"


def test_toggles_and_switches_repaint_the_cached_parts(qtbot):
    """A metric switch (axis label and range), a picked step, a branch-free reset and a new run."""
    full = make_demo_session(6, 900, "vanishing")
    store = head(full, 900)
    panel = live_panel(qtbot)
    frame(panel, store)
    before = panel.grab().toImage()
    panel.set_metric("act_grad_norm")
    solid_markers(panel)
    QApplication.processEvents()
    shown = panel.grab().toImage()
    assert differing(shown, before) > 1000
    assert differing(shown, uncached_grab(panel)) <= TOLERATED_PIXELS
    panel.show_step(300)
    QApplication.processEvents()
    assert differing(panel.grab().toImage(), uncached_grab(panel)) <= TOLERATED_PIXELS
    panel.reset()
    other = make_demo_session(6, 200, "exploding", seed=3)
    frame(panel, other)
    assert panel.layer_curves.markers.count == len({ev.step for ev in other.events})
    assert differing(panel.grab().toImage(), uncached_grab(panel)) <= TOLERATED_PIXELS


def test_zoom_and_pan_repaint_the_cached_markers_and_axes(qtbot):
    store = make_demo_session(6, 600, "vanishing")
    store.add_event(250, "clip", "norm:1")
    panel = live_panel(qtbot)
    frame(panel, store)
    vb = panel.layer_curves.plot.getViewBox()
    before = panel.layer_curves.graphics.grab().toImage()
    vb.setXRange(200, 400, padding=0)  # zoom in: markers move, flags and ticks change
    QApplication.processEvents()
    zoomed = panel.grab().toImage()
    assert differing(zoomed, uncached_grab(panel)) <= TOLERATED_PIXELS
    assert differing(before, panel.layer_curves.graphics.grab().toImage()) > 1000
    vb.translateBy(x=37.0)  # a pan: the same scale, shifted
    QApplication.processEvents()
    assert differing(panel.grab().toImage(), uncached_grab(panel)) <= TOLERATED_PIXELS


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


# ----------------------------------------------------------------------- BinCache
def test_bin_cache_growing_store_equals_a_fresh_reduction():
    """Rows arriving in uneven blocks (bins merging on the way) give the same bins as reading
    the whole store at once, and the bins handed out cannot be written into by a plot."""
    rng = np.random.default_rng(4)
    full = make_demo_session(5, 5000, "exploding")
    vals = full.layer_metric("grad_norm")
    vals[rng.integers(0, 5000, 20), rng.integers(0, 5, 20)] = np.nan
    assert np.isnan(full.layer_metric("grad_norm")).sum() >= 15  # a view: the store holds the nans
    store = head(full, 7)
    cache = BinCache(64)
    fetch = lambda a, b: store.layer_metric("grad_norm")[a:b]
    n = 7
    while n < 5000:
        bins = cache.update(store, "g", fetch)
        fresh = BinCache(64).update(store, "g", fetch)
        assert bins.k == fresh.k and bins.n_bins == fresh.n_bins == -(-n // bins.k)
        np.testing.assert_array_equal(bins.mx, fresh.mx)
        np.testing.assert_array_equal(bins.mn, fresh.mn)
        rows = store.layer_metric("grad_norm")
        last = rows[(bins.n_bins - 1) * bins.k : n]  # the partial last bin: its own extremes
        np.testing.assert_array_equal(bins.mx[-1], last.max(axis=0))
        assert not bins.mx.flags.writeable and not bins.mn.flags.writeable
        n = min(5000, n + int(rng.integers(1, 400)))
        grow(store, full, n)


# ----------------------------------------------------------------------- headers
def test_a_new_header_text_repaints_the_label_without_relaying_out_the_window(qtbot):
    """The depth profile's header changes every frame; it must show the new step at once,
    and must not ask every layout up to the window to recompute (the old cost)."""
    from PySide6.QtCore import QEvent, QObject

    class Count(QObject):
        layout_requests = 0

        def eventFilter(self, obj, event):  # Qt API
            if event.type() == QEvent.Type.LayoutRequest:
                self.layout_requests += 1
            return False

    full = make_demo_session(5, 300, "vanishing")
    store = head(full, 100)
    panel = live_panel(qtbot)
    frame(panel, store)
    header = panel.depth_profile.header
    before = header.grab().toImage()
    assert "step 99" in header.text()
    grow(store, full, 250)
    frame(panel, store)
    assert "step 249" in header.text() and "step 249" in header.toolTip()
    assert differing(before, header.grab().toImage()) > 20  # the new number is painted
    counter = Count()
    QApplication.instance().installEventFilter(counter)
    try:  # what each live frame does to the header (the rows' other effects aside)
        header.set_variants("grad_norm per layer at step 250 (latest step)", "step 250")
        QApplication.processEvents()
    finally:
        QApplication.instance().removeEventFilter(counter)
    assert "step 250" in header.text()
    assert counter.layout_requests == 0
    header.setText("a caption far too long to fit this narrow header " * 4)  # QLabel's setText still works
    assert header.text().endswith("\u2026") and header.full_text().startswith("a caption")
