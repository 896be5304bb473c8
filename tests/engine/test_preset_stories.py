"""Each preset is a lesson: its story shows within its default steps (asserted here from
the session data, on the first part of the run where the story already holds)."""

import numpy as np

from gradsim.teaching.presets import load_preset, preset_names
from gradsim.train.trainer import Trainer

STORY_TESTS = {
    "vanishing-sigmoid", "healthy-relu-he", "deep-tanh-xavier", "exploding-relu", "clipping-rescue", "batchnorm-rescue",
    # the recurrent presets' stories: tests/engine/test_rnn_preset_stories.py
    "vanishing-rnn", "exploding-rnn", "clipping-rescue-rnn", "irnn", "lstm-remembers",
}


def _run(name, steps, **changes):
    p = load_preset(name)
    assert steps <= p.config.steps  # the story must show within the preset's default steps
    t = Trainer(p.config.with_changes(steps=steps, **changes), p.events)
    t.run()
    return p, t.session, t


def _gains(session, row, depth):
    """Measured per-layer gains ||dL/dz_l|| / ||dL/dz_(l+1)|| over the hidden transitions at one row."""
    g = session.layer_metric("act_grad_norm")[row].astype(np.float64)
    return g[: depth - 1] / g[1:depth]


def _geo(x):
    return float(np.exp(np.mean(np.log(x))))


def test_every_preset_has_a_story_test():
    assert set(preset_names()) == STORY_TESTS


def test_vanishing_sigmoid():
    """The backprop signal shrinks ~4x per layer: layer 1 gets < 1e-6 of the last hidden layer's,
    so the layers near the input barely move while the last ones learn."""
    p, s, _ = _run("vanishing-sigmoid", 60)
    d = p.config.depth
    ag = s.layer_metric("act_grad_norm")[0]
    assert ag[0] / ag[d - 1] < 1e-6
    assert _geo(_gains(s, 0, d)) < 0.5
    ur = s.layer_metric("update_ratio")
    assert ur[:, 0].mean() < 1e-6 * ur[:, d - 1].mean()
    assert np.isfinite(s.column("loss")).all()


def test_healthy_relu_he():
    """He init keeps the signal's size across depth (per-layer gain ~1) and the loss falls."""
    p, s, _ = _run("healthy-relu-he", 300)
    d = p.config.depth
    assert 0.85 < _geo(_gains(s, 0, d)) < 1.15
    ag = s.layer_metric("act_grad_norm")[0]
    assert 0.1 < ag[0] / ag[d - 1] < 10
    loss = s.column("loss")
    assert loss[-50:].mean() < 0.7 * loss[:50].mean()


def test_deep_tanh_xavier():
    """30 tanh layers with Xavier: a slow decay (gain a little below 1) and the net still trains."""
    p, s, _ = _run("deep-tanh-xavier", 300)
    d = p.config.depth
    gain = _geo(_gains(s, 0, d))
    assert 0.9 < gain < 1.0
    ag = s.layer_metric("act_grad_norm")[0]
    assert 1e-3 < ag[0] / ag[d - 1] < 1.0
    loss = s.column("loss")
    assert loss[-50:].mean() < 0.95 * loss[:50].mean()


def test_exploding_relu():
    """The signal grows > 1.5x per layer (layer 1's gradient ~10^4 times the output's) for the
    whole run; the loss stays finite but jumps: the huge updates overshoot again and again."""
    p, s, t = _run("exploding-relu", 300)
    d = p.config.depth
    assert _geo(_gains(s, 0, d)) > 1.5
    ag = s.layer_metric("act_grad_norm")
    assert ag[0, 0] / ag[0, d] > 1e3
    assert _geo(_gains(s, 250, d)) > 1.3  # still exploding, not a one-step event
    loss = s.column("loss").astype(np.float64)
    assert t.diverged_at is None and np.isfinite(loss).all() and len(loss) >= 50
    jumps = np.flatnonzero(loss[2:] > 3 * loss[1:-1])  # after the first step
    assert jumps.size >= 2, loss


def test_clipping_rescue():
    """Same start (same seed, weights and batches): without clipping the run diverges within a
    few steps; clipping the gradient norm at 1 keeps every step finite and the net learns."""
    p, clipped, tc = _run("clipping-rescue", 150)
    _, plain, tp = _run("clipping-rescue", 150, clip_mode="none")
    # the same start: identical gradients at step 0
    np.testing.assert_array_equal(clipped.layer_metric("grad_norm")[0], plain.layer_metric("grad_norm")[0])
    assert clipped.column("grad_norm_total")[0] > 10 * p.config.clip_threshold
    assert tp.diverged_at is not None and tp.diverged_at < 20
    assert tc.diverged_at is None and np.isfinite(clipped.column("loss")).all()
    assert clipped.column("clipped")[:50].mean() > 0.5
    loss = clipped.column("loss")
    assert loss[-30:].mean() < 0.5 * loss[0]
    assert np.all(clipped.column("grad_norm_applied") <= p.config.clip_threshold * (1 + 1e-5))


def test_batchnorm_rescue():
    """Vanishing sigmoid net until batch norm comes on at step 300: then the early layers wake
    up (the gradient reaching layer 1 grows by orders of magnitude, and so do its updates)."""
    p, s, _ = _run("batchnorm-rescue", 305)
    d = p.config.depth
    (on,) = [e.step for e in s.events if e.kind == "batchnorm"]
    assert on == 300
    ag = s.layer_metric("act_grad_norm").astype(np.float64)
    before, after = ag[on - 1], ag[on]
    assert before[0] / before[d - 1] < 1e-6
    assert after[0] / after[d - 1] > 1e-2
    ur = s.layer_metric("update_ratio").astype(np.float64)
    assert ur[on:, 0].mean() > 1e6 * ur[on - 50 : on, 0].mean()
    # and the recorded prediction turns from vanishing to growing at the event
    pg = s.layer_metric("pred_gain").astype(np.float64)
    assert np.nanmean(pg[on - 10, : d - 1]) < 0.5 < 1.0 < _geo(pg[on, : d - 1])


def test_exploding_relu_rescue_the_tip_gives_learns_on_every_seed():
    """What to try says: re-init with he_normal and raise the learning rate. At the preset's lr
    (2e-5, small enough for the exploded net) a re-initialised net barely moves; with lr 0.01
    it learns the spiral (held-out accuracy) on every seed tried."""
    from gradsim.commands import Reinit, Scheduled, SetLR

    p = load_preset("exploding-relu")
    rescue = (Scheduled(200, Reinit("he_normal")), Scheduled(200, SetLR(0.01)))
    for seed in (0, 1, 2):
        cfg = p.config.with_changes(seed=seed)
        t = Trainer(cfg, rescue)
        t.run()
        assert t.diverged_at is None and t.evaluate() >= 0.95, (seed, t.evaluate())
    frozen = Trainer(p.config, (Scheduled(200, Reinit("he_normal")),))  # the re-init alone, at lr 2e-5
    frozen.run()
    assert frozen.evaluate() < 0.6
