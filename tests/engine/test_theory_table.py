"""The prediction's tabulated expectations (a prediction used to cost a
training step) against the quadrature they tabulate, against scipy's quad, and the
whole prediction against the same recursion run on the quadrature itself."""
import numpy as np
import pytest
import torch

from gradsim.theory import mean_field as theory
from gradsim.config import RunConfig
from gradsim.theory.mean_field import predict
from gradsim.theory.quadrature import dphi as _dphi, expect_both, expect_both_fast, phi as _phi
from gradsim.train.trainer import Trainer

from .test_theory import _scipy_expect

TABULATED = ("sigmoid", "tanh", "elu", "gelu", "selu")
ALL = TABULATED + ("relu", "leaky_relu", "linear")


@pytest.mark.parametrize("activation", ALL)
def test_table_equals_quadrature_over_q_1e_minus8_to_1e6(activation):
    rng = np.random.default_rng(3)
    q = np.concatenate([np.exp(rng.uniform(np.log(1e-8), np.log(1e6), 3000)), [1e-8, 1e6, 1.0, 2.0]])
    a, b = expect_both_fast(activation, q, 0.1)
    ea, eb = expect_both(activation, q, 0.1)
    # interpolation error of the cubic in ln q on a 1/32 grid: ~3e-9 at worst
    np.testing.assert_allclose(a, ea, rtol=1e-8, atol=0)
    np.testing.assert_allclose(b, eb, rtol=1e-8, atol=0)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("activation", TABULATED)
def test_table_matches_scipy_quad_between_grid_points(activation):
    q = np.array([3.3e-8, 0.0123, 0.77, 1.9, 37.0, 4.1e3, 9.7e5])
    a, b = expect_both_fast(activation, q)
    for i, qi in enumerate(q):
        assert a[i] == pytest.approx(_scipy_expect(_phi(activation, 0.01), qi), rel=1e-6)
        assert b[i] == pytest.approx(_scipy_expect(_dphi(activation, 0.01), qi), rel=1e-6)


@pytest.mark.parametrize("activation", TABULATED)
def test_outside_the_table_falls_back_to_quadrature(activation):
    q = np.array([0.0, 1e-12, 3e-9, 0.5, 2e6, 1e9, np.inf, np.nan])
    a, b = expect_both_fast(activation, q)
    ea, eb = expect_both(activation, q)
    inside = (q >= 1e-8) & (q <= 1e6)
    # the quadrature itself, NaN included (on its own grid for these q: round-off apart)
    np.testing.assert_allclose(a[~inside], ea[~inside], rtol=1e-12)
    np.testing.assert_allclose(b[~inside], eb[~inside], rtol=1e-12)
    np.testing.assert_allclose(a[inside], ea[inside], rtol=1e-8)


def _quadrature_pair(name, q, slope=0.01):
    a, b = expect_both(name, q, slope)
    return np.asarray(a, np.float64), np.asarray(b, np.float64)


@pytest.mark.parametrize(
    "activation,init,std",
    [("tanh", "xavier_normal", 0.05), ("tanh", "normal", 1.0), ("sigmoid", "xavier_normal", 0.05), ("gelu", "he_normal", 0.05),
     ("selu", "lecun_normal", 0.05), ("elu", "normal", 3.0), ("relu", "he_normal", 0.05)],
)
def test_prediction_from_the_table_equals_the_quadrature_recursion(activation, init, std, monkeypatch):
    """The recorded pred_gain (float32) is the same whether the recursion reads the table
    or runs the quadrature per layer and sample (elu with normal std 3 explodes past the table)."""
    t = Trainer(RunConfig(depth=20, width=64, batch_size=128, activation=activation, init=init, init_std=std, steps=3, seed=2))
    x, _ = t._batch()
    fast = predict(t.net, anchor=0.7, x=x)
    monkeypatch.setattr(theory, "_expect_pair", _quadrature_pair)
    slow = predict(t.net, anchor=0.7, x=x)
    assert fast.reason == slow.reason == ""
    np.testing.assert_allclose(fast.gain, slow.gain, rtol=1e-8)
    np.testing.assert_allclose(fast.q, slow.q, rtol=1e-8)
    np.testing.assert_allclose(fast.act_grad_norm, slow.act_grad_norm, rtol=1e-7)
    monkeypatch.setattr(theory, "_expect_pair", expect_both_fast)
    rec = t.predicted_gain(x)
    np.testing.assert_allclose(rec, slow.gain.astype(np.float32), rtol=3e-7)


def test_sigma_w2_is_fan_in_times_weight_variance():
    t = Trainer(RunConfig(depth=5, width=64, steps=1, seed=0))
    p = predict(t.net, x=t.probe_inputs(32))
    ref = [w.shape[1] * float((w.detach().double() ** 2).mean()) for w in t.net.weights()]
    np.testing.assert_allclose(p.sigma_w2, ref, rtol=1e-12)
    with torch.no_grad():
        t.net.linears[2].weight[0, 0] = float("inf")
    assert "not finite" in predict(t.net, x=t.probe_inputs(32)).reason
