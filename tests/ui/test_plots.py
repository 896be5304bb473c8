"""The live plots: what they plot is checked as data (arrays), never as pixels.

Each test builds a fake Session with known values, refreshes a plot, and
compares the plotted arrays with the store.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from gradsim.metrics import LAYER_INDEX, LAYER_METRICS, STEP_INDEX, STEP_METRICS
from gradsim.session.store import Event, Session, StepRecord
from ui.plots.activations import ActivationStats
from ui.plots.decimate import LOG_CEIL, LOG_FLOOR, MAX_CURVE_BINS, MAX_IMAGE_COLUMNS
from ui.plots.demo_data import fill_demo, make_demo_session
from ui.plots.depth_profile import DepthProfile
from ui.plots.heatmap import NONFINITE_RGB, GradientHeatmap
from ui.plots.layer_curves import LayerCurves
from ui.plots.loss_accuracy import LossAccuracyPlot
from ui.plots.panel import PlotPanel
from ui.plots.update_ratio import REFERENCE_RATIO, UpdateRatioPlot

G = LAYER_INDEX["grad_norm"]
N_METRICS = len(LAYER_METRICS)


# ----------------------------------------------------------------------------- stores
def make_store(layers: np.ndarray, stats_every: int = 1, loss: np.ndarray | None = None) -> Session:
    """A Session holding ``layers`` ((n, L, n_metrics) float32) row by row through ``append``."""
    n, n_layers, _ = layers.shape
    store = Session(n_layers=n_layers)
    for i in range(n):
        scalars = np.zeros(len(STEP_METRICS))
        scalars[STEP_INDEX["loss"]] = 1.0 / (i + 1) if loss is None else loss[i]
        scalars[STEP_INDEX["accuracy"]] = min(1.0, i / max(n, 1))
        store.append(StepRecord(i, scalars, layers[i], i % stats_every == 0))
    return store


def ramp_layers(n: int, n_layers: int, seed: int = 0) -> np.ndarray:
    """Positive values spread over many decades, every metric different."""
    rng = np.random.default_rng(seed)
    exps = rng.uniform(-15, 6, size=(n, n_layers, N_METRICS))
    return (10.0**exps).astype(np.float32)


def big_store(n_layers: int = 100, n_steps: int = 100_000) -> Session:
    """100 layers x 100,000 steps, filled in place (tests only), without the thinning budget."""
    store = Session(n_layers=n_layers, max_memory_mb=1e6)
    store._alloc(n_steps)
    events = fill_demo(store._steps[:n_steps], store._scalars[:n_steps], store._layers[:n_steps], store._has_stats[:n_steps])
    store._n = n_steps
    for ev in events:
        store.add_event(ev.step, ev.kind, ev.value)
    return store


@pytest.fixture(scope="module")
def big() -> Session:
    store = big_store()
    store._layers[12_345, 6, G] = 1e30  # a one-step spike in layer 7 (its usual values are ~1e-21)
    store._layers[54_321, 2, G] = np.nan  # one nan in layer 3
    store._layers[77_777, 4, G] = 0.0  # one exact zero in layer 5
    return store


def widget(qtbot, cls, *args):
    w = cls(*args)
    qtbot.addWidget(w)
    w.resize(900, 600)
    return w


def log10(a: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(a)


# ---------------------------------------------------------------------------- heatmap
def test_heatmap_image_is_log10_of_metric_with_nonfinite_flagged(qtbot):
    layers = ramp_layers(50, 6)
    special = {(3, 0): 0.0, (4, 1): np.nan, (5, 2): np.inf, (6, 3): 1e-30, (7, 4): 1e30, (8, 5): -1.0}
    for (row, layer), v in special.items():
        layers[row, layer, G] = v
    store = make_store(layers)
    hm = widget(qtbot, GradientHeatmap)
    hm.refresh(store)

    expected = log10(store.layer_metric("grad_norm").T.astype(np.float64))
    assert hm.image_data.shape == (6, 50)  # layers x steps, layer 1 in row 0 (drawn at the bottom)
    bad = ~np.isfinite(store.layer_metric("grad_norm").T) | (store.layer_metric("grad_norm").T < 0)
    np.testing.assert_array_equal(hm.nonfinite_mask, bad)
    np.testing.assert_allclose(hm.image_data[~bad], expected[~bad].astype(np.float32), rtol=1e-6)
    assert hm.nonfinite_mask.sum() == 3  # nan, inf and the negative value

    # Colours: zero and tiny values take the bottom colour, huge the top, non-finite magenta.
    assert hm.index_image[0, 3] == 0 and hm.index_image[3, 6] == 0
    assert hm.index_image[4, 7] == 254
    for layer, row in ((1, 4), (2, 5), (5, 8)):
        assert hm.index_image[layer, row] == 255
    rgba = hm.image.image
    assert tuple(rgba[1, 4, :3]) == NONFINITE_RGB
    assert tuple(rgba[0, 3, :3]) != NONFINITE_RGB

    # The image sits on the real step axis and layer axis.
    rect = hm.image.mapRectToParent(hm.image.boundingRect())
    assert rect.left() == pytest.approx(-0.5) and rect.right() == pytest.approx(49.5)
    assert rect.top() == pytest.approx(0.5) and rect.bottom() == pytest.approx(6.5)


def test_heatmap_levels_are_fixed_and_settable(qtbot):
    layers = np.full((10, 3, N_METRICS), 1e-3, np.float32)
    store = make_store(layers)
    hm = widget(qtbot, GradientHeatmap)
    hm.refresh(store)
    assert hm.levels == (-12.0, 4.0)
    before = hm.index_image.copy()
    hm.refresh(store)  # same data, same colours: the levels never follow the data
    np.testing.assert_array_equal(hm.index_image, before)
    hm.set_levels(-4.0, -2.0)  # 1e-3 is now mid-range
    assert hm.index_image[0, 0] == 127
    assert hm.colorbar.levels() == (-4.0, -2.0)
    with pytest.raises(ValueError):
        hm.set_levels(1.0, 1.0)


def test_heatmap_metric_switch(qtbot):
    layers = ramp_layers(20, 4, seed=1)
    store = make_store(layers)
    hm = widget(qtbot, GradientHeatmap)
    hm.refresh(store)
    with qtbot.waitSignal(hm.metric_changed) as blocker:
        hm.combo.setCurrentIndex(hm.combo.findData("act_grad_norm"))
    assert blocker.args == ["act_grad_norm"]
    np.testing.assert_allclose(hm.image_data, log10(store.layer_metric("act_grad_norm").T), rtol=1e-6)
    hm.set_metric("update_ratio")
    assert hm.combo.currentData() == "update_ratio"
    np.testing.assert_allclose(hm.image_data, log10(store.layer_metric("update_ratio").T), rtol=1e-6)
    with pytest.raises(ValueError):
        hm.set_metric("act_mean")


def test_heatmap_downsamples_100_layers_by_100000_steps(qtbot, big):
    hm = widget(qtbot, GradientHeatmap)
    hm.refresh(big)
    n_layers, n_cols = hm.image_data.shape
    assert n_layers == 100
    assert n_cols <= MAX_IMAGE_COLUMNS
    k = -(-len(big) // n_cols)
    # The image spans the real step range, so the x axis reads in steps.
    rect = hm.image.mapRectToParent(hm.image.boundingRect())
    assert rect.left() == pytest.approx(-0.5)
    assert rect.right() >= big.steps[-1]
    # Each column shows the value of its bin farthest from 1 in log10: a one-step spike survives.
    spike_col = 12_345 // k
    assert hm.image_data[6, spike_col] == pytest.approx(30.0)
    assert hm.nonfinite_mask[2, 54_321 // k]  # a single nan flags its column
    assert hm.image_data[4, 77_777 // k] == -np.inf  # a single zero is the most vanished value
    col = 100
    block = big.layer_metric("grad_norm")[col * k : (col + 1) * k, 50].astype(np.float64)
    logs = np.log10(block)
    assert hm.image_data[50, col] == pytest.approx(logs[np.argmax(np.abs(logs))], rel=1e-6)
    assert "steps per column" in hm.note.text()


def test_heatmap_incremental_refresh_matches_a_fresh_one(qtbot):
    """Growing the store frame by frame (bins merging as it grows) gives the same image as one cold pass."""
    n, n_layers = 9_000, 5
    layers = ramp_layers(n, n_layers, seed=3)
    layers[4_000, 1, G] = np.nan
    store = Session(n_layers=n_layers)
    live = widget(qtbot, GradientHeatmap, None, 300)
    scalars = np.zeros(len(STEP_METRICS))
    for i in range(n):
        store.append(StepRecord(i, scalars, layers[i], True))
        if i % 97 == 0:
            live.refresh(store)
    live.refresh(store)
    fresh = widget(qtbot, GradientHeatmap, None, 300)
    fresh.refresh(store)
    assert live.image_data.shape[1] <= 300
    np.testing.assert_array_equal(live.image_data, fresh.image_data)
    np.testing.assert_array_equal(live.nonfinite_mask, fresh.nonfinite_mask)
    np.testing.assert_array_equal(live.index_image, fresh.index_image)


def test_heatmap_survives_store_thinning(qtbot):
    """A bounded store keeps every other row when full; the cached bins must notice."""
    n_layers = 4
    store = Session(n_layers=n_layers, max_memory_mb=0.05)
    hm = widget(qtbot, GradientHeatmap, None, 64)
    layers = ramp_layers(3_000, n_layers, seed=4)
    scalars = np.zeros(len(STEP_METRICS))
    thinned = False
    for i in range(3_000):
        store.append(StepRecord(i, scalars, layers[i], True))
        thinned |= store.record_every > 1
        if i % 50 == 0:
            hm.refresh(store)
    assert thinned
    hm.refresh(store)
    fresh = widget(qtbot, GradientHeatmap, None, 64)
    fresh.refresh(store)
    np.testing.assert_array_equal(hm.image_data, fresh.image_data)


def test_heatmap_click_picks_a_step(qtbot):
    store = make_store(ramp_layers(40, 3))
    hm = widget(qtbot, GradientHeatmap)
    hm.refresh(store)

    class Click:
        def __init__(self, pos: QPointF, double: bool = False) -> None:
            self._pos, self._double = pos, double

        def scenePos(self) -> QPointF:
            return self._pos

        def double(self) -> bool:
            return self._double

    vb = hm.plot.getViewBox()
    scene_pos = vb.mapViewToScene(QPointF(17.2, 2.0))
    with qtbot.waitSignal(hm.step_picked) as blocker:
        hm._on_mouse_clicked(Click(scene_pos))
    assert blocker.args == [17]
    assert hm.step_cursor.isVisible() and hm.step_cursor.value() == 17
    with qtbot.waitSignal(hm.latest_requested):
        hm._on_mouse_clicked(Click(scene_pos, double=True))
    assert not hm.step_cursor.isVisible()


# ----------------------------------------------------------------------- depth profile
def test_depth_profile_plots_the_last_step(qtbot):
    store = make_store(ramp_layers(30, 8, seed=5))
    dp = widget(qtbot, DepthProfile)
    dp.refresh(store)
    last = store.layer_metric("grad_norm")[-1].astype(np.float64)
    np.testing.assert_array_equal(dp.values, last)
    x, y = dp.curve.getOriginalDataset()
    np.testing.assert_array_equal(x, np.arange(1, 9))
    np.testing.assert_array_equal(y, np.clip(last, LOG_FLOOR, LOG_CEIL))
    assert dp.step == 29
    assert "step 29" in dp.header.text()

    dp.show_step(10)
    np.testing.assert_array_equal(dp.values, store.layer_metric("grad_norm")[10])
    dp.set_metric("act_grad_norm")
    np.testing.assert_array_equal(dp.values, store.layer_metric("act_grad_norm")[10])
    dp.show_step(None)
    assert dp.step == 29


def test_depth_profile_never_hides_zero_or_nonfinite(qtbot):
    layers = ramp_layers(5, 6, seed=6)
    layers[-1, :, G] = [1e-3, 0.0, np.nan, np.inf, 1e-30, 1e30]
    dp = widget(qtbot, DepthProfile)
    dp.refresh(make_store(layers))
    fx, fy = dp.floor_marks.getOriginalDataset()
    np.testing.assert_array_equal(fx, [2, 5])  # 0 and 1e-30 sit on the floor, marked
    np.testing.assert_array_equal(fy, [LOG_FLOOR, LOG_FLOOR])
    nx, ny = dp.nan_marks.getOriginalDataset()
    np.testing.assert_array_equal(nx, [3, 4, 6])  # nan, inf and 1e30 marked at the ceiling
    assert "layers 2, 5" in dp.note.text() and "layers 3, 4, 6" in dp.note.text()
    _, y = dp.curve.getOriginalDataset()
    assert y[1] == LOG_FLOOR and y[3] == LOG_CEIL and np.isnan(y[2])


def test_depth_profile_prediction_curve(qtbot):
    dp = widget(qtbot, DepthProfile)
    dp.refresh(make_store(ramp_layers(3, 4)))
    dp.set_prediction([1.0, 0.5, 0.25, 0.125])
    x, y = dp.prediction_curve.getOriginalDataset()
    np.testing.assert_array_equal(x, [1, 2, 3, 4])
    np.testing.assert_array_equal(y, [1.0, 0.5, 0.25, 0.125])
    assert dp.prediction_curve.opts["pen"].style().name == "DashLine"
    dp.set_prediction(None)
    x, _ = dp.prediction_curve.getOriginalDataset()
    assert x is None or len(x) == 0


# ------------------------------------------------------------------------ layer curves
def test_plots_and_exercises_share_one_middle_layer():
    from gradsim.teaching.exercises import _resolve_layer
    from gradsim.metrics import middle_layer
    from ui.plots.layer_choice import default_layers

    for n_layers in (2, 3, 10, 11, 21, 101):
        assert middle_layer(n_layers) in default_layers(n_layers)
        assert _resolve_layer("middle", n_layers) == middle_layer(n_layers)
    assert default_layers(21) == [1, 10, 21]  # depth 20: the 10th of 20 hidden layers


def test_layer_curves_default_to_first_middle_last(qtbot):
    store = make_store(ramp_layers(200, 10, seed=7))
    lc = widget(qtbot, LayerCurves)
    lc.refresh(store)
    assert lc.layers == [1, 5, 10]
    assert len(lc.curves) == 3
    for curve, layer in zip(lc.curves, lc.layers):
        x, y = curve.getOriginalDataset()
        np.testing.assert_array_equal(x, store.steps)
        np.testing.assert_array_equal(y, np.clip(store.layer_metric("grad_norm")[:, layer - 1], LOG_FLOOR, LOG_CEIL))
    assert lc.legend.texts() == ["linear 1", "linear 5", "output"]  # the store's unit names

    lc.set_layers([2, 7])
    assert lc.layers == [2, 7] and len(lc.curves) == 2
    np.testing.assert_array_equal(lc.curves[1].getOriginalDataset()[1], store.layer_metric("grad_norm")[:, 6])
    lc.set_layers([99])  # out of range for this store: back to the default
    assert lc.layers == [1, 5, 10]
    lc.set_layers(None)
    assert lc.layers == [1, 5, 10]


def test_layer_curves_edit_box_emits_selection(qtbot):
    lc = widget(qtbot, LayerCurves)
    lc.refresh(make_store(ramp_layers(20, 6)))
    lc.layer_edit.setText("2, 4 6")
    with qtbot.waitSignal(lc.layers_changed) as blocker:
        lc.layer_edit.editingFinished.emit()
    assert blocker.args == [[2, 4, 6]] and lc.layers == [2, 4, 6]
    lc.layer_edit.setText("two")
    lc.layer_edit.editingFinished.emit()
    assert lc.layers == [2, 4, 6] and "type numbers" in lc.note.text()


def test_layer_curves_decimate_long_runs_keeping_spikes(qtbot, big):
    lc = widget(qtbot, LayerCurves)
    lc.set_layers([7])
    lc.refresh(big)
    x, y = lc.curves[0].getOriginalDataset()
    assert len(x) <= 2 * MAX_CURVE_BINS
    assert y.max() == LOG_CEIL  # min and max per bin: the spike is drawn (clamped to the axis range)
    assert x[0] == 0 and x[-1] <= big.steps[-1]


# ------------------------------------------------------------------------ update ratio
def test_update_ratio_plot_has_reference_line(qtbot):
    store = make_store(ramp_layers(50, 9, seed=8))
    ur = widget(qtbot, UpdateRatioPlot)
    ur.refresh(store)
    assert ur.layers == [1, 4, 9]  # 9 layers: 8 hidden, middle_layer = 4 (as the exercises count)
    np.testing.assert_array_equal(
        ur.curves[2].getOriginalDataset()[1], np.clip(store.layer_metric("update_ratio")[:, 8], LOG_FLOOR, LOG_CEIL)
    )
    assert ur.reference.value() == pytest.approx(np.log10(REFERENCE_RATIO))  # log-mode view coordinates
    assert "1e-3" in ur.reference.label.format
    lo, hi = ur.plot.getViewBox().viewRange()[1]
    assert lo <= -3 <= hi  # the reference stays in view


# ------------------------------------------------------------------------ loss/accuracy
def test_loss_accuracy_survives_divergence(qtbot):
    n = 60
    loss = np.linspace(1.0, 5.0, n)
    loss[40] = np.inf
    loss[41:] = np.nan
    store = make_store(ramp_layers(n, 3), loss=loss)
    store.add_event(40, "diverged", "loss=inf")
    la = widget(qtbot, LossAccuracyPlot)
    la.refresh(store)
    la.set_events(store.events)
    x, y = la.loss_curve.getOriginalDataset()
    np.testing.assert_array_equal(x, store.steps)
    np.testing.assert_array_equal(y[:40], loss[:40])
    assert y[40] == LOG_CEIL and np.isnan(y[41:]).all()
    _, acc = la.acc_curve.getOriginalDataset()
    np.testing.assert_array_equal(acc, store.column("accuracy"))
    assert "diverged at step 40" in la.note.text()
    assert la.acc_plot.getViewBox().viewRange()[1][0] <= 0 and la.acc_plot.getViewBox().viewRange()[1][1] >= 1


# ------------------------------------------------------------------------- activations
def test_activations_show_latest_sampled_step(qtbot):
    layers = ramp_layers(23, 4)
    layers[:, :, LAYER_INDEX["act_saturation"]] = np.linspace(0, 1, 23)[:, None]
    layers[:, :, LAYER_INDEX["act_dead"]] = np.arange(1, 5) / 10
    act = widget(qtbot, ActivationStats)
    store = make_store(layers, stats_every=10)  # rows 0, 10, 20 sampled
    act.refresh(store)
    assert act.step == 20
    np.testing.assert_array_equal(act.saturation, store.layer_metric("act_saturation")[20])
    np.testing.assert_array_equal(act.dead, store.layer_metric("act_dead")[20])
    np.testing.assert_allclose(act.saturation_bars.opts["height"], store.layer_metric("act_saturation")[20])
    np.testing.assert_allclose(act.dead_bars.opts["height"], [0.1, 0.2, 0.3, 0.4])
    assert "step 20" in act.header.text()



def _count_calls(monkeypatch, obj, name: str) -> list:
    """Record each call of ``obj.name`` (still calling it)."""
    calls: list = []
    orig = getattr(obj, name)

    def spy(*args, **kwargs):
        calls.append(args)
        return orig(*args, **kwargs)

    monkeypatch.setattr(obj, name, spy)
    return calls


def test_activations_redraw_bars_only_when_the_sampled_row_changes(qtbot, monkeypatch):
    """Rows without statistics leave the bars as they were (no redraw); a new sample redraws them."""
    layers = ramp_layers(25, 4)
    layers[:, :, LAYER_INDEX["act_saturation"]] = np.linspace(0, 1, 25)[:, None]
    act = widget(qtbot, ActivationStats)
    full = make_store(layers, stats_every=10)  # rows 0, 10, 20 sampled
    store = Session(n_layers=4)
    for i in range(15):
        store.append(StepRecord(i, full.scalars[i], full.layers[i], bool(full.has_stats[i])))
    calls = _count_calls(monkeypatch, act.saturation_bars, "setOpts")
    act.refresh(store)
    assert act.step == 10 and len(calls) == 1
    for i in range(15, 20):  # no statistics in these rows
        store.append(StepRecord(i, full.scalars[i], full.layers[i], bool(full.has_stats[i])))
        act.refresh(store)
    assert act.step == 10 and len(calls) == 1
    np.testing.assert_allclose(act.saturation_bars.opts["height"], full.layer_metric("act_saturation")[10])
    store.append(StepRecord(20, full.scalars[20], full.layers[20], True))
    act.refresh(store)
    assert act.step == 20 and len(calls) == 2
    np.testing.assert_allclose(act.saturation_bars.opts["height"], full.layer_metric("act_saturation")[20])
    act.reset()  # a new run draws again even if it starts with the same numbers
    act.refresh(store)
    assert len(calls) == 4  # reset clears the bars (one call), the refresh draws them
    np.testing.assert_allclose(act.saturation_bars.opts["height"], full.layer_metric("act_saturation")[20])


def test_depth_profile_marks_follow_the_data_and_are_not_redrawn_unchanged(qtbot, monkeypatch):
    layers = ramp_layers(4, 3, seed=7)
    layers[2, :, G] = [1e-3, 0.0, 1e-2]  # layer 2 on the floor at row 2
    layers[3, :, G] = [1e-3, 1e-2, np.nan]  # then layer 3 nan, layer 2 back up
    full = make_store(layers)
    store = Session(n_layers=3)
    dp = widget(qtbot, DepthProfile)
    calls = _count_calls(monkeypatch, dp.floor_marks, "setData")
    for i in range(2):
        store.append(StepRecord(i, full.scalars[i], full.layers[i], True))
        dp.refresh(store)
    assert len(calls) == 1  # nothing to mark: set (empty) at the first frame only
    store.append(StepRecord(2, full.scalars[2], full.layers[2], True))
    dp.refresh(store)
    np.testing.assert_array_equal(dp.floor_marks.getOriginalDataset()[0], [2])
    assert len(calls) == 2
    dp.refresh(store)
    assert len(calls) == 2  # same marks: not set again
    store.append(StepRecord(3, full.scalars[3], full.layers[3], True))
    dp.refresh(store)
    fx = dp.floor_marks.getOriginalDataset()[0]
    assert fx is None or np.asarray(fx).size == 0  # layer 2 left the floor
    np.testing.assert_array_equal(dp.nan_marks.getOriginalDataset()[0], [3])
    dp.show_step(2)  # back to the step with the zero
    np.testing.assert_array_equal(dp.floor_marks.getOriginalDataset()[0], [2])
    nx = dp.nan_marks.getOriginalDataset()[0]
    assert nx is None or np.asarray(nx).size == 0


def test_step_axis_moves_a_few_times_per_decade(qtbot):
    """The x range grows ahead of the data, so a growing run moves the step axis rarely
    (each move re-lays out the axis); the newest step is always in view."""
    from ui.plots.base import RangeFollower

    lc = widget(qtbot, LayerCurves)
    follower = lc.follower
    assert isinstance(follower, RangeFollower)
    moves, last = 0, None
    for end in range(10, 100_001, 10):
        follower.update(0.0, float(end))
        lo, hi = follower.x_range
        assert lo == 0.0 and hi >= end
        if follower.x_range != last:
            moves, last = moves + 1, follower.x_range
    assert moves <= 12 * 4  # ~10 a decade over four decades (5 % head room moved ~50 a decade)


def test_log_y_range_holds_while_the_data_hovers_at_a_decade(qtbot):
    """A depth profile spanning 1e-2..1e-0.5 whose minimum crosses 1e-2 back and forth
    keeps one view (each move re-lays out the axis); data outside it still moves it."""
    from ui.plots.base import RangeFollower

    dp = widget(qtbot, DepthProfile)
    follower = dp.follower
    assert isinstance(follower, RangeFollower)
    ranges = set()
    for i in range(40):
        low = -1.95 if i % 3 == 2 else -2.05  # log10 of the minimum: below 1e-2, now and then above
        follower.update(y=10.0 ** np.array([low, -1.0, -0.55]))
        lo, hi = follower.y_range
        assert lo <= low and hi >= -0.55  # everything stays in view
        ranges.add(follower.y_range)
    assert len(ranges) == 1, ranges
    follower.update(y=np.array([1e-6, 1e-1]))  # the data leaves the view: it follows
    assert follower.y_range[0] <= -6 and follower.y_range[1] >= -1
    follower.update(y=np.array([1e-2, 1e-1]))  # far too wide now: it shrinks
    assert follower.y_range[1] - follower.y_range[0] <= RangeFollower.MIN_DECADES + 2



def test_log_y_range_keeps_room_below_the_lowest_curve(qtbot):
    """A curve just above a decade (1e-11.9) is not drawn along the x axis: a quarter decade stays below it."""
    dp = widget(qtbot, DepthProfile)
    dp.follower.update(y=10.0 ** np.array([-11.9, -3.0, 0.0]))
    assert dp.follower.y_range[0] <= -11.9 - 0.25


# ---------------------------------------------------------------------------- markers
def test_event_markers_created_once_per_event(qtbot):
    store = make_demo_session(6, 300)
    panel = widget(qtbot, PlotPanel)
    panel.refresh(store)
    n_events = len(store.events)
    steps = sorted({ev.step for ev in store.events})
    assert n_events >= 3
    for plot in panel.time_plots:
        assert plot.markers.count == len(steps) and len(plot.markers.events) == n_events
        assert plot.set_events(store.events) == 0  # nothing new: nothing added
        assert plot.markers.count == len(steps)
    np.testing.assert_array_equal(panel.heatmap.markers.positions(), steps)
    assert any("batchnorm on" in t for t in panel.heatmap.markers.item.texts)

    store.add_event(250, "clip", "norm:1")
    panel.refresh(store)
    assert all(p.markers.count == len(steps) + 1 for p in panel.time_plots)
    assert panel.layer_curves.markers.item.texts[-1] == "250: clip norm:1"

    other = [Event(5, "note", "another run")]  # not a continuation: start over
    assert panel.update_ratio.set_events(other) == 1 and panel.update_ratio.markers.count == 1
    panel.reset()
    assert all(p.markers.count == 0 for p in panel.time_plots)


def test_coincident_events_merge_into_one_flag_with_full_text_on_hover(qtbot):
    """Pause and batch norm at step 324 used to overprint; now one flag names both."""
    panel = widget(qtbot, PlotPanel)
    events = [Event(0, "start", "config"), Event(324, "pause", "paused in the window"), Event(324, "batchnorm", "on"),
              Event(500, "lr", "0.01")]
    lc = panel.loss_accuracy
    assert lc.set_events(events) == 4
    assert lc.markers.texts == ["0: start", "324: pause, batchnorm on", "500: lr 0.01"]
    assert lc.markers.count == 3
    # The flag takes the change's colour, not the pause's grey.
    from ui.plots.style import EVENT_COLOURS

    assert lc.markers.item.colours[1].name() == EVENT_COLOURS["batchnorm"]
    near = lc.markers.near(325, tolerance=3)
    assert [step for step, _ in near] == [324]
    from ui.plots.markers import full_text

    assert full_text(*near[0]) == "324: pause (paused in the window), batchnorm=on"


def test_event_flags_never_overlap(qtbot):
    """Flags of close steps stack in rows instead of overprinting."""
    panel = widget(qtbot, PlotPanel)
    panel.resize(1200, 700)
    store = make_demo_session(6, 300)
    for step in (100, 101, 102, 103, 104):
        store.add_event(step, "lr", f"0.0{step}")
    panel.refresh(store, force=True)
    item = panel.loss_accuracy.markers.item
    item.setVisible(True)
    panel.loss_accuracy.graphics.grab()  # paint
    rects = item.flag_rects
    assert len(rects) >= 3
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not a.intersects(b), (a, b)


# -------------------------------------------------------------------- robustness
@pytest.mark.parametrize("n", [0, 1, 2, 37])
def test_store_of_nan_inf_zero_refreshes(qtbot, n):
    rng = np.random.default_rng(n)
    choices = np.array([0.0, np.nan, np.inf, -np.inf, 1e-30, 1e30, -1.0, 1.0], np.float32)
    layers = rng.choice(choices, size=(n, 7, N_METRICS)).astype(np.float32)
    store = Session(n_layers=7)
    for i in range(n):
        scalars = rng.choice(choices.astype(np.float64), size=len(STEP_METRICS))
        store.append(StepRecord(i, scalars, layers[i], bool(i % 2)))
        store.add_event(i, "lr", "nan")
    panel = widget(qtbot, PlotPanel)
    assert panel.refresh(store)
    for name in ("grad_norm", "act_grad_norm", "update_ratio"):
        panel.set_metric(name)
    panel.depth_profile.set_prediction([np.nan, 0.0, np.inf, 1.0, -1.0, 1e-300, 1e300])
    panel.show_step(1)
    panel.grab()  # paint everything once
    if n:
        assert panel.heatmap.image_data.shape == (7, n)


def test_all_nan_run_refreshes(qtbot):
    layers = np.full((20, 5, N_METRICS), np.nan, np.float32)
    store = make_store(layers, loss=np.full(20, np.nan))
    panel = widget(qtbot, PlotPanel)
    panel.refresh(store)
    panel.grab()
    assert panel.heatmap.nonfinite_mask.all()
    assert "non-finite" in panel.layer_curves.note.text()


# ------------------------------------------------------------------------------ panel
def test_panel_refresh_skips_unchanged_store(qtbot):
    store = make_demo_session(5, 100)
    panel = widget(qtbot, PlotPanel)
    assert panel.refresh(store) is True
    assert panel.refresh(store) is False
    assert panel.refresh(store, force=True) is True
    store.append(StepRecord(100, np.zeros(len(STEP_METRICS)), np.ones((5, N_METRICS), np.float32), True))
    assert panel.refresh(store) is True
    assert panel.depth_profile.step == 100
    store.add_event(100, "lr", "0.01")
    assert panel.refresh(store) is True
    assert panel.refresh(make_demo_session(5, 100)) is True  # another store of the same shape


def test_panel_shared_metric_and_layers(qtbot):
    store = make_demo_session(12, 150)
    panel = widget(qtbot, PlotPanel)
    panel.refresh(store)
    panel.set_metric("act_grad_norm")
    assert panel.heatmap.metric_name == panel.depth_profile.metric_name == panel.layer_curves.metric_name == "act_grad_norm"
    np.testing.assert_array_equal(panel.depth_profile.values, store.layer_metric("act_grad_norm")[-1])
    panel.heatmap.combo.setCurrentIndex(panel.heatmap.combo.findData("update_ratio"))  # the user's choice spreads
    assert panel.layer_curves.metric_name == "update_ratio" and panel.metric_name == "update_ratio"
    with pytest.raises(ValueError):
        panel.set_metric("loss")
    panel.layer_curves.layer_edit.setText("3 4")
    panel.layer_curves.layer_edit.editingFinished.emit()
    assert panel.update_ratio.layers == [3, 4]
    panel.heatmap.step_picked.emit(40)
    assert panel.depth_profile.step == 40


def test_panel_reset_empties_every_plot(qtbot):
    panel = widget(qtbot, PlotPanel)
    panel.refresh(make_demo_session(4, 50))
    panel.reset()
    assert panel.heatmap.image_data.size == 0
    assert panel.depth_profile.values.size == 0
    assert panel.layer_curves.curves == []
    assert panel.activations.saturation.size == 0
    x, _ = panel.loss_accuracy.loss_curve.getOriginalDataset()
    assert x is None or len(x) == 0


def test_save_png_writes_a_png(qtbot, tmp_path):
    panel = widget(qtbot, PlotPanel)
    panel.refresh(make_demo_session(8, 200, "exploding"))
    out = panel.save_png(tmp_path / "plots.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    with pytest.raises(OSError):
        panel.save_png(tmp_path / "missing-folder" / "plots.png")


# ------------------------------------------------------------------------------ hover
def test_hover_readouts_show_exact_values(qtbot):
    layers = ramp_layers(30, 4, seed=9)
    store = make_store(layers)
    store.add_event(12, "batchnorm", "on")
    panel = widget(qtbot, PlotPanel)
    panel.refresh(store)

    v = float(store.layer_metric("grad_norm")[12, 2])
    text = panel.heatmap.readout_at(0, 12.1, 3.2)
    assert "step 12, linear 3:" in text and f"{v:.4g}" in text

    text = panel.depth_profile.readout_at(0, 2.1, -3.0)
    assert "linear 2:" in text and f"{store.layer_metric('grad_norm')[-1, 1]:.4g}" in text

    text = panel.layer_curves.readout_at(0, 7.4, 0.0)
    assert text.startswith("step 7:") and f"linear 1 = {store.layer_metric('grad_norm')[7, 0]:.4g}" in text

    text = panel.loss_accuracy.readout_at(1, 12.0, 0.5)
    assert "step 12" in text and "loss = " in text and "batchnorm=on" in text

    text = panel.activations.readout_at(0, 4.0, 0.5)
    assert "layer 4" in text and "saturated" in text

    # The mouse path: a scene position inside the heatmap updates its read-out label.
    vb = panel.heatmap.plot.getViewBox()
    vb.setRange(xRange=(0, 30), yRange=(0.5, 4.5), padding=0)
    panel.heatmap._on_mouse_moved(vb.mapViewToScene(QPointF(20.0, 1.0)))
    assert "step 20, linear 1" in panel.heatmap.readout.text()


def test_every_control_has_a_tooltip(qtbot):
    from PySide6.QtWidgets import QComboBox, QLineEdit

    panel = widget(qtbot, PlotPanel)
    for plot in panel.plots:
        assert plot.toolTip()
        for control in plot.findChildren(QComboBox) + plot.findChildren(QLineEdit):
            assert control.toolTip(), f"{type(plot).__name__}: {control!r} has no tooltip"
