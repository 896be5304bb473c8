"""Mean-field predictions vs closed forms and vs the engine's measured step-0 values."""
import math

import numpy as np
import pytest
import torch

from gradsim.config import RunConfig
from gradsim.teaching.presets import load_preset, preset_names
from gradsim.theory.jacobian import jacobian_spectrum
from gradsim.theory.mean_field import predict
from gradsim.theory.quadrature import dphi as _dphi, expect_dphi2, expect_phi2, gauss_expect, phi as _phi
from gradsim.train.trainer import Trainer


ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "selu", "linear")
Q_GRID = np.logspace(-8, 6, 15)


def _scipy_expect(fn, q):
    """E[fn(h)^2], h ~ N(0, q), by scipy.integrate.quad in u = h / sqrt(q), with breakpoints
    at the kink (0) and at the activation's own scale (|h| = 0.5 ... 16): independent of
    gradsim.theory.quadrature."""
    from scipy import integrate

    s = math.sqrt(q)

    def g(u):
        return float(fn(np.array([s * u]))[0]) ** 2 * math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)

    pts = sorted({0.0} | {c / s for c in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0) if c / s < 39.0})
    edges = [-39.0] + [-p for p in reversed(pts) if p > 0] + pts + [39.0]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        total += integrate.quad(g, a, b, epsabs=0.0, epsrel=1e-11, limit=400)[0]
    return total


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_expectations_match_scipy_quad_over_q_1e_minus8_to_1e6(activation):
    slope = 0.01
    phi2 = expect_phi2(activation, Q_GRID, slope)
    dphi2 = expect_dphi2(activation, Q_GRID, slope)
    for i, q in enumerate(Q_GRID):
        assert phi2[i] == pytest.approx(_scipy_expect(_phi(activation, slope), q), rel=1e-6), (activation, q)
        assert dphi2[i] == pytest.approx(_scipy_expect(_dphi(activation, slope), q), rel=1e-6), (activation, q)
    # scalar in, scalar out
    assert isinstance(expect_dphi2(activation, 1.0, slope), float)


def test_expectations_the_fixed_rule_got_wrong():
    """The values once measured wrong with 121-node Gauss-Hermite (tanh at large q, selu's jump)."""
    # E[tanh'(h)^2] at large q ~ (4/3) / sqrt(2 pi q): the peak of width ~1 under a wide Gaussian
    for q in (256.0, 1e4, 1e6):
        assert expect_dphi2("tanh", q) == pytest.approx(4 / 3 / math.sqrt(2 * math.pi * q), rel=2e-2 if q < 1e3 else 1e-3)
    # selu: lambda^2 on the right, lambda^2 alpha^2 e^{2h} on the left; as q -> 0 the mean of the two
    lam, alp = 1.0507009873554805, 1.6732632423543772
    assert expect_dphi2("selu", 1e-8) == pytest.approx(0.5 * lam**2 * (1 + alp**2), rel=1e-3)


def test_closed_forms():
    assert gauss_expect(lambda x: x**2, 2.5) == pytest.approx(2.5, rel=1e-9)
    assert gauss_expect(lambda x: np.maximum(x, 0) ** 2, 3.0) == pytest.approx(1.5, rel=1e-9)
    assert expect_phi2("relu", 3.0) == 1.5 and expect_dphi2("relu", 3.0) == 0.5
    assert expect_phi2("leaky_relu", 2.0, 0.1) == pytest.approx(1.01)
    # E[tanh'(h)^2] at tiny variance -> 1 (linear regime)
    assert expect_dphi2("tanh", 1e-8) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("activation, factor", [("linear", 1.0), ("relu", 0.5), ("leaky_relu", (1 + 0.01**2) / 2)])
def test_chi_closed_forms(activation, factor):
    t = Trainer(RunConfig(depth=6, width=128, activation=activation, init="he_normal"))
    p = predict(t.net)
    # chi_l = sigma_w^2 (of layer l+1, read from the weights) * E[phi'^2], exact for these
    np.testing.assert_allclose(p.chi[:-1], p.sigma_w2[1:] * factor, rtol=1e-10)
    assert np.isnan(p.chi[-1])


