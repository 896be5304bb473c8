"""The theory's domain: in domain at initialisation, out of it once training has moved the weights."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gradsim.metrics import LAYER_INDEX, STEP_METRICS
from gradsim.session.store import Event, Session
from gradsim.teaching.presets import load_preset, preset_names
from gradsim.theory_domain import Z, dphi2_at_unit_variance, dphi_max, judge
from gradsim.theory_verdicts import session_verdicts, verdict_at
from gradsim.train.trainer import Trainer


def _row(gains_measured, gains_pred, width, sigma_w2):
    """act_grad_norm, pred_gain, weight_norm of a depth-(k+1) net whose transitions have these gains."""
    k = len(gains_measured)
    agn = np.ones(k + 2)
    for l in range(k - 1, -1, -1):
        agn[l] = agn[l + 1] * gains_measured[l]
    pred = np.append(np.asarray(gains_pred, float), [np.nan, np.nan])  # the last transition and the output: not tested
    wn = np.full(k + 2, math.sqrt(sigma_w2 * width))  # ||W||^2 / n = sigma_w^2
    return agn, pred, wn


def test_relu_tolerance_is_the_finite_width_sd():
    """relu: r = 1 exactly (E[phi'^2] = E[phi'^4] = 1/2), so sd(ln gain) = sqrt(3 / n) / 2 per transition."""
    k, n = 19, 64
    p = math.sqrt(2.0 / 2)  # He: sigma_w^2 = 2, gain sqrt(2 * 1/2) = 1
    agn, pred, wn = _row([p] * k, [p] * k, n, 2.0)
    v = judge(agn, pred, wn, n, ["relu"] * (k + 1))
    assert v is not None and v.transitions == k
    sd = math.sqrt(3.0 / n) / 2
    assert v.tolerance == pytest.approx(Z * sd / math.sqrt(k), rel=1e-9)
    assert v.bias == pytest.approx(-3.0 / (4 * n), rel=1e-9)
    assert v.gain_error == pytest.approx(1.0) and v.in_domain and v.words() == ""


@pytest.mark.parametrize("factor, inside", [(1.0, True), (1.10, True), (1.14, False), (0.86, False), (1.25, False)])
def test_a_measured_gain_off_by_a_factor_per_layer(factor, inside):
    k, n = 19, 64
    agn, pred, wn = _row([factor] * k, [1.0] * k, n, 2.0)
    v = judge(agn, pred, wn, n, ["relu"] * (k + 1))
    assert v.gain_error == pytest.approx(factor, rel=1e-9)
    assert v.profile_error == pytest.approx(factor**k, rel=1e-9)
    # independently: |ln f + 3/(4n)| against 5 sd of the mean of k transitions
    assert v.in_domain is (abs(math.log(factor) + 3 / (4 * n)) <= 5 * math.sqrt(3 / n) / 2 / math.sqrt(k))
    assert v.in_domain is inside
    if not inside:
        assert "theory no longer applies" in v.words() and f"x{factor:.3g}" in v.words() and "width 64" in v.words()


def test_bound_on_the_excess_reads_e_dphi2_from_the_row():
    """tanh near saturation: E[phi'^2] = p^2 / sigma_w^2 = 0.25 gives r <= 1 / 0.25 - 1 = 3."""
    k, n = 9, 100
    agn, pred, wn = _row([1.0] * k, [math.sqrt(0.25 * 4.0)] * k, n, 4.0)  # sigma_w^2 = 4, E[phi'^2] = 1/4
    v = judge(agn, pred, wn, n, ["tanh"] * (k + 1))
    assert v.tolerance == pytest.approx(Z * math.sqrt(k * (2 + 3) / (4 * n)) / k, rel=1e-6)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu", "elu", "selu", "relu", "leaky_relu", "linear"])
def test_activation_constants_against_a_fine_grid(name):
    x = np.linspace(-12, 12, 480_001)
    h = 1e-5
    phi = {
        "tanh": np.tanh, "sigmoid": lambda t: 1 / (1 + np.exp(-t)), "relu": lambda t: np.maximum(t, 0),
        "leaky_relu": lambda t: np.where(t > 0, t, 0.01 * t), "linear": lambda t: t,
        "elu": lambda t: np.where(t > 0, t, np.expm1(np.minimum(t, 0))),
        "selu": lambda t: 1.0507009873554805 * np.where(t > 0, t, 1.6732632423543772 * np.expm1(np.minimum(t, 0))),
        "gelu": lambda t: 0.5 * t * (1 + np.vectorize(math.erf)(t / math.sqrt(2))),
    }[name]
    d = (phi(x + h) - phi(x - h)) / (2 * h)  # central differences (off by at most h at a kink)
    assert dphi_max(name) == pytest.approx(float(np.abs(d).max()), rel=1e-4)
    dens = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    assert dphi2_at_unit_variance(name) == pytest.approx(float(np.trapezoid(d * d * dens, x)), rel=1e-4)


def test_derivatives_are_the_activation_registrys():
    """theory_domain keeps a torch-free copy of phi'; it must be the registry's, for every name."""
    from gradsim.activations import NAMES, REGISTRY
    from gradsim.theory_domain import _dphi

    x = np.linspace(-9, 9, 2001)  # even count: no node at the kink 0
    for name in NAMES:
        for slope in (0.01, 0.2):
            np.testing.assert_allclose(_dphi(name, slope, x), REGISTRY[name].numpy_grad(slope)(x), rtol=1e-12, atol=1e-15)
    assert set(NAMES) <= set(_DPHI_NAMES)


_DPHI_NAMES = ("linear", "relu", "leaky_relu", "tanh", "sigmoid", "elu", "selu", "gelu")


def test_no_verdict_without_a_prediction_or_a_transition():
    agn, pred, wn = _row([1.0] * 3, [np.nan] * 3, 64, 2.0)
    assert judge(agn, pred, wn, 64, ["relu"] * 4) is None
    assert judge(np.ones(2), np.array([1.0, np.nan]), np.ones(2), 64, ["relu"]) is None  # depth 1
    agn, pred, wn = _row([1.0] * 3, [1.0] * 3, 8, 2.0)
    assert judge(agn, pred, wn, 8, ["relu"] * 4) is None  # narrower than the theory is made for


@pytest.mark.parametrize("name", [n for n in preset_names() if load_preset(n).config.model == "mlp"])  # the MLP theory
def test_every_preset_is_in_domain_at_step_zero(name):
    preset = load_preset(name)
    for seed in range(5):
        s = Trainer(preset.config.with_changes(seed=seed)).run(1)
        v = verdict_at(s, 0)
        assert v is not None and v.in_domain, (name, seed, v)
        # the gain error is the geometric mean of measured / predicted over the hidden transitions
        d = preset.config.depth
        g = s.layer_metric("act_grad_norm")[0].astype(np.float64)
        p = s.layer_metric("pred_gain")[0].astype(np.float64)
        assert v.gain_error == pytest.approx(float(np.exp(np.mean(np.log(g[: d - 1] / g[1:d] / p[: d - 1])))), rel=1e-9)


def _first_out(name, steps, seed=0):
    s = Trainer(load_preset(name).config.with_changes(seed=seed)).run(steps)
    flag, err = session_verdicts(s)
    tested = np.isfinite(flag)
    out = s.steps[tested & (flag == 0)]
    return s, flag, err, (int(out[0]) if out.size else None)


def test_healthy_relu_he_leaves_the_domain_by_step_500():
    s, flag, err, first = _first_out("healthy-relu-he", 501)
    assert flag[0] == 1.0
    assert first is not None and first <= 500
    row = int(np.flatnonzero(s.steps == 500)[0])
    assert flag[row] == 0.0 and err[row] > 1.12  # the measured gain grew past the prediction
    # rows with no recorded prediction get no verdict
    no_pred = ~np.isfinite(s.layer_metric("pred_gain")[:, 0])
    assert no_pred.any() and np.isnan(flag[no_pred]).all()


def test_deep_tanh_xavier_leaves_the_domain():
    s, flag, err, first = _first_out("deep-tanh-xavier", 1001)
    assert flag[0] == 1.0 and first is not None
    row = int(np.flatnonzero(s.steps == 1000)[0])
    assert flag[row] == 0.0 and verdict_at(s, row).profile_error > 10


def test_events_change_the_structure_the_rule_reads():
    """A batch-norm event switches the excess to unit variance; an activation event changes phi'."""
    n, k = 64, 5
    cfg = {"model": "mlp", "depth": k + 1, "width": n, "activation": "relu"}
    s = Session(k + 2, cfg)
    agn, pred, wn = _row([1.0] * k, [1.0] * k, n, 2.0)
    layers = np.full((k + 2, len(LAYER_INDEX)), np.nan, np.float32)
    layers[:, LAYER_INDEX["act_grad_norm"]] = agn
    layers[:, LAYER_INDEX["pred_gain"]] = pred
    layers[:, LAYER_INDEX["weight_norm"]] = wn
    from gradsim.session.store import StepRecord

    for step in (0, 10, 20):
        s.append(StepRecord(step, np.zeros(len(STEP_METRICS)), layers, True))
    s.events += [Event(10, "activation", "tanh"), Event(20, "batchnorm", "on")]
    tols = [verdict_at(s, i).tolerance for i in range(3)]
    r_relu = 1.0
    r_tanh = 1.0 / 0.5 - 1  # p^2 / sigma_w^2 = 1/2 read from the row, M = 1
    r_bn = 1.0 / dphi2_at_unit_variance("tanh") - 1
    for tol, r in zip(tols, (r_relu, r_tanh, r_bn)):
        assert tol == pytest.approx(Z * math.sqrt(k * (2 + r) / (4 * n)) / k, rel=1e-6)
