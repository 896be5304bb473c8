"""Mean-field predictions vs closed forms and vs the engine's measured step-0 values."""
import math

import numpy as np
import pytest
import torch

from gradsim.config import RunConfig
from gradsim.presets import load_preset, preset_names
from gradsim.theory import gauss_expect, jacobian_spectrum, predict
from gradsim.trainer import Trainer


def test_quadrature_closed_forms():
    assert gauss_expect(lambda x: x**2, 2.5) == pytest.approx(2.5, rel=1e-12)
    assert gauss_expect(lambda x: np.maximum(x, 0) ** 2, 3.0) == pytest.approx(1.5, rel=1e-12)
    # E[tanh'(h)^2] at tiny variance -> 1 (linear regime)
    assert gauss_expect(lambda x: (1 - np.tanh(x) ** 2) ** 2, 1e-8) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("activation, factor", [("linear", 1.0), ("relu", 0.5), ("leaky_relu", (1 + 0.01**2) / 2)])
def test_chi_closed_forms(activation, factor):
    t = Trainer(RunConfig(depth=6, width=128, activation=activation, init="he_normal"))
    p = predict(t.net)
    # chi_l = sigma_w^2 (of layer l+1, read from the weights) * E[phi'^2], exact for these
    np.testing.assert_allclose(p.chi[:-1], p.sigma_w2[1:] * factor, rtol=1e-10)
    assert np.isnan(p.chi[-1])


def test_batchnorm_resets_the_variance():
    # (BN's backward batch coupling is not modelled, see predict(); only the forward reset is checked.)
    t = Trainer(RunConfig(depth=5, width=32, activation="tanh", init="normal", init_std=1.0, batchnorm=True))
    p = predict(t.net)
    np.testing.assert_allclose(p.q[:-1], 1.0)  # gamma = 1, beta = 0 at insertion


def _log_gain_error(cfg, seeds):
    """Mean over hidden transitions and seeds of log(measured gain) - log(predicted gain), at step 0."""
    errs = []
    for seed in seeds:
        t = Trainer(cfg.with_changes(seed=seed))
        x0 = t._x[t._perm[: cfg.batch_size]]  # the batch step 0 will draw
        pred = predict(t.net, x=x0)  # before the step: the weights the step-0 row measures
        g = t.step().layer_metric("act_grad_norm").astype(np.float64)
        d = cfg.depth
        measured = np.log(g[: d - 1] / g[1:d])  # transitions through square hidden weights
        errs.append(float(np.mean(measured - 0.5 * np.log(pred.chi[: d - 1]))))
    return float(np.mean(errs))


# Finite-width tolerance, as in test_physics: one transition's log gain has sd
# about sqrt(3/n)/2; the mean of k transitions over s seeds has sd
# sqrt(3/n)/2/sqrt(k s). At n = 128, k = 11, s = 3: 0.013; 5 sigma ~ 0.07.
@pytest.mark.parametrize(
    "activation, init, extra",
    [
        ("tanh", "xavier_normal", {}),
        ("sigmoid", "xavier_normal", {}),
        ("tanh", "normal", {"init_std": 0.2}),
        ("relu", "he_normal", {}),
        ("elu", "lecun_normal", {}),
        ("gelu", "he_normal", {}),
        ("tanh", "orthogonal", {}),
    ],
)
def test_prediction_matches_measured_gains(activation, init, extra):
    cfg = RunConfig(depth=12, width=128, activation=activation, init=init, **extra)
    assert abs(_log_gain_error(cfg, (0, 1, 2))) < 0.07


@pytest.mark.parametrize("name", preset_names())
def test_overlay_matches_presets_at_step_zero(name):
    preset = load_preset(name)
    t = Trainer(preset.config)
    g0 = None
    pred_net = predict(t.net, x=t._x[t._perm[: preset.config.batch_size]])
    rec = t.step()
    g0 = rec.layer_metric("act_grad_norm").astype(np.float64)
    pred = pred_net.act_grad_norm * g0[-1]
    d = preset.config.depth
    # width 64: per-transition log sd ~ sqrt(3/64)/2 = 0.11; the whole profile from
    # layer depth+1 down to layer 1 accumulates d transitions: sd 0.11 sqrt(d).
    # Allow 4 sd at every layer (the profiles span up to 13 decades).
    k = np.arange(d + 1, 0, -1) - 1  # transitions between layer l and the anchor
    tol = 4 * 0.11 * np.sqrt(np.maximum(k, 1))
    assert np.all(np.abs(np.log(g0) - np.log(pred)) <= tol), (np.log10(g0), np.log10(pred))


def test_jacobian_spectrum_isometry():
    lin_orth = Trainer(RunConfig(depth=20, width=32, activation="linear", init="orthogonal"))
    sv = jacobian_spectrum(lin_orth.net, lin_orth._x[:4])
    assert sv.shape == (4, 32)
    np.testing.assert_allclose(sv, 1.0, atol=1e-5)  # a product of orthogonal matrices
    lin_gauss = Trainer(RunConfig(depth=20, width=32, activation="linear", init="xavier_normal"))
    sg = jacobian_spectrum(lin_gauss.net, lin_gauss._x[:4])
    # Products of 19 Gaussian matrices: the smallest singular values collapse (Saxe 2013).
    assert sg.max() / sg.min() > 1e6
    tanh_orth = Trainer(RunConfig(depth=20, width=32, activation="tanh", init="orthogonal"))
    st = jacobian_spectrum(tanh_orth.net, tanh_orth._x[:4])
    assert np.median(st) > 0.3 and st.max() <= 1.0 + 1e-6  # tanh' <= 1: contraction, but well-conditioned bulk


def test_jacobian_matches_autograd():
    t = Trainer(RunConfig(depth=5, width=8, activation="tanh", init="xavier_normal"))
    x = t._x[:1]
    with torch.no_grad():
        _, _, hs = t.net.forward_capture(x)
    h1 = hs[0].detach().clone().requires_grad_(True)

    def rest(h):
        for l in range(1, t.net.depth):
            h = torch.tanh(t.net.linears[l](h))
        return h

    jac = torch.autograd.functional.jacobian(rest, h1)[0, :, 0, :].double()
    np.testing.assert_allclose(jacobian_spectrum(t.net, x)[0], torch.linalg.svdvals(jac).numpy(), rtol=1e-4, atol=1e-7)
