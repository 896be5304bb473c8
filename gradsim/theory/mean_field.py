"""Mean-field predictions of the backprop signal per layer.

For a wide MLP with zero-mean weights, layer l+1's pre-activation variance is
    q_{l+1} = sigma_w^2 E[phi(h)^2] + sigma_b^2,     h ~ N(0, q_l)
and the squared backprop signal shrinks or grows by
    chi_l = sigma_w^2 E[phi'(h)^2]
per layer (Poole et al. 2016, Schoenholz et al. 2017), with sigma_w^2 = fan_in
Var(W) of the *next* layer's weights, read from the current weights.

Gaussian expectations come from gradsim/theory/quadrature.py, the Jacobian
spectrum from gradsim/theory/jacobian.py.

Batch norm divides each unit by its *batch* standard deviation and couples
the samples of a batch: its backward pass projects out the batch mean and the
component along the normalised activations. Under batch norm the prediction
runs on the actual batch (finite batch, per-sample terms): the forward
statistics come from the batch itself, the backward signal is the mean-field
expectation (weights in the backward pass independent of the forward ones,
per-sample signals independent) through BN's exact backward projection. This
reproduces the gradient growth under batch norm at initialisation (Yang et al.
2019) within about 1-2 % at width 256, batch 128.

The predicted ||dL/dz|| profile is anchored at the output layer's measured
value (the loss gradient itself is not a mean-field quantity) and carried
toward the input with sqrt(chi) per layer.

Nothing here changes the network: no parameter, buffer (batch norm's running
statistics) or train/eval flag is written (tests/engine/test_theory.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from ..metrics import PRED_MIN_WIDTH
from ..models.family import provide_theory
from .quadrature import expect_both_fast, torch_dphi, torch_phi

#: Narrowest layer the mean-field model is trusted for (it is a large-width limit).
MIN_WIDTH = PRED_MIN_WIDTH

# ------------------------------------------------------------ prediction
@dataclass
class Prediction:
    """Per layer (index 0 = layer 1): the mean-field quantities and the predicted profile.

    ``reason`` is empty when the model applies; otherwise it says in words why
    not, and the gains are NaN (the overlay shows the words instead of a line).
    """

    sigma_w2: np.ndarray  # fan_in * Var(W) of each Linear
    q: np.ndarray  # pre-activation variance entering each hidden activation (NaN for the output layer)
    chi: np.ndarray  # squared gain from layer l+1 back to layer l (NaN for the output layer)
    act_grad_norm: np.ndarray  # predicted ||dL/dz||, anchored at the output layer
    reason: str = ""

    @property
    def gain(self) -> np.ndarray:
        """Predicted ||dL/dz_l|| / ||dL/dz_{l+1}|| = sqrt(chi_l)."""
        # chi is an expectation of squares; at batch size 2 batch norm passes exactly
        # nothing back and rounding can leave -1e-17 (NaN stays NaN).
        return np.sqrt(np.maximum(self.chi, 0.0))

    @property
    def applies(self) -> bool:
        return not self.reason


def profile_from_gains(gains: np.ndarray, anchor: float) -> np.ndarray:
    """||dL/dz|| per layer from per-layer gains (the last is the output layer's: ignored),
    anchored at the output layer's value ``anchor``."""
    g = np.asarray(gains, np.float64)
    out = np.full(g.shape, np.nan)
    if g.size == 0:
        return out
    out[-1] = anchor
    for l in range(g.size - 2, -1, -1):
        out[l] = out[l + 1] * g[l]
    return out


def _not_applicable(n: int, sigma_w2: np.ndarray, reason: str) -> Prediction:
    nan = np.full(n, np.nan)
    return Prediction(sigma_w2, nan.copy(), nan.copy(), nan.copy(), reason)


def predict(net, anchor: float = 1.0, x: Optional[torch.Tensor] = None, input_var: float = 1.0) -> Prediction:
    """Mean-field profile of ``net`` (a GradNet) at its current weights.

    With ``x`` (a batch of inputs) the recursion runs per sample from each
    sample's own E[x_i^2]: GradSim's 2-D inputs have very unequal norms, and
    the plain recursion from the average (``input_var``, 1 for standardised
    data) misjudges the first few layers, before q reaches its fixed point.
    The batch profile then assumes equal output gradients per sample:
    ||dL/dz_l||^2 = anchor^2 * mean_x prod_{k>=l} chi_k(x).

    Batch norm needs the batch itself (``x`` with >= 2 samples): see the
    module docstring. Reads the network only; changes nothing.
    """
    n = net.n_layers
    with torch.no_grad():
        # fan_in * mean(W^2) and mean(b^2) per layer, accumulated in float64 (one dispatch each)
        lin_w, lin_b = net.weights(), net.biases()
        wn = torch.stack(torch._foreach_norm(lin_w, 2, dtype=torch.float64)).numpy()
        bn = torch.stack(torch._foreach_norm(lin_b, 2, dtype=torch.float64)).numpy()
        sigma_w2 = np.array([w.shape[1] / w.numel() for w in lin_w]) * wn * wn
        sigma_b2 = bn * bn / np.array([b.numel() for b in lin_b], np.float64)
    if not (np.all(np.isfinite(sigma_w2)) and np.all(np.isfinite(sigma_b2))):
        return _not_applicable(n, sigma_w2, "the weights are not finite (the run diverged): no prediction")
    if net.depth >= 2 and net.width < MIN_WIDTH:
        return _not_applicable(n, sigma_w2, f"width {net.width} is too narrow for the mean-field theory (it needs {MIN_WIDTH} or more units per layer)")
    if getattr(net, "residual", False) or getattr(net, "has_layernorm", False):
        if x is None or x.shape[0] < 1:
            return _not_applicable(n, sigma_w2, "residual connections / layer norm: the prediction needs a batch of inputs")
        if net.has_batchnorm and x.shape[0] < 2:
            return _not_applicable(n, sigma_w2, "batch norm: the prediction needs a batch of at least 2 samples")
        with torch.no_grad():
            ws, bs = _doubles(net)
            power, q = _stream_power(net, x.detach().double(), ws, bs, sigma_w2)
    elif net.has_batchnorm:
        if x is None or x.shape[0] < 2:
            return _not_applicable(n, sigma_w2, "batch norm: the prediction needs a batch of at least 2 samples")
        with torch.no_grad():
            ws, bs = _doubles(net)
            power, q = _batchnorm_power(net, x.detach().double(), ws, bs, sigma_w2)
    else:
        power, q = _meanfield_power(net, x, input_var, sigma_w2, sigma_b2)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        chi = np.full(n, np.nan)
        chi[:-1] = power[:-1] / power[1:]
        profile = anchor * np.sqrt(power)
    if not np.all(np.isfinite(chi[:-1])):
        return _not_applicable(n, sigma_w2, "the predicted signal over- or underflows double precision: no prediction")
    return Prediction(sigma_w2, q, chi, profile)


def _meanfield_power(net, x: Optional[torch.Tensor], input_var: float, sigma_w2: np.ndarray, sigma_b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared ||dL/dz_l|| relative to the output layer (1 there), and mean q per layer."""
    n = net.n_layers
    second = (x.detach().double() ** 2).mean(dim=1).numpy() if x is not None else np.array([float(input_var)])
    q = np.full(n, np.nan)
    chi_x = np.ones((n, second.shape[0]))
    qzs = np.empty((net.depth, second.shape[0]))
    sw2, sb2, slope = sigma_w2.tolist(), sigma_b2.tolist(), net.leaky_slope
    for l, act in enumerate(net.activations):
        qz = qzs[l]
        np.multiply(second, sw2[l], out=qz)
        qz += sb2[l]  # variance of z_l, per sample
        second, dphi2 = _expect_pair(act, qz, slope)
        np.multiply(dphi2, sw2[l + 1], out=chi_x[l])
    q[: net.depth] = qzs.mean(axis=1)
    # cumulative products from the output back: P_l(x) = prod_{k=l}^{depth-1} chi_k(x)
    # (the output row of chi_x is 1, so the same products in the same order as a loop)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        cum = np.cumprod(chi_x[::-1], axis=0)[::-1]
    return cum.mean(axis=1), q


def _doubles(net) -> tuple[list, list]:
    """float64 copies of every Linear's weight and bias (the batch paths' forward pass)."""
    return [lin.weight.detach().double() for lin in net.linears], [lin.bias.detach().double() for lin in net.linears]


#: The per-sample expectations of the mean-field recursion (the table; tests swap in the quadrature).
_expect_pair = expect_both_fast


def _batchnorm_power(net, x: torch.Tensor, ws: list, bs: list, sigma_w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch norm: forward statistics of the actual batch, mean-field backward through BN.

    Per hidden layer l and unit j, BN's backward maps u = dL/da (over the batch)
    to dL/dz = c_j P_j u, c_j = gamma_j / sqrt(var_j + eps) and
    P_j = I - 11^T/B - xhat_j xhat_j^T / B (xhat_j: the unit's normalised batch).
    With u_k = d_k phi'(a_kj), where the d_k are independent with variance
    v_k = sigma_w^2 ||dL/dz_{l+1}[k]||^2 / width (the gradient-independence
    assumption of mean-field theory),
        E[(dL/dz)_ij^2] = c_j^2 sum_k P_j[i,k]^2 v_k phi'(a_kj)^2,
    whose sum over k is O(B) per unit once P's square is expanded.
    """
    B = x.shape[0]
    n = net.n_layers
    q = np.full(n, np.nan)
    h = x
    dphi2, xhats, scales = [], [], []
    for l in range(net.depth):
        z = torch.addmm(bs[l], h, ws[l].T)
        m = net.norms[l]
        var, mean = torch.var_mean(z, dim=0, unbiased=False)
        inv = torch.rsqrt(var + m.eps)
        xhat = (z - mean) * inv
        gamma, beta = m.weight.detach().double(), m.bias.detach().double()
        a = torch.addcmul(beta, xhat, gamma)
        q[l] = float((a * a).mean())
        act = net.activations[l]
        h = torch_phi(act, net.leaky_slope, a)
        if act == "tanh":  # from the output: one transcendental call a layer, not two
            d = 1.0 - h * h
        elif act == "sigmoid":
            d = h * (1.0 - h)
        else:
            d = torch_dphi(act, net.leaky_slope, a)
        dphi2.append(d * d)
        xhats.append(xhat)
        scales.append((gamma * inv) ** 2)
    p = torch.ones(B, dtype=torch.float64)  # per-sample ||dL/dz_{l+1}||^2, output layer: equal
    power = np.ones(n)
    for l in range(net.depth - 1, -1, -1):
        xh = xhats[l]
        width = xh.shape[1]
        v = float(sigma_w2[l + 1]) * p / width  # (B,) per-unit variance of dL/dh_l per sample
        w = dphi2[l] * v[:, None]  # (B, width): E[u_kj^2]
        xw = xh * w
        x2 = xh * xh
        s0 = w.sum(dim=0)
        s1 = xw.sum(dim=0)
        s2 = (xh * xw).sum(dim=0)
        # sum_k P[i,k]^2 w_k = w_i (1 - 2 (1 + xhat_i^2) / B) + (S0 + 2 xhat_i S1 + xhat_i^2 S2) / B^2
        e = w * (1.0 - 2.0 / B - (2.0 / B) * x2) + (s0 + 2.0 * xh * s1 + x2 * s2) / (B * B)
        p = e @ scales[l]
        power[l] = float(p.mean())
    # relative to the output layer, as the no-BN path: equal per-sample output gradients
    return power, q


def _projected(w: torch.Tensor, xh: torch.Tensor, dim: int) -> torch.Tensor:
    """E[(P g)_i^2] for independent g with E[g_k^2] = w_k, P = I - 11^T/N - xhat xhat^T/N
    along ``dim`` (N entries): the backward projection of a normalisation (batch norm
    along the batch, layer norm along the units):
        w_i (1 - 2 (1 + xhat_i^2) / N) + (S0 + 2 xhat_i S1 + xhat_i^2 S2) / N^2."""
    N = xh.shape[dim]
    x2 = xh * xh
    s0 = w.sum(dim=dim, keepdim=True)
    s1 = (xh * w).sum(dim=dim, keepdim=True)
    s2 = (x2 * w).sum(dim=dim, keepdim=True)
    return w * (1.0 - 2.0 / N - (2.0 / N) * x2) + (s0 + 2.0 * xh * s1 + x2 * s2) / (N * N)


def _stream_power(net, x: torch.Tensor, ws: list, bs: list, sigma_w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residual connections and/or layer norm (with or without batch norm).

    Forward: the actual batch in float64, as the network computes it (pre-activation
    residual stream z_l = z_(l-1) + alpha (W_l h + b_l) for layers 2..depth, then
    [batch norm] -> [layer norm] -> activation). Backward: the mean-field expectation
    (backward weights independent of the forward ones), per sample:
        ||dL/dz_l||^2 = ||dL/dz_(l+1)||^2 [skip] + alpha^2 sigma_w^2 / n sum_j phi'(a_j)^2 (...)
    where (...) is 1, or the normalisations' exact backward projections. Without
    normalisation this is the residual per-block gain sqrt(1 + alpha^2 chi). Layer
    norm divides each sample by its own standard deviation over the units, so its
    backward is a per-sample projection: no batch coupling, and a batch of one works.
    """
    B = x.shape[0]
    n = net.n_layers
    depth = net.depth
    alpha = float(net.residual_alpha) if net.residual else 0.0
    q = np.full(n, np.nan)
    z = torch.addmm(bs[0], x, ws[0].T)
    d2s, lns, bns = [], [], []
    for l in range(depth):
        a = z
        if net.has_batchnorm:
            m = net.norms[l]
            var, mean = torch.var_mean(a, dim=0, unbiased=False)
            inv = torch.rsqrt(var + m.eps)
            xh = (a - mean) * inv
            gamma = m.weight.detach().double()
            a = torch.addcmul(m.bias.detach().double(), xh, gamma)
            bns.append((xh, (gamma * inv) ** 2))
        if net.has_layernorm:
            m = net.lnorms[l]
            var, mean = torch.var_mean(a, dim=1, unbiased=False, keepdim=True)
            inv = torch.rsqrt(var + m.eps)
            xh = (a - mean) * inv
            gamma = m.weight.detach().double()
            a = torch.addcmul(m.bias.detach().double(), xh, gamma)
            lns.append((xh, inv * inv, gamma * gamma))
        q[l] = float((a * a).mean())
        act = net.activations[l]
        h = torch_phi(act, net.leaky_slope, a)
        d = torch_dphi(act, net.leaky_slope, a)
        d2s.append(d * d)
        u = torch.addmm(bs[l + 1], h, ws[l + 1].T)
        z = z + alpha * u if (net.residual and l + 1 < depth) else u
    p = torch.ones(B, dtype=torch.float64)  # per-sample ||dL/dz||^2 at the output: equal
    power = np.ones(n)
    for l in range(depth - 1, -1, -1):
        skip = net.residual and l + 1 < depth
        width = d2s[l].shape[1]
        v = (alpha * alpha if skip else 1.0) * float(sigma_w2[l + 1]) * p / width
        w = d2s[l] * v[:, None]  # E[(dL/da)_kj^2]
        if net.has_layernorm:
            xh, inv2, g2 = lns[l]
            w = _projected(w * g2, xh, dim=1) * inv2
        if net.has_batchnorm:
            xh, scale = bns[l]
            w = _projected(w, xh, dim=0) * scale
        branch = w.sum(dim=1)
        p = p + branch if skip else branch
        power[l] = float(p.mean())
    return power, q


def predicted_for(trainer, act_grad_norm_last: Optional[float] = None, samples: int = 256) -> Prediction:
    """Prediction for a Trainer's current weights on a fixed sample of its training
    inputs, anchored at a measured output-layer value."""
    anchor = 1.0 if act_grad_norm_last is None or not math.isfinite(act_grad_norm_last) else act_grad_norm_last
    return predict(trainer.net, anchor, x=trainer.probe_inputs(samples))


def _mlp_gain(net: Any, x: Any) -> np.ndarray:
    return predict(net, x=x).gain


provide_theory("mlp", _mlp_gain)
