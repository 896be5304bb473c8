"""The recurrent presets' lessons, each asserted from the session data on every seed tried
(a story that holds for one lucky draw only is no lesson). Sizes are the presets' own."""

import numpy as np
import pytest

from gradsim.teaching.presets import load_preset
from gradsim.train.trainer import Trainer

SEEDS = (0, 1, 2)
#: The adding problem's target is the sum of two U[0,1] draws: predicting its mean (1)
#: scores the variance, 2/12. A loss well below it means the marked numbers were read.
MEAN_PREDICTOR_MSE = 2.0 / 12.0


def _run(name, seed, steps=None, **changes):
    p = load_preset(name)
    cfg = p.config.with_changes(seed=seed, **changes)
    if steps is not None:
        assert steps <= p.config.steps  # the story must show within the preset's default steps
        cfg = cfg.with_changes(steps=steps)
    t = Trainer(cfg, p.events)
    t.run()
    return p, t.session, t


def _signal_through_time(session, row=0):
    """||dL/dh_t|| for t = 1..T at one row (the time units, in order)."""
    rows = [i for i, u in enumerate(session.units) if u.kind == "time"]
    return session.layer_metric("act_grad_norm")[row, rows].astype(np.float64)


def test_the_presets_are_recurrent_runs_with_time_units():
    for name in ("vanishing-rnn", "exploding-rnn", "clipping-rescue-rnn", "irnn", "lstm-remembers"):
        p = load_preset(name)
        assert p.config.recurrent and p.view_metric == "act_grad_norm"


@pytest.mark.parametrize("seed", SEEDS)
def test_vanishing_rnn(seed):
    """W_hh at spectral radius ~0.7 with tanh: the signal reaching the first step is < 1e-6 of
    the last step's, and the first token's sign stays unlearned (held-out accuracy near 50%)."""
    p, s, t = _run("vanishing-rnn", seed)
    g = _signal_through_time(s)
    assert g.size == p.config.seq_len
    assert g[0] / g[-1] < 1e-6
    assert np.all(np.diff(np.log(g[: p.config.seq_len - 1])) > 0)  # shrinking at every step back in time
    assert abs(t.evaluate() - 0.5) < 0.1
    assert t.diverged_at is None


@pytest.mark.parametrize("seed", SEEDS)
def test_exploding_rnn(seed):
    """Spectral radius ~2.5: the signal grows back through time (h_1 gets > 100x what h_T gets)
    and plain SGD's loss jumps up by 3x or more, again and again, until it goes non-finite."""
    p, s, t = _run("exploding-rnn", seed)
    g = _signal_through_time(s)
    assert g[0] / g[-1] > 100
    assert t.diverged_at is not None and t.diverged_at < 100
    loss = s.column("loss").astype(np.float64)[: t.diverged_at]
    jumps = np.flatnonzero(loss[1:] > 3 * loss[:-1])
    assert jumps.size >= 2, loss


@pytest.mark.parametrize("seed", SEEDS)
def test_clipping_rescue_rnn(seed):
    """The exploding start with the norm clipped at 1: identical step-0 gradients, then every
    step finite, the applied norm capped, and the loss down several-fold to about the mean
    predictor's, where the unclipped run diverged."""
    p, s, t = _run("clipping-rescue-rnn", seed)
    _, plain, tp = _run("clipping-rescue-rnn", seed, steps=100, clip_mode="none")
    np.testing.assert_array_equal(s.layer_metric("grad_norm")[0], plain.layer_metric("grad_norm")[0])
    assert tp.diverged_at is not None
    assert t.diverged_at is None and np.isfinite(s.column("loss")).all()
    assert s.column("clipped").mean() > 0.5
    assert np.all(s.column("grad_norm_applied") <= p.config.clip_threshold * (1 + 1e-5))
    loss = s.column("loss").astype(np.float64)
    assert loss[-30:].mean() < 0.5 * loss[:10].mean()
    assert loss[-30:].mean() < 2 * MEAN_PREDICTOR_MSE


@pytest.mark.parametrize("seed", SEEDS)
def test_irnn(seed):
    """Identity W_hh with relu: at the start the signal reaching h_1 is within a factor of 3 of
    the one at h_T (no vanishing, no explosion), and the net learns to add: the loss ends far
    below what predicting the mean scores."""
    p, s, t = _run("irnn", seed)
    g = _signal_through_time(s)
    assert 1 / 3 < g[0] / g[-1] < 3
    loss = s.column("loss").astype(np.float64)
    assert t.diverged_at is None
    assert loss[-50:].mean() < 0.3 * MEAN_PREDICTOR_MSE


@pytest.mark.parametrize("seed", SEEDS)
def test_lstm_remembers(seed):
    """The LSTM learns the adding problem at T = 40 (loss far below the mean predictor's); the
    tanh RNN with everything else the same stays near the mean predictor's loss."""
    p, s, t = _run("lstm-remembers", seed)
    _, rs, rt = _run("lstm-remembers", seed, model="rnn")
    lstm = s.column("loss").astype(np.float64)[-50:].mean()
    rnn = rs.column("loss").astype(np.float64)[-50:].mean()
    assert t.diverged_at is None and rt.diverged_at is None
    assert lstm < 0.3 * MEAN_PREDICTOR_MSE, lstm
    assert rnn > 0.6 * MEAN_PREDICTOR_MSE, rnn