def _measured_and_predicted(cfg, seed):
    t = Trainer(cfg.with_changes(seed=seed))
    x0 = t._x[t._perm[: cfg.batch_size]]  # the batch step 0 will draw
    pred = predict(t.net, x=x0)  # before the step: the weights the step-0 row measures
    rec = t.step()
    g = rec.layer_metric("act_grad_norm").astype(np.float64)
    d = cfg.depth
    measured = g[: d - 1] / g[1:d]  # transitions through square hidden weights
    # the trainer records the same prediction itself (pred_gain of step 0)
    np.testing.assert_allclose(rec.layer_metric("pred_gain")[:-1], pred.gain[:-1], rtol=1e-6)
    return measured, pred.gain[: d - 1], pred


def _log_gain_error(cfg, seeds):
    """Mean over hidden transitions and seeds of log(measured gain) - log(predicted gain), at step 0."""
    errs = []
    for seed in seeds:
        measured, predicted, _ = _measured_and_predicted(cfg, seed)
        errs.append(float(np.mean(np.log(measured) - np.log(predicted))))
    return float(np.mean(errs))


def _finite_width_sd(cfg, pred, k):
    """Standard deviation of the mean of k per-transition log gains at width n.

    One transition's squared gain is ||W^T g||^2 (chi-square: relative variance 2/n)
    times the mean over n units of phi'(h)^2 (relative variance r/n, with
    r = E[phi'^4] / E[phi'^2]^2 - 1 at the layer's q): sd of the log gain
    sqrt((2 + r) / n) / 2, and 1/sqrt(k) of that for the mean of k.
    """
    fn = _dphi(cfg.activation, cfg.leaky_slope)
    q = float(np.nanmedian(pred.q[:-1]))
    e2 = gauss_expect(lambda x: fn(x) ** 2, q)
    e4 = gauss_expect(lambda x: fn(x) ** 4, q)
    r = e4 / e2**2 - 1
    return math.sqrt((2 + r) / cfg.width) / 2 / math.sqrt(k)


# Width 256, 3 seeds, 11 transitions each; the tolerance is 5 finite-width sd.
GAIN_CASES = [
    ("tanh", "xavier_normal", {}),
    ("sigmoid", "xavier_normal", {}),
    ("tanh", "normal", {"init_std": 0.2}),
    ("tanh", "normal", {"init_std": 1.0 / 16}),  # normal:1.0 at width 64 has sigma_w^2 = 64: chaotic
    ("sigmoid", "normal", {"init_std": 1.0 / 16}),
    ("relu", "he_normal", {}),
    ("leaky_relu", "he_normal", {}),
    ("elu", "lecun_normal", {}),
    ("selu", "lecun_normal", {}),
    ("gelu", "he_normal", {}),
    ("tanh", "orthogonal", {}),
]


@pytest.mark.parametrize("activation, init, extra", GAIN_CASES)
def test_prediction_matches_measured_gains(activation, init, extra):
    cfg = RunConfig(depth=12, width=256, activation=activation, init=init, **extra)
    seeds = (0, 1, 2)
    err = _log_gain_error(cfg, seeds)
    _, _, pred = _measured_and_predicted(cfg, 0)
    sd = _finite_width_sd(cfg, pred, (cfg.depth - 1) * len(seeds))
    assert abs(err) < 5 * sd, (err, sd)


@pytest.mark.parametrize("activation, init", [("relu", "he_normal"), ("tanh", "xavier_normal"), ("sigmoid", "xavier_normal")])
def test_batchnorm_prediction_within_5_percent(activation, init):
    """Batch norm makes gradients grow at initialisation, even for sigmoid (Yang et al. 2019):
    the predicted per-layer gain (geometric mean over the hidden transitions, over seeds)
    is within 5 % of the measured one at width 256, batch 128, and says 'grows'."""
    cfg = RunConfig(depth=12, width=256, batch_size=128, activation=activation, init=init, batchnorm=True)
    log_meas, log_pred = [], []
    for seed in (0, 1, 2):
        measured, predicted, _ = _measured_and_predicted(cfg, seed)
        log_meas.append(np.mean(np.log(measured)))
        log_pred.append(np.mean(np.log(predicted)))
    gm, gp = math.exp(np.mean(log_meas)), math.exp(np.mean(log_pred))
    assert gm > 1.1 and gp > 1.1  # exploding, not vanishing, under batch norm
    assert gp == pytest.approx(gm, rel=0.05)


