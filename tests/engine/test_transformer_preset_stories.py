"""The pre-ln and post-ln presets' lesson, asserted from the session data on every seed tried:
the two start from the same weights, and Post-LN's per-block gradient profile at initialisation
rises relative to Pre-LN's (the relative claim; neither preset promises an absolute rise).
Forking a post-ln run into Pre-LN at step 0 gives exactly the pre-ln preset's first rows."""

import numpy as np
import pytest
import torch

from gradsim.commands import SetNormPosition
from gradsim.teaching.presets import load_preset
from gradsim.train.fork import fork_trainer
from gradsim.train.trainer import Trainer

SEEDS = (0, 1, 2, 3, 4)


def _first_step(name, seed):
    t = Trainer(load_preset(name).config.with_changes(seed=seed, steps=1, stats_every=1))
    t.step()
    return t


def decades(values):
    """Least-squares change of log10(values) from the first index to the last."""
    y = np.log10(np.asarray(values, dtype=np.float64))
    x = np.arange(y.size)
    return float(np.polyfit(x, y, 1)[0] * (y.size - 1))


def block_profile(session, row=0):
    """Per block: the norm of its attention and MLP parameters' gradients taken together."""
    names = [u.name for u in session.units]
    g = session.layer_metric("grad_norm")[row].astype(np.float64)
    depth = sum(n.startswith("attn ") for n in names)
    return np.array([np.hypot(g[names.index(f"attn {i}")], g[names.index(f"mlp {i}")]) for i in range(1, depth + 1)])


def stream_profile(session, row=0):
    """||dL/dx_l|| entering blocks 1..depth."""
    rows = [i for i, u in enumerate(session.units) if u.kind == "stream"][:-1]
    return session.layer_metric("act_grad_norm")[row, rows].astype(np.float64)


def test_the_presets_differ_only_in_where_the_norms_sit():
    pre, post = load_preset("pre-ln"), load_preset("post-ln")
    assert (pre.config.norm_position, post.config.norm_position) == ("pre", "post")
    assert pre.config.with_changes(norm_position="post") == post.config
    assert pre.view_metric == post.view_metric == "act_grad_norm"  # the stream units the heatmap opens on
    a, b = Trainer(pre.config), Trainer(post.config)
    wa, wb = dict(a.net.named_parameters()), dict(b.net.named_parameters())
    assert wa.keys() == wb.keys() and all(torch.equal(wa[n], wb[n]) for n in wa)  # the same start
    assert torch.equal(a.batch(0)[0], b.batch(0)[0])


@pytest.mark.parametrize("seed", SEEDS)
def test_post_ln_rises_relative_to_pre_ln_at_init(seed):
    pre, post = _first_step("pre-ln", seed).session, _first_step("post-ln", seed).session
    assert decades(block_profile(post)) - decades(block_profile(pre)) > 0.1
    assert decades(stream_profile(post)) - decades(stream_profile(pre)) > 0.1
    assert decades(block_profile(pre)) < 0  # Pre-LN's per-block gradient falls toward the output
    assert np.isfinite(post.layer_metric("act_grad_norm")[0]).any()


def test_a_fork_into_pre_ln_is_the_pre_ln_preset_from_the_same_start():
    a = Trainer(load_preset("post-ln").config.with_changes(steps=2, stats_every=1))
    b = fork_trainer(a)
    b.apply(SetNormPosition("pre"))
    a.step(), b.step()
    pre = _first_step("pre-ln", load_preset("pre-ln").config.seed).session
    np.testing.assert_array_equal(b.session.layer_metric("grad_norm")[0], pre.layer_metric("grad_norm")[0])
    np.testing.assert_array_equal(b.session.layer_metric("act_grad_norm")[0], pre.layer_metric("act_grad_norm")[0])
    assert decades(block_profile(a.session)) > decades(block_profile(b.session))
