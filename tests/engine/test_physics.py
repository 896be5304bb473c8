"""The numbers GradSim shows, checked against independent computations and theory.

Every tolerance below is derived in its comment from the mathematics of the
check, not from what the code happened to print.
"""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradsim.config import RunConfig
from gradsim.train.trainer import Trainer
from tests.engine.fixed_batch import fixed_batch

# float32 arithmetic: norms of a few thousand terms agree to ~1e-6 relative;
# different summation orders (foreach vs. plain) stay well inside 1e-5.
RTOL = 1e-5


def _fixed_batch(trainer, n=64, seed=123):
    return fixed_batch(trainer, n, seed)


def _independent_grads(net, x, y):
    """Plain autograd on a copy of the net, with its own forward pass (not forward_capture)."""
    act = {
        "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": F.relu, "linear": lambda t: t,
        "leaky_relu": lambda t: F.leaky_relu(t, net.leaky_slope), "elu": F.elu, "gelu": F.gelu, "selu": F.selu,
    }
    h = x
    zs = []
    for i, lin in enumerate(net.linears):
        z = h @ lin.weight.T + lin.bias
        z.retain_grad()
        zs.append(z)
        if i < net.depth:
            a = net.norms[i](z) if net.has_batchnorm else z
            h = act[net.activations[i]](a)
    loss = F.cross_entropy(zs[-1], y)
    loss.backward()
    return loss, zs


@pytest.mark.parametrize(
    "changes",
    [
        dict(activation="tanh", init="xavier_normal"),
        dict(activation="relu", init="he_normal", batchnorm=True),
        dict(activation="sigmoid", init="orthogonal", dataset="digits"),
        dict(activation="gelu", init="lecun_normal", optimizer="adam", lr=0.01),
        dict(activation="relu", init="he_normal", optimizer="momentum", clip_mode="value", clip_threshold=0.01),
        dict(activation="elu", init="xavier_uniform", optimizer="sgd", clip_mode="norm", clip_threshold=0.1, lr=0.5),
    ],
)
def test_step_metrics_equal_autograd_and_parameter_deltas(changes):
    cfg = RunConfig(depth=5, width=24, steps=10, stats_every=1, **{"dataset": "spiral", **changes})
    t = Trainer(cfg)
    x, y = _fixed_batch(t)
    t.step()  # move away from the initial point so Adam moments etc. are non-trivial
    ref = copy.deepcopy(t.net)
    before = [w.detach().clone() for w in t.net.weights()]
    rec = t.step()
    loss, zs = _independent_grads(ref, x, y)

    assert rec.scalar("loss") == pytest.approx(loss.item(), rel=RTOL)
    gw = np.array([lin.weight.grad.norm().item() for lin in ref.linears])
    gb = np.array([lin.bias.grad.norm().item() for lin in ref.linears])
    gz = np.array([z.grad.norm().item() for z in zs])
    wn = np.array([w.norm().item() for w in before])
    np.testing.assert_allclose(rec.layer_metric("grad_norm"), gw, rtol=RTOL)
    np.testing.assert_allclose(rec.layer_metric("bias_grad_norm"), gb, rtol=RTOL)
    np.testing.assert_allclose(rec.layer_metric("act_grad_norm"), gz, rtol=RTOL)
    np.testing.assert_allclose(rec.layer_metric("weight_norm"), wn, rtol=RTOL)
    total = math.sqrt(sum(p.grad.norm().item() ** 2 for p in ref.parameters()))
    assert rec.scalar("grad_norm_total") == pytest.approx(total, rel=RTOL)
    if cfg.clip_mode == "none":
        assert rec.scalar("grad_norm_applied") == pytest.approx(total, rel=RTOL)

    deltas = np.array([(b - w.detach()).norm().item() for b, w in zip(before, t.net.weights())])
    # The update is a small difference of float32 numbers: its norm is exact to
    # ~1e-7 * ||W|| / ||dW|| relative; allow that on top of RTOL.
    tol = RTOL + 1e-6 * wn / np.maximum(deltas, 1e-30)
    assert np.all(np.abs(rec.layer_metric("update_norm") - deltas) <= tol * deltas + 1e-12)
    np.testing.assert_allclose(rec.layer_metric("update_ratio"), rec.layer_metric("update_norm") / wn, rtol=RTOL)


