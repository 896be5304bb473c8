"""The vanilla RNN's theory-domain verdict: in domain at a random draw, out for the identity
and for exploding-rnn's blown-up W_hh, and recorded in steps.csv."""
import dataclasses
import math

import numpy as np
import pytest

from gradsim.config import RunConfig
from gradsim.metrics import LAYER_INDEX
from gradsim.teaching.presets import load_preset
from gradsim.theory_verdicts import session_verdicts, verdict_at
from gradsim.train.trainer import Trainer

PRED, SIGNAL = LAYER_INDEX["pred_gain"], LAYER_INDEX["act_grad_norm"]


@pytest.mark.parametrize("G", [0.8, 1.0, 1.5])
def test_a_random_draw_is_in_domain_and_the_prediction_within_10_percent(G):
    T = 50
    t = Trainer(RunConfig(model="rnn", dataset="adding", seq_len=T, depth=1, width=256, batch_size=64, steps=1,
                          recurrent_init=f"normal:{G}"))
    rec = t.step()
    v = verdict_at(t.session, 0)
    assert v is not None and v.in_domain and v.reason == "", v
    g = rec.layers[:T, SIGNAL].astype(np.float64)
    p = rec.layers[: T - 2, PRED].astype(np.float64)
    m = g[: T - 2] / g[1 : T - 1]
    assert v.gain_error == pytest.approx(math.exp(np.mean(np.log(m / p))), rel=1e-9)
    assert abs(m.mean() / p.mean() - 1) < 0.10 and abs(v.gain_error - 1) < 0.10
    flag, err = session_verdicts(t.session)
    assert flag[0] == 1.0 and err[0] == pytest.approx(v.gain_error)


def test_the_identity_init_is_out_of_domain():
    cfg = dataclasses.replace(load_preset("irnn").config, steps=1)
    t = Trainer(cfg)
    t.step()
    v = verdict_at(t.session, 0)
    assert v is not None and not v.in_domain and v.reason == "identity"
    assert "identity" in v.words()
    assert session_verdicts(t.session)[0][0] == 0.0


def test_exploding_rnn_after_the_blow_up_is_out_of_domain():
    cfg = dataclasses.replace(load_preset("exploding-rnn").config, stats_every=10, steps=40)
    t = Trainer(cfg)
    while t.step() is not None:
        pass
    s = t.session
    first = verdict_at(s, 0)
    assert first is not None and first.in_domain  # the draw itself is the theory's case
    last = max(i for i in range(len(s)) if np.isfinite(s.layers[i, 0, PRED]))
    v = verdict_at(s, last)
    assert v is not None and not v.in_domain and v.reason in ("scale", "dead", "gain"), v
    wn = s.layers[:, cfg.seq_len + 1, LAYER_INDEX["weight_norm"]]
    assert v.scale_change == pytest.approx(float(wn[last]) / float(wn[0]))
    assert "no theory line" in v.words()


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("G", [0.8, 1.0, 1.5])
def test_the_draw_is_in_domain_over_seeds(G, seed):
    T = 50
    t = Trainer(RunConfig(model="rnn", dataset="adding", seq_len=T, depth=1, width=256, batch_size=64, steps=1,
                          recurrent_init=f"normal:{G}", seed=seed))
    rec = t.step()
    v = verdict_at(t.session, 0)
    assert v is not None and v.in_domain, v
    g = rec.layers[:T, SIGNAL].astype(np.float64)
    p = rec.layers[: T - 2, PRED].astype(np.float64)
    assert abs((g[: T - 2] / g[1 : T - 1]).mean() / p.mean() - 1) < 0.10
    assert v.drawn_error == pytest.approx(v.gain_error)  # the row is the draw: no drift by construction


