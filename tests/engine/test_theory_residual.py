"""Theory for residual connections and layer norm, against measured step-0 gains,
closed forms and autograd."""
import copy
import math

import numpy as np
import pytest
import torch

from gradsim.config import RunConfig
from gradsim.theory.jacobian import jacobian_spectrum
from gradsim.theory.mean_field import predict
from gradsim.train.trainer import Trainer


def _measured_and_predicted(cfg, seed):
    t = Trainer(cfg.with_changes(seed=seed))
    x0 = t._x[t._perm[: cfg.batch_size]]  # the batch step 0 draws
    pred = predict(t.net, x=x0)
    rec = t.step()
    g = rec.layer_metric("act_grad_norm").astype(np.float64)
    d = cfg.depth
    np.testing.assert_allclose(rec.layer_metric("pred_gain")[:-1], pred.gain[:-1], rtol=1e-6)  # recorded as data
    return g[: d - 1] / g[1:d], pred.gain[: d - 1], pred


CASES = [
    dict(residual=True, activation="relu", init="he_normal"),
    dict(residual=True, activation="tanh", init="xavier_normal"),
    dict(residual=True, residual_alpha=1.0, activation="tanh", init="xavier_normal"),
    dict(layernorm=True, activation="tanh", init="xavier_normal"),
    dict(layernorm=True, activation="relu", init="he_normal"),
    dict(layernorm=True, activation="sigmoid", init="xavier_normal"),
    dict(layernorm=True, residual=True, activation="relu", init="he_normal"),
    dict(batchnorm=True, residual=True, activation="relu", init="he_normal"),
]


@pytest.mark.parametrize("changes", CASES)
def test_prediction_matches_measured_step0_gains(changes):
    """Geometric-mean gain over 11 hidden transitions x 3 seeds at width 256.

    Tolerance from finite-width statistics: one transition's log gain has sd
    sqrt((2 + r)/n)/2 with r = E[phi'^4]/E[phi'^2]^2 - 1 <= 1 for these activations
    (relu: exactly 1), so the mean of k = 33 has sd <= sqrt(3/256)/2/sqrt(33) = 0.0094;
    4 sd = 3.8 %. (A residual block's log gain has sd ~ alpha sqrt(chi/n), from the
    cross term of the skip and the branch: below the bound for alpha < 1, about it at 1.)"""
    cfg = RunConfig(depth=12, width=256, **changes)
    lm, lp = [], []
    for seed in (0, 1, 2):
        m, p, pred = _measured_and_predicted(cfg, seed)
        assert pred.applies, pred.reason
        lm.append(np.mean(np.log(m)))
        lp.append(np.mean(np.log(p)))
    assert abs(np.mean(lm) - np.mean(lp)) < 4 * math.sqrt(3 / 256) / 2 / math.sqrt(33)


def test_residual_linear_closed_form():
    """phi' = 1: each residual block's predicted squared gain is exactly 1 + alpha^2 sigma_w^2
    (sigma_w^2 of the next block's weights, read here from the weights themselves)."""
    t = Trainer(RunConfig(depth=6, width=32, activation="linear", init="xavier_normal", residual=True, residual_alpha=0.5))
    pred = predict(t.net, x=t.probe_inputs(64))
    s2 = np.array([w.shape[1] * float((w.detach().double() ** 2).mean()) for w in t.net.weights()])
    np.testing.assert_allclose(pred.chi[: 6 - 1], 1 + 0.25 * s2[1:6], rtol=1e-10)
    assert pred.chi[5] == pytest.approx(s2[6], rel=1e-10)  # last hidden -> output: no skip


def test_residual_100_layer_relu_physics_matches_theory():
    """The issue's example: measured ratio ||dL/dz_2|| / ||dL/dz_100|| at step 0 against the
    prediction (mean-field: (1 + 1/100)^(98/2) ~ 1.63).

    Tolerance: a block's squared gain is 1 + 2 alpha c + alpha^2 chi, where the cross term
    c = g.W^T D g / |g|^2 has mean 0 and variance ~ chi/n; so each block's log gain has sd
    ~ alpha sqrt(chi/n), and the 98 blocks together alpha sqrt(98 chi/n) ~ sqrt(1/n) (chi = 1,
    alpha^2 = 1/100): 0.0625 at width 256. 3 sd."""
    cfg = RunConfig(depth=100, width=256, activation="relu", init="he_normal", residual=True)
    for seed in (0, 1):
        t = Trainer(cfg.with_changes(seed=seed))
        pred = predict(t.net, x=t._x[t._perm[: cfg.batch_size]])
        g = t.step().layer_metric("act_grad_norm").astype(np.float64)
        measured = g[1] / g[99]
        predicted = float(np.prod(pred.gain[1:99]))
        assert abs(math.log(measured / predicted)) < 3 * math.sqrt(1 / 256), (measured, predicted)
        assert 1.3 < predicted < 2.0 and measured < 10


def test_layernorm_prediction_at_batch_size_one():
    t = Trainer(RunConfig(depth=5, width=64, layernorm=True, batch_size=1, activation="tanh"))
    pred = predict(t.net, x=t.probe_inputs(1))
    assert pred.applies and np.all(np.isfinite(pred.gain[:-1]))


def _autograd_sv(net, x, residual):
    """Independent: autograd through the live module's own forward (eval-free: no batch norm here)."""
    out = []
    for s in range(x.shape[0]):
        def f(v):
            if residual:  # stream z_1 -> z_depth
                z = v
                for l in range(net.depth - 1):
                    h = net._fns[l](net.lnorms[l](z) if net.has_layernorm else z)
                    z = z + net.residual_alpha * net.linears[l + 1](h)
                return z
            h = v
            for l in range(1, net.depth):
                a = net.linears[l](h)
                h = net._fns[l](net.lnorms[l](a) if net.has_layernorm else a)
            return h
        with torch.no_grad():
            z1 = net.linears[0](x[s : s + 1])
            start = z1 if residual else net._fns[0](net.lnorms[0](z1) if net.has_layernorm else z1)
        j = torch.autograd.functional.jacobian(f, start)[0, :, 0, :]
        out.append(torch.linalg.svdvals(j.double()).numpy())
    return np.stack(out)


@pytest.mark.parametrize("changes", [dict(residual=True), dict(layernorm=True), dict(residual=True, layernorm=True)])
def test_jacobian_spectrum_of_residual_and_layernorm_nets_matches_autograd(changes):
    t = Trainer(RunConfig(depth=6, width=16, activation="tanh", **changes))
    x = t.probe_inputs(3)
    before = copy.deepcopy(t.net.state_dict())
    sv = jacobian_spectrum(t.net, x)
    ref = _autograd_sv(t.net, x, t.net.residual)
    np.testing.assert_allclose(np.sort(sv, axis=1), np.sort(ref, axis=1), rtol=1e-4, atol=1e-6)
    for k, v in t.net.state_dict().items():
        assert torch.equal(v, before[k])