def test_activation_stats_match_the_batch():
    cfg = RunConfig(depth=4, width=32, activation="tanh", init="normal", init_std=1.0, stats_every=1)
    t = Trainer(cfg)
    x, y = _fixed_batch(t)
    ref = copy.deepcopy(t.net)
    rec = t.step()
    h = x
    for i in range(cfg.depth):
        h = torch.tanh(ref.linears[i](h))
        row = rec.layers[i]
        assert row[6] == pytest.approx(h.mean().item(), abs=1e-6)
        assert row[7] == pytest.approx(h.std().item(), rel=RTOL)
        assert row[8] == pytest.approx((h.abs() > 0.97).float().mean().item(), abs=1e-7)
    # std 1.0 with fan-in 32: from layer 3 on, q = 32 * E[tanh^2] ~ 25, so z has
    # sd ~5 and P(|z| > atanh(0.97) = 2.09) ~ 0.67: most units sit in the flat region.
    assert rec.layers[2:cfg.depth, 8].min() > 0.5


def test_dead_units_counted_for_relu():
    cfg = RunConfig(depth=3, width=16, activation="relu", init="he_normal", stats_every=1)
    t = Trainer(cfg)
    with torch.no_grad():  # make 4 of the 16 units of layer 2 dead for every input
        t.net.linears[1].weight[:4] = 0.0
        t.net.linears[1].bias[:4] = -1.0
    x, y = _fixed_batch(t)
    h2 = F.relu(t.net.linears[1](F.relu(t.net.linears[0](x)))).detach()
    rec = t.step()
    assert rec.layers[1, 9] == pytest.approx((h2 == 0).all(dim=0).float().mean().item())
    assert rec.layers[1, 9] >= 4 / 16


def test_stats_sampled_every_k_steps():
    t = Trainer(RunConfig(depth=3, width=8, steps=7, stats_every=3))
    t.run()
    s = t.session
    assert s.has_stats.tolist() == [True, False, False, True, False, False, True]
    assert np.isnan(s.layers[1, :, 6:]).all() and np.isfinite(s.layers[1, :, :6]).all()


# ------------------------------------------------------------------ clipping
def test_clip_by_norm_applies_exactly_the_threshold():
    thr = 0.05
    cfg = RunConfig(depth=6, width=32, activation="relu", init="he_normal", clip_mode="norm", clip_threshold=thr, lr=0.1)
    t = Trainer(cfg)
    before = [p.detach().clone() for p in t._params]
    rec = t.step()
    assert rec.scalar("grad_norm_total") > thr  # the check below is about real clipping
    assert rec.scalar("clipped") == 1.0
    assert rec.scalar("grad_norm_applied") == pytest.approx(thr, rel=1e-4)  # clip_coef uses total + 1e-6
    # Plain SGD: the whole update is lr * clipped gradient, so ||delta|| / lr is the applied norm.
    delta = math.sqrt(sum((b - p.detach()).norm().item() ** 2 for b, p in zip(before, t._params)))
    assert delta / cfg.lr == pytest.approx(thr, rel=1e-4)


def test_clip_by_value_bounds_every_component():
    thr = 1e-3
    cfg = RunConfig(depth=4, width=16, clip_mode="value", clip_threshold=thr, lr=1.0)
    t = Trainer(cfg)
    before = [p.detach().clone() for p in t._params]
    rec = t.step()
    biggest = max((b - p.detach()).abs().max().item() for b, p in zip(before, t._params)) / cfg.lr
    # before - after is rounded to float32 spacing at |W| <= 1: 6e-8 absolute.
    assert biggest <= thr + 1e-7
    assert rec.scalar("clipped") == 1.0
    assert rec.scalar("grad_norm_applied") < rec.scalar("grad_norm_total")
    delta = math.sqrt(sum((b - p.detach()).norm().item() ** 2 for b, p in zip(before, t._params)))
    assert delta / cfg.lr == pytest.approx(rec.scalar("grad_norm_applied"), rel=1e-4)


