"""The mean-field gain through time of a vanilla RNN matches the measured one."""
import math

import numpy as np
import pytest
import torch

from gradsim.config import RunConfig
from gradsim.metrics import LAYER_INDEX
from gradsim.theory.rnn_mean_field import predict_time_gains
from gradsim.train.trainer import Trainer

PRED, SIGNAL = LAYER_INDEX["pred_gain"], LAYER_INDEX["act_grad_norm"]


@pytest.mark.parametrize("G", [0.8, 1.0, 1.5])
def test_predicted_gain_is_within_10_percent_of_the_measured_mean_gain(G):
    T = 50
    cfg = RunConfig(model="rnn", dataset="adding", seq_len=T, depth=1, width=256, batch_size=64, steps=1, recurrent_init=f"normal:{G}")
    t = Trainer(cfg)
    rec = t.step()
    g = rec.layers[:T, SIGNAL].astype(np.float64)
    measured = g[:-1] / g[1:]  # ||dL/dh_t|| / ||dL/dh_(t+1)||
    pred = rec.layers[:T, PRED].astype(np.float64)
    assert math.isnan(pred[-1]) and np.all(np.isnan(rec.layers[T:, PRED]))
    steps = slice(0, T - 2)  # the last ratio also carries the head's direct path into h_T
    m, p = measured[steps].mean(), pred[steps].mean()
    assert abs(p / m - 1) < 0.10, (G, m, p)
    # and the theory tells the regimes apart as the measurement does
    assert (p < 0.9) == (G == 0.8) and (p > 1.05) == (G == 1.5)


def test_the_variance_recursion_and_gains_match_an_independent_quadrature():
    """q_t = s2 E[tanh(z_(t-1))^2] + v_t and gain_t = sqrt(s2 E[tanh'(z_(t+1))^2]), by Gauss-Hermite here."""
    cfg = RunConfig(model="rnn", dataset="recall-first", seq_len=6, depth=1, width=64, recurrent_init="normal:1.3", init_std=0.8, init="normal")
    t = Trainer(cfg)
    x = t.probe_inputs(32)
    w_ih, w_hh, b_ih, b_hh = (p.detach().double() for p in t.net.layer_params(0))
    s2 = float((w_hh**2).sum()) / 64
    v = ((x.double() @ w_ih.T + b_ih + b_hh) ** 2).mean(dim=(0, 2)).numpy()
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    weights = weights / weights.sum()

    def mean(f, q):
        return float((weights * f(math.sqrt(q) * nodes)).sum())

    q = [v[0]]
    for k in range(1, 6):
        q.append(s2 * mean(lambda z: np.tanh(z) ** 2, q[-1]) + v[k])
    want = [math.sqrt(s2 * mean(lambda z: np.cosh(z) ** -4, qq)) for qq in q[1:]]
    np.testing.assert_allclose(predict_time_gains(t.net, x)[:-1], want, rtol=1e-6)


def test_relu_gain_is_sigma_w_over_root_two():
    cfg = RunConfig(model="rnn", activation="relu", dataset="adding", seq_len=5, depth=1, width=64, recurrent_init="normal:1.2")
    t = Trainer(cfg)
    s2 = float((t.net.layer_params(0)[1].detach().double() ** 2).sum()) / 64
    np.testing.assert_allclose(predict_time_gains(t.net, t.probe_inputs(8))[:-1], math.sqrt(s2 / 2), rtol=1e-12)


def test_no_theory_for_gated_cells_or_narrow_nets():
    for cfg in (RunConfig(model="lstm", dataset="adding", seq_len=5, depth=1, width=64),
                RunConfig(model="rnn", dataset="adding", seq_len=5, depth=1, width=8)):
        rec = Trainer(cfg).step()
        assert np.all(np.isnan(rec.layers[:, PRED]))


def test_a_stacked_rnn_predicts_for_its_top_layer():
    cfg = RunConfig(model="rnn", dataset="adding", seq_len=8, depth=2, width=64)
    t = Trainer(cfg)
    x = t.probe_inputs(16)
    gains = predict_time_gains(t.net, x)
    assert np.all(np.isfinite(gains[:-1])) and math.isnan(gains[-1])
    with torch.no_grad():
        t.net.layer_params(0)[0].mul_(0.0)  # the lower layer's output, hence the top's input, changes
    assert not np.allclose(predict_time_gains(t.net, x)[:-1], gains[:-1])
