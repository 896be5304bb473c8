"""Readable at 1280x720: the narrow layout, unit ticks that never run together, the step axis
ending at the data, the confusion matrix's numbers and scale, the decision boundary's 1:1 aspect."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QWidget

from gradsim.metrics import LAYER_METRICS, STEP_METRICS
from gradsim.session.store import Session, StepRecord
from gradsim.teaching.learned import BoundaryGrid, Confusion
from ui.plots.labels import compact_name
from ui.plots.learned import LearnedPanel
from ui.plots.panel import NARROW_HYSTERESIS_PX, NARROW_PX, PlotPanel
from ui.plots.unit_ticks import thin_ticks


def _store(n_layers: int = 21, steps: int = 40) -> Session:
    store = Session(n_layers, {"depth": n_layers - 1, "steps": 2000})
    rng = np.random.default_rng(1)
    for i in range(steps):
        layers = (10.0 ** rng.uniform(-6, 2, size=(n_layers, len(LAYER_METRICS)))).astype(np.float32)
        store.append(StepRecord(i, np.zeros(len(STEP_METRICS)), layers, True))
    return store


def _in_splitters(panel: PlotPanel, plot) -> bool:
    return any(s.indexOf(plot) >= 0 for s in panel.splitters)


def test_a_narrow_panel_tabs_the_small_plots_and_a_wide_one_puts_them_back(qtbot):
    # inside a layout-less parent, as in the window (a top-level panel would resize itself
    # to its new minimum size, which offscreen Qt warns about)
    host = QWidget()
    qtbot.addWidget(host)
    host.resize(1400, 700)
    panel = PlotPanel(host)
    host.show()
    panel.resize(NARROW_PX + NARROW_HYSTERESIS_PX + 200, 600)
    qtbot.waitUntil(lambda: panel.width() > NARROW_PX + NARROW_HYSTERESIS_PX)
    assert not panel.narrow and all(_in_splitters(panel, p) for p in panel.plots)
    panel.resize(NARROW_PX - 200, 600)
    qtbot.waitUntil(lambda: panel.narrow)
    assert [panel.tabs.widget(i) for i in range(panel.tabs.count())] == [
        panel.layer_curves, panel.update_ratio, panel.activations]
    for p in (panel.heatmap, panel.depth_profile, panel.loss_accuracy):
        assert _in_splitters(panel, p) and p.isVisible()
    # inside the hysteresis band nothing changes; past it the three-a-row layout returns
    panel.resize(NARROW_PX + NARROW_HYSTERESIS_PX // 2, 600)
    qtbot.wait(20)
    assert panel.narrow
    panel.resize(NARROW_PX + NARROW_HYSTERESIS_PX + 200, 600)
    qtbot.waitUntil(lambda: not panel.narrow)
    assert panel.tabs.count() == 0
    assert all(_in_splitters(panel, p) and p.isVisible() for p in panel.plots)
    # the refresh still reaches every plot after two moves
    store = _store()
    panel.refresh(store)
    assert panel.activations.step == 39 and panel.layer_curves.isVisible()


def test_thin_ticks_keep_both_ends_and_never_overlap():
    fm = QFontMetrics(pg.QtGui.QFont())
    ticks = [(float(i), f"linear {i}") for i in range(1, 21)] + [(21.0, "output")]

    def room(labels):
        return max(fm.horizontalAdvance(t) for t in labels)

    for px_per_unit in (4.0, 9.0, 15.0, 30.0, 200.0):
        drawn = thin_ticks(ticks, px_per_unit, room)
        assert drawn[0][0] == 1.0 and drawn[-1][0] == 21.0
        widths = [fm.horizontalAdvance(t) for _, t in drawn]
        for (a, ta), (b, tb), wa, wb in zip(drawn, drawn[1:], widths, widths[1:]):
            assert (b - a) * px_per_unit >= (wa + wb) / 2, (px_per_unit, ta, tb)
    # room for every full name: all are drawn as given; little room: the short names
    assert thin_ticks(ticks, 200.0, room) == ticks
    short = thin_ticks(ticks, 9.0, room)
    assert all(t == compact_name(full) for (x, t) in short for (y, full) in ticks if x == y)


def test_the_step_axis_ends_at_the_last_step_once_the_run_stops(qtbot):
    panel = PlotPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 600)
    store = _store(steps=40)
    panel.set_growing(True)
    panel.refresh(store)
    lo, hi = panel.loss_accuracy.loss_plot.getViewBox().viewRange()[0]
    assert hi > 39 + 0.2 * 39  # head room while it trains (fewer re-laid-out axes)
    panel.set_growing(False)
    for plot in (panel.loss_accuracy.loss_plot, panel.layer_curves.plot, panel.update_ratio.plot):
        lo, hi = plot.getViewBox().viewRange()[0]
        assert 39 <= hi <= 39 + 1.5, (plot, hi)


def test_the_step_axis_never_runs_past_the_planned_end(qtbot):
    panel = PlotPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 600)
    store = Session(3, {"depth": 2, "steps": 40})
    for i in range(40):
        store.append(StepRecord(i, np.zeros(len(STEP_METRICS)), np.ones((3, len(LAYER_METRICS)), np.float32), True))
    panel.set_growing(True)
    panel.refresh(store)
    lo, hi = panel.loss_accuracy.loss_plot.getViewBox().viewRange()[0]
    assert hi <= 41


def test_confusion_cells_show_their_counts_and_a_fixed_colour_bar(qtbot):
    panel = LearnedPanel()
    qtbot.addWidget(panel)
    counts = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    conf = Confusion(counts, np.full((3, 3, 3), 1 / 3), "held-out", 12)
    panel.set_confusion(conf)
    shown = [t for t in panel.cell_texts if t.isVisible()]
    assert len(shown) == 9
    for item in shown:
        col, row = int(round(item.pos().x())), int(round(item.pos().y()))
        assert item.toPlainText() == str(counts[row, col])
    assert tuple(panel.confusion_bar.values) == (0.0, 1.0)
    # a smaller matrix next hides the extra numbers, it does not leave stale ones
    panel.set_confusion(Confusion(np.array([[3, 0], [1, 2]]), np.full((2, 2, 2), 0.5), "held-out", 13))
    assert sorted(t.toPlainText() for t in panel.cell_texts if t.isVisible()) == ["0", "1", "2", "3"]
    # one tick per class on both axes (two classes once read -0.5, -0.4, ... 1.5)
    for side in ("bottom", "left"):
        assert panel.confusion_plot.getAxis(side)._tickLevels == [[(0.0, "0"), (1.0, "1")]]


def test_the_decision_boundary_keeps_a_1_to_1_aspect(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    host.resize(320, 620)
    panel = LearnedPanel(host)
    panel.resize(300, 600)  # a tall, narrow dock
    host.show()
    xs = ys = np.linspace(-2.0, 2.0, 20, dtype=np.float32)
    probs = np.full((20, 20, 2), 0.5, np.float32)
    pts = np.zeros((4, 2), np.float32)
    panel.set_grid(BoundaryGrid(xs, ys, probs, pts, np.zeros(4, int), 3))
    qtbot.wait(50)
    vb = panel.boundary_plot.getViewBox()
    (x0, x1), (y0, y1) = vb.viewRange()
    px_per_x = vb.width() / (x1 - x0)
    px_per_y = vb.height() / (y1 - y0)
    assert abs(px_per_x / px_per_y - 1.0) < 0.02


def test_a_unit_axis_too_short_for_its_title_shows_the_short_form(qtbot):
    """The transformer's "residual stream entering block l (1 = input side)" under a ~160 px depth
    profile (a dock open at 1280x720) was cut at both ends: it reads "stream l", full text on hover."""
    from ui.plots.unit_axis import SHORT_TITLES, STREAM_TITLE, set_unit_title

    w = pg.PlotWidget()
    qtbot.addWidget(w)
    w.resize(160, 200)
    w.show()
    qtbot.waitExposed(w)
    plot = w.getPlotItem()
    set_unit_title(plot, "bottom", STREAM_TITLE)
    axis = plot.getAxis("bottom")
    assert axis.labelText == SHORT_TITLES[STREAM_TITLE] and axis.toolTip() == STREAM_TITLE
    w.resize(900, 200)
    qtbot.waitUntil(lambda: axis.width() > 600)
    set_unit_title(plot, "bottom", STREAM_TITLE)
    assert axis.labelText == STREAM_TITLE
