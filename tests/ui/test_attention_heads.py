"""The per-head attention-entropy plot shows the recorded values of the latest sampled step,
blocks across and heads up, readable at 24 blocks x 8 heads, and only for runs that have heads."""
import numpy as np
import pytest
from PySide6.QtWidgets import QWidget

from gradsim.metrics import LAYER_INDEX, LAYER_METRICS, STEP_METRICS
from gradsim.models.family import mlp_units, transformer_units
from gradsim.session.store import Session, StepRecord
from ui.plots.attention_heads import AttentionHeads, head_layout
from ui.plots.panel import HEADS_TAB, NARROW_PX, PlotPanel


def _store(depth=24, heads=8, n=6, seq_len=32, stats_every=2):
    units = transformer_units(depth, heads)
    s = Session(len(units), {"model": "transformer", "depth": depth, "width": 8 * heads, "heads": heads, "seq_len": seq_len}, units=units)
    rng = np.random.default_rng(3)
    for i in range(n):
        layers = rng.uniform(0.0, 1.0, (len(units), len(LAYER_METRICS))).astype(np.float32)
        has = i % stats_every == 0
        if not has:
            layers[:, LAYER_INDEX["act_mean"]:] = np.nan
        s.append(StepRecord(i, np.zeros(len(STEP_METRICS)), layers, has))
    return s


def test_the_plot_shows_each_heads_recorded_entropy_of_the_latest_sampled_step(qtbot):
    store = _store()
    host = QWidget()  # a top-level plot would resize itself to its minimum size (offscreen Qt warns)
    qtbot.addWidget(host)
    host.resize(600, 300)
    w = AttentionHeads(host)
    w.resize(500, 230)
    host.show()
    w.refresh(store)
    assert w.step == 4  # step 5 has no statistics
    heads = [j for j, u in enumerate(store.units) if u.kind == "head"]
    assert len(heads) == 24 * 8
    want = store.layers[4, heads, LAYER_INDEX["act_mean"]].astype(np.float64)
    # independent of the reshape: each unit's own name says its block and head
    for j, v in zip(heads, want):
        _, b, _, h = store.units[j].name.split()
        assert w.values[int(b) - 1, int(h) - 1] == v
    # the image: x = block, y = head, colour index = entropy x 254 on the fixed 0..1 scale
    img = w.image.image
    assert img.shape[:2] == (8, 24)
    b, h = 17, 6
    v = store.layers[4, heads[(b - 1) * 8 + (h - 1)], LAYER_INDEX["act_mean"]]
    np.testing.assert_array_equal(img[h - 1, b - 1], w.lut[int(round(float(v) * 254))])
    r = w.image.mapRectToParent(w.image.boundingRect())
    assert (r.left(), r.right(), r.top(), r.bottom()) == (0.5, 24.5, 0.5, 8.5)
    title = w.header.full_text()
    assert "0 = one token" in title and "uniform over 32 tokens" in title and "step 4" in title
    text = w.readout_at(0, float(b), float(h))
    assert f"block {b} head {h}" in text and f"{float(v) * np.log(32):.3g}"[:4] in text
    xt = [t for t, _ in w.plot.getAxis("bottom")._tickLevels[0]]
    assert xt[0] == 1 and xt[-1] == 24 and len(xt) <= 13  # both ends named, readable at 24 blocks
    yt = [t for t, _ in w.plot.getAxis("left")._tickLevels[0]]
    assert yt == list(range(1, 9))


def test_a_non_finite_entropy_is_magenta_and_said():
    store = _store(depth=2, heads=2, n=1)
    heads = [j for j, u in enumerate(store.units) if u.kind == "head"]
    store.layers[0, heads[3], LAYER_INDEX["act_mean"]] = np.nan
    w = AttentionHeads()
    w.refresh(store)
    assert tuple(w.image.image[1, 1, :3]) == (255, 0, 255)
    assert "1 heads with non-finite entropy" in w.note.text()


def test_sessions_without_head_units_have_no_layout():
    units = transformer_units(3)  # a transformer session written before the head units
    s = Session(len(units), {"model": "transformer", "depth": 3, "heads": 4}, units=units)
    assert head_layout(s) == ([], 0, 0) and not AttentionHeads.applies_to(s)
    assert not AttentionHeads.applies_to(Session(4, {}, units=mlp_units(4)))


@pytest.mark.parametrize("wide", [False, True])
def test_the_panel_shows_the_heads_plot_only_for_a_run_with_heads(qtbot, wide):
    host = QWidget()
    qtbot.addWidget(host)
    host.resize(1600, 700)
    panel = PlotPanel(host)
    host.show()
    panel.resize(NARROW_PX + 300 if wide else NARROW_PX - 200, 600)
    qtbot.waitUntil(lambda: panel.narrow is (not wide))
    mlp = Session(4, {}, units=mlp_units(4))
    mlp.append(StepRecord(0, np.zeros(len(STEP_METRICS)), np.ones((4, len(LAYER_METRICS)), np.float32), True))
    panel.refresh(mlp)
    tab_titles = lambda: [panel.tabs.tabText(i) for i in range(panel.tabs.count())]
    assert not panel.heads.isVisible() and HEADS_TAB not in tab_titles()
    store = _store(depth=4, heads=4, n=2)
    panel.refresh(store)
    if wide:
        assert panel.heads.isVisible() and panel.splitters[1].indexOf(panel.heads) == 3
        # the depth profile and saturation keep their share: the heads plot once took what they had left
        top = panel.splitters[1]
        qtbot.waitUntil(lambda: min(top.sizes()[1:]) > 0.6 * max(top.sizes()[1:]))
    else:
        assert tab_titles()[-1] == HEADS_TAB
        panel.tabs.setCurrentWidget(panel.heads)
        assert panel.heads.isVisible()
    assert panel.heads.values.shape == (4, 4) and panel.heads.step == 0
    panel.refresh(mlp)  # back to a run without heads: the plot goes away
    assert not panel.heads.isVisible() and HEADS_TAB not in tab_titles()
