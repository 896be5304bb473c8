"""The fork lesson reads in the window: a post-ln run forked at step 0 into Pre-LN on branch B.
The depth profile names each branch by where its norms sit, draws B wide and dashed and says
what to read in the two curves; the heatmap's log10 B/A spans one decade for a transformer
(the norms move a block's gradient by a few times), a million times for an MLP."""
from __future__ import annotations

import numpy as np

from gradsim.commands import SetNormPosition
from gradsim.config import RunConfig
from gradsim.train.fork import fork_trainer
from gradsim.train.trainer import Trainer
from ui.plots.branch_b import B_WIDTH
from ui.plots.depth_profile import DepthProfile
from ui.plots.heatmap import RATIO_SPAN, TRANSFORMER_RATIO_SPAN, GradientHeatmap
from ui.plots.panel import ratio_session


def _forked():
    cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=4, depth=3, width=16, heads=2, n_samples=64, batch_size=16,
                    steps=4, stats_every=1, optimizer="adam", lr=1e-3, norm_position="post")
    a = Trainer(cfg)
    b = fork_trainer(a)
    b.apply(SetNormPosition("pre"))
    a.run()
    b.run()
    return a.session, b.session


def test_the_depth_profile_names_the_branches_by_their_norms_and_says_the_lesson(qtbot):
    a, b = _forked()
    dp = DepthProfile()
    qtbot.addWidget(dp)
    dp.set_metric("grad_norm")
    dp.set_compare(b)
    dp.refresh(a)
    dp.show_step(0)
    assert [e[1] for e in dp.legend._entries][:2] == ["A (post-LN)", "B (pre-LN)"]
    assert dp.curve_b.opts["pen"].width() == B_WIDTH > dp.curve.opts["pen"].width()
    note = dp.note.text()
    assert note.startswith("A (post-LN) vs B (pre-LN) on the same weights") and "fork the run" not in note
    # B's values are B's own row at that step (the lesson is their difference)
    np.testing.assert_array_equal(dp.values_b, dp._shown(b.layer_metric("grad_norm")[0].astype(np.float64)))
    assert not np.array_equal(dp.values_b, dp.values)
    dp.show_step(2)  # trained weights: the reference's own words again
    assert "no reference line at step 2" in dp.note.text()
    dp.set_compare(None)
    dp.refresh(a)
    dp.show_step(0)
    assert [e[1] for e in dp.legend._entries][:1] == ["measured"] and "fork the run" in dp.note.text()


def test_the_ratio_heatmap_spans_one_decade_for_a_transformer(qtbot):
    a, b = _forked()
    hm = GradientHeatmap()
    qtbot.addWidget(hm)
    hm.set_metric("grad_norm")
    hm.set_forked(True)
    hm.refresh(a)
    hm.set_branch("ratio")
    hm.refresh(ratio_session(a, b))
    assert hm.levels == (-TRANSFORMER_RATIO_SPAN, TRANSFORMER_RATIO_SPAN) == (-1.0, 1.0)
    hm.set_branch("A")
    assert hm.levels != (-1.0, 1.0)
    mlp = Trainer(RunConfig(dataset="moons", n_samples=120, depth=2, width=8, batch_size=16, steps=2)).run()
    hm.refresh(mlp)
    hm.set_branch("ratio")
    hm.refresh(mlp)
    assert hm.levels == (-RATIO_SPAN, RATIO_SPAN) == (-6.0, 6.0)
