"""The window with the transformer family: the builder shows heads, norm position and warm-up
for transformers only (a width the heads do not divide is refused with the engine's message),
the post-ln / pre-ln presets start in the window and train, and the heatmap shows stream units
by default, block units on request (readable at depth 24)."""
from __future__ import annotations

import numpy as np
import pytest

from gradsim.config import RunConfig
from gradsim.teaching.presets import load_preset

WAIT_MS = 120_000


def test_the_transformer_fields_show_for_transformers_only(qtbot):
    from ui.panels.builder import BuilderPanel

    b = BuilderPanel()
    qtbot.addWidget(b)
    for name in ("heads", "norm_position", "warmup_steps"):
        assert getattr(b, name).isHidden(), name
    b.width.setValue(30)
    b.model.setCurrentText("transformer")  # as a student picks it
    assert not b.heads.isHidden() and not b.norm_position.isHidden() and not b.warmup_steps.isHidden()
    cfg = b.config()
    assert cfg is not None, b.error()
    assert cfg.model == "transformer" and 30 % cfg.heads == 0  # the default 4 heads do not divide 30: the most that do
    b.width.setValue(32)
    b.heads.setValue(3)
    assert b.config() is None and "heads = 3" in b.error() and "width = 32" in b.error() and "allowed: 1, 2, 4, 8" in b.error()
    b.heads.setValue(8)
    b.norm_position.setCurrentText("post")
    b.warmup_steps.setValue(150)
    cfg = b.config()
    assert (cfg.heads, cfg.norm_position, cfg.warmup_steps) == (8, "post", 150)
    b.model.setCurrentText("lstm")  # no warm-up there: the hidden field must not refuse the config
    assert b.heads.isHidden() and b.warmup_steps.isHidden() and b.config() is not None, b.error()


def test_a_transformer_config_round_trips(qtbot):
    from ui.panels.builder import BuilderPanel

    b = BuilderPanel()
    qtbot.addWidget(b)
    cfg = RunConfig(model="transformer", dataset="recall-first", seq_len=6, depth=3, width=24, heads=6,
                    norm_position="post", warmup_steps=40, steps=50)
    b.set_config(cfg)
    assert b.config() == cfg


@pytest.mark.parametrize("name", ["post-ln", "pre-ln"])
def test_the_transformer_presets_start_and_train_in_the_window(window, qtbot, name):
    p = window.builder.apply_preset(name)
    assert window.builder.config() == p.config == load_preset(name).config
    assert window.start_run(paused=True)
    for _ in range(3):
        window.step_once()
    qtbot.waitUntil(lambda: window.mirror is not None and window.mirror.steps_run >= 3, timeout=WAIT_MS)
    store = window.mirror
    kinds = [u.kind for u in store.units]
    assert kinds.count("stream") == p.config.depth + 1 and kinds.count("block") == 2 * p.config.depth
    window.plots.ensure_built()
    window.plots.refresh(store, force=True)
    assert window.plots.heatmap.metric_name == "act_grad_norm"  # the preset's view
    assert {store.units[i].kind for i in window.plots.heatmap._rows} == {"stream"}


def _transformer_store(depth=24, heads=8, n=10):
    import numpy as np

    from gradsim.metrics import LAYER_METRICS, STEP_METRICS
    from gradsim.models.family import transformer_units
    from gradsim.session.store import Session, StepRecord

    units = transformer_units(depth)
    s = Session(len(units), {"model": "transformer", "depth": depth, "width": 8 * heads, "heads": heads, "seq_len": 8}, units=units)
    rng = np.random.default_rng(1)
    for i in range(n):
        layers = (10.0 ** rng.uniform(-4, 1, (len(units), len(LAYER_METRICS)))).astype(np.float32)
        s.append(StepRecord(i, np.zeros(len(STEP_METRICS)), layers, True))
    return s