def test_the_prediction_is_for_the_weights_that_made_the_row():
    """pred_gain of a row is the theory at the weights before that step's update (those whose
    gradient the row measured), as the MLP trainer records it."""
    from gradsim.theory.rnn_mean_field import predict_time_gains

    cfg = RunConfig(model="rnn", dataset="adding", seq_len=20, depth=1, width=32, batch_size=16, n_samples=200, steps=2,
                    lr=0.5, recurrent_init="normal:1.5")
    t = Trainer(cfg)
    x, _ = t.batch(0)
    before = predict_time_gains(t.net, x)
    rec = t.step()
    after = predict_time_gains(t.net, x)
    assert np.allclose(rec.layers[:20, PRED], before.astype(np.float32), equal_nan=True)
    assert not np.allclose(before[:-1], after[:-1], rtol=1e-3)  # the update did move the prediction


def _rows(m_per_step, p, T):
    """act_grad_norm of a profile anchored at 1 at h_T whose per-step ratio is ``m_per_step``."""
    g = np.ones(T)
    for t in range(T - 2, -1, -1):
        g[t] = g[t + 1] * m_per_step[t]
    return g, np.concatenate([p, [np.nan]])


def test_a_change_from_the_draw_beyond_the_per_step_scatter_is_drift():
    from gradsim.theory_domain_rnn import judge_time

    T, n = 40, 64
    rng = np.random.default_rng(3)
    p = np.full(T - 1, 0.8)
    s2 = 1.0  # ||W_hh||^2 / n: E[phi'^2] = p^2 / s2, so r = 1 / 0.64 - 1 for tanh (|phi'| <= 1)
    var = (2 + (1 / 0.64 - 1)) / (4 * n)
    k = T - 2
    tol = 5 * math.sqrt(var / k + var / k)  # two rows' independent per-step scatter, Z = 5
    offset = 0.1  # the draw's own offset per step (one shared W_hh), well inside Z * sd of one step
    noise = rng.normal(0, math.sqrt(var), T - 1)
    noise -= noise[:k].mean()
    drawn = _rows(p * np.exp(offset + noise), p, T)
    for shift, inside in ((0.5 * tol, True), (-0.5 * tol, True), (1.5 * tol, False), (-1.5 * tol, False)):
        g, pp = _rows(p * np.exp(offset + shift + noise), p, T)
        v = judge_time(g, pp, n, "tanh", math.sqrt(s2 * n), math.sqrt(s2 * n), "normal:0.8", drawn, 0)
        assert v is not None
        assert v.drift_tolerance == pytest.approx(tol, rel=1e-6)
        assert math.log(v.gain_error / v.drawn_error) == pytest.approx(shift, abs=1e-9)
        assert v.in_domain == inside and v.reason == ("" if inside else "drift"), (shift, v)
        if not inside:
            assert "changed how W_hh acts" in v.words() and "step 0" in v.words()
    # without the draw's row there is nothing to compare with: only the absolute test applies
    assert judge_time(g, pp, n, "tanh", math.sqrt(s2 * n), math.sqrt(s2 * n), "normal:0.8").in_domain


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adam_on_vanishing_rnn_drifts_out_of_domain_before_its_scale_moves(seed):
    """Adam reshapes W_hh within 100 steps: the measured gain per step moves away from the draw's by
    more than the per-step scatter allows, while ||W_hh|| is still within 1/sqrt(width) of its draw."""
    cfg = dataclasses.replace(load_preset("vanishing-rnn").config, optimizer="adam", lr=0.01, steps=101, seed=seed)
    t = Trainer(cfg)
    t.run()
    s = t.session
    T, n = cfg.seq_len, cfg.width
    row = int(np.flatnonzero(s.steps == 100)[0])
    v = verdict_at(s, row)
    assert v is not None and not v.in_domain and v.reason == "drift", v
    assert abs(v.scale_change - 1) <= 1 / math.sqrt(n)

    def mean_err(i):
        g = s.layers[i, :T, SIGNAL].astype(np.float64)
        p = s.layers[i, : T - 2, PRED].astype(np.float64)
        return float(np.mean(np.log(g[: T - 2] / g[1 : T - 1]) - np.log(p)))

    drift = mean_err(row) - mean_err(0)
    assert abs(drift) > v.drift_tolerance
    assert math.log(v.gain_error / v.drawn_error) == pytest.approx(drift, rel=1e-6)
    first = verdict_at(s, 0)
    assert first is not None and first.in_domain
