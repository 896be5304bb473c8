"""The window with the transformer family: the builder shows heads, norm position and warm-up
for transformers only (a width the heads do not divide is refused with the engine's message),
and the post-ln / pre-ln presets start in the window and train, their plots over stream units."""
from __future__ import annotations

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
    window.plots.refresh(store, force=True)
    drawn = [store.units[i].kind for i in window.plots.heatmap._rows]
    assert "stream" in drawn