def test_model_out_of_range_says_so_in_words():
    narrow = Trainer(RunConfig(depth=4, width=4))
    p = predict(narrow.net, x=narrow._x[:32])
    assert not p.applies and "narrow" in p.reason and np.isnan(p.gain).all()
    bn = Trainer(RunConfig(depth=4, width=32, batchnorm=True))
    p = predict(bn.net)  # batch norm needs the batch
    assert not p.applies and "batch" in p.reason
    with torch.no_grad():
        bn.net.linears[1].weight[0, 0] = float("inf")
    p = predict(bn.net, x=bn._x[:32])
    assert not p.applies and "not finite" in p.reason
    # where it does apply, no reason
    assert predict(Trainer(RunConfig(depth=4, width=32)).net).applies


@pytest.mark.parametrize("name", [n for n in preset_names() if load_preset(n).config.model == "mlp"])  # the MLP theory
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


def _state(net):
    """Every parameter and buffer (batch norm's running statistics, num_batches_tracked),
    bit for bit, and every module's train/eval flag."""
    tensors = {k: v.detach().clone() for k, v in net.state_dict(keep_vars=True).items()}
    grads = {k: (None if p.grad is None else p.grad.clone()) for k, p in net.named_parameters()}
    modes = {k: m.training for k, m in net.named_modules()}
    return tensors, grads, modes


def _assert_same_state(a, b):
    assert a[0].keys() == b[0].keys()
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]) and a[0][k].dtype == b[0][k].dtype, k
    assert a[1].keys() == b[1].keys() and all((a[1][k] is None) == (b[1][k] is None) for k in a[1])
    assert a[2] == b[2]


@pytest.mark.parametrize("train_mode", [True, False])
def test_prediction_and_jacobian_leave_the_network_bit_identical(train_mode):
    """predict, predicted_for, jacobian_spectrum, the trainer's pred_gain and evaluate()
    read the live network: with batch norm on, no parameter, running statistic or
    train/eval flag may change (once, one Jacobian call moved accuracy 0.425 -> 0.383)."""
    from gradsim.theory.mean_field import predicted_for

    t = Trainer(RunConfig(depth=6, width=32, activation="tanh", batchnorm=True, steps=10))
    t.run(steps=3)  # running statistics away from their initial values
    t.net.train(train_mode)
    before = _state(t.net)
    acc = t.evaluate()
    predict(t.net, x=t._x[:64])
    predicted_for(t, 0.5)
    t.predicted_gain(t._x[:64])
    jacobian_spectrum(t.net, t._x[:8])
    _assert_same_state(before, _state(t.net))
    assert t.evaluate() == acc


def test_theory_needs_no_scipy_at_run_time():
    """scipy is a test-only dependency (the installer ships without it): predictions,
    including gelu's erf and batch norm's path, run with scipy never imported."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gradsim.config import RunConfig\n"
        "from gradsim.train.trainer import Trainer\n"
        "for act, bn in (('gelu', False), ('sigmoid', True), ('selu', False)):\n"
        "    Trainer(RunConfig(depth=3, width=16, activation=act, batchnorm=bn, steps=2)).run()\n"
        "assert 'scipy' not in sys.modules, 'scipy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("model", ["rnn", "lstm", "transformer"])
def test_the_jacobian_task_on_a_sequence_run_says_what_it_is_for(model):
    """The Jacobian dock on a recurrent or transformer run said "'RecurrentNet' object has no attribute
    'linears'"; it says in words that the spectrum is an MLP's and where the sequence run's signal is."""
    from gradsim.config import RunConfig
    from gradsim.service.tasks import jacobian
    from gradsim.train.trainer import Trainer

    extra = {"heads": 2, "dataset": "recall-last"} if model == "transformer" else {"dataset": "adding"}
    t = Trainer(RunConfig(model=model, seq_len=6, depth=1, width=8, n_samples=64, batch_size=16, steps=2, **extra))
    with pytest.raises(ValueError, match=f"computed for MLP runs.*this is a {model} run"):
        jacobian(t)