# ------------------------------------------------------------ depth physics
def _mean_log_gain(activation, init, width=256, depth=16, seeds=(0, 1, 2)):
    """Mean per-layer change of log ||dL/dz|| over the hidden layers at step 0."""
    slopes = []
    for seed in seeds:
        cfg = RunConfig(dataset="spiral", depth=depth, width=width, activation=activation, init=init, batch_size=128, seed=seed, steps=1)
        rec = Trainer(cfg).step()
        g = rec.layer_metric("act_grad_norm")[:depth].astype(np.float64)  # hidden layers 1..depth
        # log(g_1 / g_depth) / (depth - 1): each of the depth-1 transitions goes through a square W.
        slopes.append(math.log(g[0] / g[depth - 1]) / (depth - 1))
    return float(np.mean(slopes))


# Tolerance for the per-layer log gain: for width n the squared gain of one
# transition, sigma_w^2 * (1/n) sum_i phi'(z_i)^2 (W^T delta)_i^2 / ||delta||^2,
# has a relative standard deviation of about sqrt(3/n) (chi-square of the
# Gaussian weights, 2/n, plus the ReLU mask, 1/n), i.e. about sqrt(3/n)/2 in log
# of the norm. The mean of 15 telescoping transitions over 3 seeds then has a
# standard deviation of 0.054 / sqrt(15 * 3) = 0.008 at n = 256; 5 sigma is 0.04.
# (The log of a chi-square is biased by about -1/n = -0.004, inside that.)
GAIN_TOL = 0.04


def test_relu_he_keeps_the_backprop_signal_flat():
    assert abs(_mean_log_gain("relu", "he_normal")) < GAIN_TOL


def test_relu_xavier_decays_by_one_over_sqrt2_per_layer():
    # Square layers: Xavier gives sigma_w^2 = 1, ReLU passes half the units:
    # squared gain 1/2 per layer, norm gain 1/sqrt(2): log = -0.3466.
    assert _mean_log_gain("relu", "xavier_normal") == pytest.approx(-0.5 * math.log(2), abs=GAIN_TOL)


def test_linear_orthogonal_is_exactly_isometric():
    # Orthogonal W and identity activation: ||W^T delta|| = ||delta|| for every sample.
    assert abs(_mean_log_gain("linear", "orthogonal", width=64, seeds=(0,))) < 1e-5


def test_deep_sigmoid_shrinks_the_signal_by_orders_of_magnitude():
    depth = 20
    cfg = RunConfig(depth=depth, width=64, activation="sigmoid", init="xavier_normal", steps=1)
    rec = Trainer(cfg).step()
    g = rec.layer_metric("act_grad_norm")
    # sigma'(z) <= 1/4 and sigma_w^2 = 1 (square Xavier): squared gain <= 1/16, so
    # ||dL/dz|| shrinks at least ~4x per layer: (1/4)^19 ~ 4e-12 from layer 20 to 1.
    # Allow 100x for the finite-width fluctuation of 19 weight matrices (see GAIN_TOL:
    # e^(5 * 0.1 * sqrt(19)) ~ 9).
    assert g[0] / g[depth - 1] < 100 * 0.25 ** (depth - 1)
    w = rec.layer_metric("grad_norm")
    assert w[0] / w[-1] < 1e-6  # so layer 1 barely learns


def test_exploding_init_grows_the_signal_toward_the_input():
    depth = 12
    cfg = RunConfig(depth=depth, width=64, activation="relu", init="normal", init_std=0.5, steps=1)
    rec = Trainer(cfg).step()
    g = rec.layer_metric("act_grad_norm")
    # sigma_w^2 = 0.25 * 64 = 16; ReLU halves it: squared gain 8, norm gain 2.83 per layer.
    slope = math.log(g[0] / g[depth - 1]) / (depth - 1)
    # Single seed at width 64: log-gain sd per transition ~ sqrt(3/64)/2 = 0.11, mean of 11: 0.033; 5 sigma = 0.17.
    assert slope == pytest.approx(0.5 * math.log(8), abs=0.17)
