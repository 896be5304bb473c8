"""The depth profile of a transformer run says the Xiong et al. reference in words: the Pre-LN
law at initialisation, and that it does not apply to trained weights."""
from __future__ import annotations

from gradsim.config import RunConfig
from gradsim.train.trainer import Trainer
from gradsim.transformer_reference import reference_at
from ui.plots.depth_profile import DepthProfile


def test_the_note_carries_the_reference_words_at_init_and_after_training(qtbot):
    cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=4, depth=2, width=16, heads=2, n_samples=64, batch_size=16,
                    steps=3, stats_every=1, optimizer="adam", lr=1e-3, norm_position="pre")
    s = Trainer(cfg).run()
    dp = DepthProfile()
    qtbot.addWidget(dp)
    dp.set_metric("grad_norm")
    dp.refresh(s)
    dp.show_step(0)
    assert reference_at(s, 0).words in dp.note.text() and "1/sqrt(L)" in dp.note.text()
    dp.show_step(2)
    assert "derived for weights at initialisation; by step 2" in dp.note.text()
    dp.set_metric("act_grad_norm")
    assert "Xiong" not in dp.note.text()
