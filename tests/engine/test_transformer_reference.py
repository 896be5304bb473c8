"""The transformer's reference line (Xiong et al. 2020): a level line through the measured block
gradients of a Pre-LN run at initialisation or right after a re-init, and words instead of a line
for Post-LN and for trained weights; nothing for other families."""
import math

import numpy as np

from gradsim.commands import parse_event
from gradsim.config import RunConfig
from gradsim.transformer_reference import reference_at
from gradsim.train.trainer import Trainer


def _session(norm="pre", events=(), steps=4, depth=3):
    cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=4, depth=depth, width=16, heads=2, n_samples=64, batch_size=16,
                    steps=steps, stats_every=1, optimizer="adam", lr=1e-3, norm_position=norm)
    t = Trainer(cfg, [parse_event(e) for e in events])
    t.run()
    return t.session


def test_pre_ln_at_init_gets_a_level_line_through_the_block_gradients():
    s = _session(depth=3)
    ref = reference_at(s, 0)
    names = [s.units[i].name for i in ref.rows]
    assert names == ["attn 1", "mlp 1", "attn 2", "mlp 2", "attn 3", "mlp 3"]
    g = [float(s.layer_metric("grad_norm")[0, i]) for i in ref.rows]
    geo = math.exp(sum(math.log(v) for v in g) / len(g))
    np.testing.assert_allclose(ref.line, [geo] * 6, rtol=1e-12)
    assert "1/sqrt(L) = 0.58" in ref.words and "d = 16" in ref.words
    assert f"{math.log10(max(g) / min(g)):.2f} decades" in ref.words


def test_trained_weights_and_post_ln_get_words_instead_of_a_line():
    s = _session()
    later = reference_at(s, 2)
    assert later.line is None and "initialisation" in later.words and "step 2" in later.words
    post = reference_at(_session("post"), 0)
    assert post.line is None and "Post-LN" in post.words and "norm=pre" in post.words


def test_events_move_the_reference_a_reinit_gives_a_line_again_a_norm_switch_words():
    s = _session("post", events=["2:norm=pre", "3:init=xavier_normal"], steps=5)
    assert reference_at(s, 0).line is None  # Post-LN
    assert reference_at(s, 2).line is None  # Pre-LN now, but the weights were trained
    assert reference_at(s, 3).line is not None  # fresh weights under Pre-LN
    assert reference_at(s, 4).line is None


def test_other_families_and_bad_rows_get_none():
    t = Trainer(RunConfig(depth=3, width=8, steps=1))
    t.run()
    assert reference_at(t.session, 0) is None
    assert reference_at(_session(), 99) is None