def test_the_heatmap_shows_stream_units_by_default_and_block_units_on_request(qtbot):
    import numpy as np

    from ui.plots.heatmap import GradientHeatmap

    store = _transformer_store()
    h = GradientHeatmap()
    qtbot.addWidget(h)
    h.resize(900, 500)
    h.set_metric("act_grad_norm")
    h.refresh(store)
    assert not h.unit_combo.isHidden()
    streams = [i for i, u in enumerate(store.units) if u.kind == "stream"]
    blocks = [i for i, u in enumerate(store.units) if u.kind == "block"]
    assert h._rows == streams and len(streams) == 25
    want = np.log10(store.layer_metric("act_grad_norm")[:, streams].astype(np.float64)).T
    np.testing.assert_allclose(h._val[:, : len(store)], want, rtol=1e-5)
    ticks = h.plot.getAxis("left")._tickLevels[0]
    assert len(ticks) <= 13 and ticks[0][1] == "1" and ticks[-1][1] == "25"  # readable at depth 24: numbers, titled
    assert h.plot.getAxis("left").labelText.startswith("residual stream")
    h.set_unit_kind("block")
    assert h._rows == blocks and len(blocks) == 48
    names = [t[1] for t in h.plot.getAxis("left")._tickLevels[0]]
    assert len(names) <= 13 and names[0] == "attn 1" and names[-1] == "mlp 24" and h.plot.getAxis("left").labelText.startswith("sublayer")
    want = np.log10(store.layer_metric("act_grad_norm")[:, blocks].astype(np.float64)).T
    np.testing.assert_allclose(h._val[:, : len(store)], want, rtol=1e-5)
    with pytest.raises(ValueError, match="'token'"):
        h.set_unit_kind("token")


def test_the_heatmap_offers_no_unit_choice_for_a_recurrent_run(qtbot):
    from ui.plots.heatmap import GradientHeatmap
    from tests.ui.test_recurrent_window import _recurrent_store

    h = GradientHeatmap()
    qtbot.addWidget(h)
    h.set_metric("act_grad_norm")
    h.refresh(_recurrent_store())
    assert h.unit_combo.isHidden()


def test_the_depth_profile_follows_the_heatmaps_unit_kind(qtbot):
    import numpy as np

    from ui.plots.panel import PlotPanel

    store = _transformer_store(depth=4, heads=2)
    panel = PlotPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 600)
    panel.set_metric("act_grad_norm")
    panel.refresh(store, force=True)
    streams = [i for i, u in enumerate(store.units) if u.kind == "stream"]
    blocks = [i for i, u in enumerate(store.units) if u.kind == "block"]
    dp = panel.depth_profile
    assert dp._rows == streams  # never stream and sublayer ticks on one axis
    np.testing.assert_allclose(dp.values, store.layer_metric("act_grad_norm")[-1, streams].astype(np.float64))
    panel.heatmap.set_unit_kind("block")
    panel.refresh(store, force=True)
    assert dp._rows == blocks
    np.testing.assert_allclose(dp.values, store.layer_metric("act_grad_norm")[-1, blocks].astype(np.float64))


def test_the_saturation_plot_counts_the_mlp_sublayers_only(qtbot):
    """Attention sublayers keep attention statistics in their act_* cells (act_dead: the lowest head's
    entropy); drawn as "dead" they showed attn blocks 90-100 % dead. The plot draws the MLP units."""
    from gradsim.teaching.presets import load_preset
    from gradsim.train.trainer import Trainer
    from ui.plots.activations import ActivationStats

    t = Trainer(load_preset("post-ln").config.with_changes(steps=12, stats_every=5))
    t.run()
    act = ActivationStats()
    qtbot.addWidget(act)
    act.refresh(t.session)
    mlp = [j for j, u in enumerate(t.session.units) if u.name.startswith("mlp ")]
    last = int(np.flatnonzero(t.session.has_stats)[-1])
    np.testing.assert_array_equal(act.dead, t.session.layer_metric("act_dead")[last, mlp])
    np.testing.assert_array_equal(act.saturation, t.session.layer_metric("act_saturation")[last, mlp])
