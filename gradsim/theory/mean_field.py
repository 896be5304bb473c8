"""Mean-field predictions of the backprop signal per layer, and the Jacobian spectrum.

For a wide MLP with zero-mean weights, layer l+1's pre-activation variance is
    q_{l+1} = sigma_w^2 E[phi(h)^2] + sigma_b^2,     h ~ N(0, q_l)
and the squared backprop signal shrinks or grows by
    chi_l = sigma_w^2 E[phi'(h)^2]
per layer (Poole et al. 2016, Schoenholz et al. 2017), with sigma_w^2 = fan_in
Var(W) of the *next* layer's weights, read from the current weights.

Gaussian expectations: closed forms for linear, relu and leaky relu; otherwise
Gauss-Legendre quadrature on a geometric grid of intervals in h that splits
at 0 (the kink or jump of relu, elu and selu) and spans every scale from the
activation's own (about 1) to the Gaussian's (sqrt(q)), so a narrow peak of
phi'^2 next to a wide Gaussian (tanh, sigmoid at large q) is resolved. A
fixed Gauss-Hermite rule is wrong there (docs/architecture.md#pitfalls-measured-here). The prediction's
per-sample recursion reads the same quadrature from a table in ln q (built once
per activation; ~3e-9 relative, see expect_both_fast), since running it per
layer and sample cost about a training step per recorded step.

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
from typing import Any, Callable, Optional

import numpy as np
import torch

from .. import activations
from ..metrics import PRED_MIN_WIDTH
from ..models.family import provide_theory

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

#: Narrowest layer the mean-field model is trusted for (it is a large-width limit).
MIN_WIDTH = PRED_MIN_WIDTH

# Gauss-Legendre rule on [0, 1] for every sub-interval of the h grid.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(10)
_GL_X, _GL_W = 0.5 * (_GL_X + 1.0), 0.5 * _GL_W
_GRID_RATIO = 2.0  # each interval [a, 2 a]: 10 nodes resolve any feature of scale >= a (~1e-9 relative)
_TAIL_SDS = 13.0  # exp(-13^2/2) ~ 2e-37: beyond it the Gaussian weighs nothing in double


# ------------------------------------------------------------ activations
# phi, phi' and the closed forms come from the activation registry, the one
# place that defines each activation (gradsim/activations.py).
def _phi(name: str, slope: float) -> Callable[[np.ndarray], np.ndarray]:
    return activations.get(name).numpy_fn(slope)


def _dphi(name: str, slope: float) -> Callable[[np.ndarray], np.ndarray]:
    """phi'; at a kink or jump (x = 0) the right-hand value (quadrature never samples 0)."""
    return activations.get(name).numpy_grad(slope)


def _torch_dphi(name: str, slope: float, a: torch.Tensor) -> torch.Tensor:
    """phi'(a) for the batch-norm path (tensors in, tensors out; same values as _dphi)."""
    return activations.get(name).torch_grad(slope, a)


def _torch_phi(name: str, slope: float, a: torch.Tensor) -> torch.Tensor:
    return activations.get(name).torch_fn(slope)(a)


# ------------------------------------------------------------ expectations
def _half_line_rule(q_lo: float, q_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes h > 0 and weights for integrals over [0, inf) of f(h) N(h; 0, q), q in [q_lo, q_hi].

    Intervals [0, a0], then geometric [a, 2 a] up to 13 sd of the widest Gaussian;
    a0 is far below both the activation's scale (1) and the narrowest Gaussian's.
    """
    s_lo, s_hi = math.sqrt(q_lo), math.sqrt(q_hi)
    a0 = 1e-3 * min(1.0, s_lo)
    top = _TAIL_SDS * s_hi
    n = max(1, int(math.ceil(math.log(top / a0) / math.log(_GRID_RATIO))))
    edges = np.concatenate([[0.0], a0 * _GRID_RATIO ** np.arange(n + 1)])
    lo, width = edges[:-1], np.diff(edges)
    nodes = (lo[:, None] + width[:, None] * _GL_X).ravel()
    weights = (width[:, None] * _GL_W).ravel()
    return nodes, weights


def gauss_expect_many(fs: list[Callable[[np.ndarray], np.ndarray]], q) -> list:
    """[E[f(h)] for f in fs], h ~ N(0, q) (q scalar or array, > 0): split at 0, adaptive in scale.

    Each ``f`` may have a kink or jump at 0; elsewhere it should be smooth on
    the scale of 1 or of sqrt(q). q = 0 gives f(0+) (the limit from the right),
    non-finite q gives NaN. The Gaussian weights are shared by all ``fs``.
    """
    qa = np.asarray(q, dtype=np.float64)
    flat = qa.ravel()
    outs = [np.empty(flat.shape, np.float64) for _ in fs]
    zero = flat <= 0
    pos = ~zero & np.isfinite(flat)
    for f, out in zip(fs, outs):
        if zero.any():
            out[zero] = float(np.asarray(f(np.array([1e-300]))).ravel()[0])
        out[~zero & ~pos] = np.nan
    if pos.any():
        qp = flat[pos]
        nodes, weights = _half_line_rule(float(qp.min()), float(qp.max()))
        inv = 1.0 / qp
        dens = np.exp(np.multiply.outer(-0.5 * inv, nodes * nodes))
        dens *= (np.sqrt(inv) * _INV_SQRT_2PI)[:, None]
        for f, out in zip(fs, outs):
            fsum = np.asarray(f(nodes), np.float64) + np.asarray(f(-nodes), np.float64)
            out[pos] = dens @ (weights * fsum)
    res = [out.reshape(qa.shape) for out in outs]
    return [float(r) if r.ndim == 0 else r for r in res]


def gauss_expect(f: Callable[[np.ndarray], np.ndarray], q):
    """E[f(h)] for h ~ N(0, q): see gauss_expect_many."""
    return gauss_expect_many([f], q)[0]


def _closed_form(name: str, slope: float) -> Optional[tuple[float, float]]:
    """(A, B) with E[phi(h)^2] = q A, E[phi'(h)^2] = B where the activation has a closed form."""
    cf = activations.get(name).closed_form
    return None if cf is None else cf(slope)


def expect_both(name: str, q, slope: float = 0.01) -> tuple:
    """(E[phi(h)^2], E[phi'(h)^2]), h ~ N(0, q), in one pass over the quadrature nodes."""
    cf = _closed_form(name, slope)
    if cf is not None:
        return expect_phi2(name, q, slope), expect_dphi2(name, q, slope)
    f, df = _phi(name, slope), _dphi(name, slope)
    a, b = gauss_expect_many([lambda x: f(x) ** 2, lambda x: df(x) ** 2], q)
    return a, b


def expect_phi2(name: str, q, slope: float = 0.01):
    """E[phi(h)^2], h ~ N(0, q): the forward variance map's expectation."""
    cf = _closed_form(name, slope)
    if cf is not None:
        out = cf[0] * np.asarray(q, dtype=np.float64)
        return float(out) if out.ndim == 0 else out
    fn = _phi(name, slope)
    return gauss_expect(lambda x: fn(x) ** 2, q)


def expect_dphi2(name: str, q, slope: float = 0.01):
    """E[phi'(h)^2], h ~ N(0, q): the backward gain's expectation."""
    cf = _closed_form(name, slope)
    if cf is not None:
        out = np.full(np.shape(q), cf[1], np.float64)
        return float(out) if out.ndim == 0 else out
    fn = _dphi(name, slope)
    return gauss_expect(lambda x: fn(x) ** 2, q)


# Tabulated expectations for the prediction's per-sample recursion. Quadrature
# per layer and sample costs about one training step per prediction;
# both expectations are smooth in ln q, so predict reads them from a table of
# the same quadrature on a uniform grid in ln q (built once per activation, a
# few ms) by 4-point Lagrange interpolation of ln E in ln q: error ~1e-9
# relative (tests/engine/test_theory_table.py), far below the float32 that
# pred_gain is stored in. q outside the table (or 0, or not finite) goes to the
# quadrature itself.
_TAB_LNQ_LO, _TAB_LNQ_HI = math.log(1e-8), math.log(1e6)
_TAB_STEP = 1.0 / 32
_TAB_N = int(math.ceil((_TAB_LNQ_HI - _TAB_LNQ_LO) / _TAB_STEP)) + 1  # grid points LO .. >= HI
_TAB_Q_LO, _TAB_Q_HI = 1e-8, 1e6  # the q read from the table (u = ln(q / 1e-8) * 32 in [0, _TAB_N - 1])
# Monomial coefficients of the cubic through a stencil's 4 points at s = -1, 0, 1, 2.
_TAB_TO_CUBIC = np.linalg.inv(np.vander(np.array([-1.0, 0.0, 1.0, 2.0]), 4, increasing=True))
_tables: dict[tuple[str, float], np.ndarray] = {}
_min_of, _max_of = np.minimum.reduce, np.maximum.reduce


def _table(name: str, slope: float) -> np.ndarray:
    """(4, _TAB_N - 1, 2): per interval i of the ln q grid (ln q = LO + STEP * (i + s),
    0 <= s <= 1), the coefficients c_k of sum_k c_k s^k for ln E[phi^2] and ln E[phi'^2]:
    the cubic through grid points i-1 .. i+2 (4-point Lagrange interpolation).
    Coefficient-major, so a lookup gathers each c_k as one contiguous (m, 2) block."""
    key = (name, float(slope))
    tab = _tables.get(key)
    if tab is None:
        lnq = _TAB_LNQ_LO + _TAB_STEP * np.arange(-1, _TAB_N + 1)  # one extra point each side
        a, b = expect_both(name, np.exp(lnq), slope)
        y = np.log(np.stack([a, b], axis=1))  # (_TAB_N + 2, 2)
        stencils = np.stack([y[k : k + _TAB_N - 1] for k in range(4)], axis=1)  # (_TAB_N - 1, 4, 2)
        tab = np.ascontiguousarray(np.einsum("ck,ikj->cij", _TAB_TO_CUBIC, stencils))
        _tables[key] = tab
    return tab


def expect_both_fast(name: str, q: np.ndarray, slope: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """expect_both for a 1-d array of q, from the table where 1e-8 <= q <= 1e6 (see above)."""
    q = np.asarray(q, dtype=np.float64)
    cf = _closed_form(name, slope)
    if cf is not None:
        return cf[0] * q, np.full(q.shape, cf[1], np.float64)
    tab = _table(name, slope)
    # ufunc reductions directly: ndarray.min/max add a Python wrapper each, and this
    # runs once per layer of every prediction (about a third of its cost was overhead)
    lo, hi = (_min_of(q), _max_of(q)) if q.size else (1.0, 1.0)
    if not (lo >= _TAB_Q_LO and hi <= _TAB_Q_HI):  # some q outside the table, 0 or not finite (NaN fails both)
        inside = (q >= _TAB_Q_LO) & (q <= _TAB_Q_HI)
        a, b = np.empty(q.shape), np.empty(q.shape)
        if inside.any():
            a[inside], b[inside] = expect_both_fast(name, q[inside], slope)
        a[~inside], b[~inside] = expect_both(name, q[~inside], slope)
        return a, b
    u = np.log(q)
    u -= _TAB_LNQ_LO
    u *= 1.0 / _TAB_STEP
    i = u.astype(np.intp)  # u >= 0 up to round-off: truncation is floor
    np.minimum(i, _TAB_N - 2, out=i)
    u -= i
    s = u[:, None]
    c = tab.take(i, axis=1)  # (4, m, 2)
    # exp(((c3 s + c2) s + c1) s + c0), in place: the same operations in the same order
    val = c[3] * s
    val += c[2]
    val *= s
    val += c[1]
    val *= s
    val += c[0]
    np.exp(val, out=val)
    return val[:, 0], val[:, 1]


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
        h = _torch_phi(act, net.leaky_slope, a)
        if act == "tanh":  # from the output: one transcendental call a layer, not two
            d = 1.0 - h * h
        elif act == "sigmoid":
            d = h * (1.0 - h)
        else:
            d = _torch_dphi(act, net.leaky_slope, a)
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
        h = _torch_phi(act, net.leaky_slope, a)
        d = _torch_dphi(act, net.leaky_slope, a)
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


def jacobian_spectrum(net, x: torch.Tensor, max_samples: int = 8) -> np.ndarray:
    """Singular values of d h_depth / d h_1 (last hidden output w.r.t. the first), per sample.

    The hidden-to-hidden Jacobian is width x width, so its spectrum shows
    dynamical isometry (all singular values near 1: orthogonal init in a
    linear or near-linear tanh net) or its absence (a spread over orders of
    magnitude: Gaussian init), Saxe et al. 2013, Pennington et al. 2017.
    Returns an array (samples, width); batch norm uses this batch's statistics
    as constants (the per-sample Jacobian), computed without the module's
    forward, so its running statistics and train/eval mode stay untouched.
    """
    x = x[:max_samples]
    if getattr(net, "residual", False) or getattr(net, "has_layernorm", False):
        return _stream_jacobian_spectrum(net, x.detach().double())
    with torch.no_grad():
        zs = _hidden_preacts(net, x.detach().double())
        width = net.width
        out = []
        for s in range(x.shape[0]):
            jac = torch.eye(width, dtype=torch.float64)
            for l in range(1, net.depth):
                w = net.linears[l].weight.detach().double()
                z = zs[l]
                if net.has_batchnorm:
                    m = net.norms[l]
                    var = z.var(dim=0, unbiased=False)
                    scale = m.weight.detach().double() / torch.sqrt(var + m.eps)
                    a = (z - z.mean(0)) * scale + m.bias.detach().double()
                else:
                    scale = torch.ones(width, dtype=torch.float64)
                    a = z
                d = _torch_dphi(net.activations[l], net.leaky_slope, a[s])
                jac = (d * scale).unsqueeze(1) * (w @ jac)
            out.append(torch.linalg.svdvals(jac).numpy())
    return np.stack(out) if out else np.zeros((0, net.width))


def _stream_jacobian_spectrum(net, x: torch.Tensor) -> np.ndarray:
    """Residual / layer-norm nets, per sample, by autograd on a float64 copy of the
    forward pass (batch norm by this batch's statistics, held constant).

    With residual connections the stream z carries the signal, and z_2 depends on
    z_1 as well as on h_1, so the map is d z_depth / d z_1 (the Jacobian the
    backprop signal passes through); with layer norm alone it is d h_depth / d h_1.
    """
    depth, residual = net.depth, bool(net.residual)
    alpha = float(net.residual_alpha) if residual else 0.0
    lin = [(m.weight.detach().double(), m.bias.detach().double()) for m in net.linears]
    bn_stats = []
    with torch.no_grad():  # batch norm's statistics of this batch, as in _hidden_preacts
        z = x @ lin[0][0].T + lin[0][1]
        for l in range(depth):
            a = z
            if net.has_batchnorm:
                m = net.norms[l]
                var, mean = torch.var_mean(a, dim=0, unbiased=False)
                bn_stats.append((mean, torch.rsqrt(var + m.eps), m.weight.detach().double(), m.bias.detach().double()))
                mean, inv, g, b = bn_stats[-1]
                a = (a - mean) * inv * g + b
            a = _layernorm_double(net, l, a)
            h = _torch_phi(net.activations[l], net.leaky_slope, a)
            u = h @ lin[l + 1][0].T + lin[l + 1][1]
            z = z + alpha * u if (residual and l + 1 < depth) else u

    def block(l: int, z: torch.Tensor) -> torch.Tensor:
        a = z
        if net.has_batchnorm:
            mean, inv, g, b = bn_stats[l]
            a = (a - mean) * inv * g + b
        return _torch_phi(net.activations[l], net.leaky_slope, _layernorm_double(net, l, a))

    def stream(z1: torch.Tensor) -> torch.Tensor:  # z_1 -> z_depth
        z = z1
        for l in range(depth - 1):
            u = block(l, z) @ lin[l + 1][0].T + lin[l + 1][1]
            z = z + alpha * u
        return z

    def hidden(h1: torch.Tensor) -> torch.Tensor:  # h_1 -> h_depth (no skips)
        h = h1
        for l in range(1, depth):
            h = block(l, h @ lin[l][0].T + lin[l][1])
        return h

    with torch.no_grad():
        z1 = x @ lin[0][0].T + lin[0][1]
        start = z1 if residual else block(0, z1)
    fn = stream if residual else hidden
    out = []
    for s in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: fn(v.unsqueeze(0))[0], start[s], vectorize=True)
        out.append(torch.linalg.svdvals(jac.detach()).numpy())
    return np.stack(out) if out else np.zeros((0, net.width))


def _layernorm_double(net, l: int, a: torch.Tensor) -> torch.Tensor:
    """Layer norm of hidden layer l on float64 values (no-op when layer norm is off)."""
    if not getattr(net, "has_layernorm", False):
        return a
    m = net.lnorms[l]
    var, mean = torch.var_mean(a, dim=-1, unbiased=False, keepdim=True)
    return (a - mean) * torch.rsqrt(var + m.eps) * m.weight.detach().double() + m.bias.detach().double()


def _hidden_preacts(net, x: torch.Tensor) -> list[torch.Tensor]:
    """z of every hidden layer in float64, batch norm by this batch's statistics
    (computed here: the module's forward would update its running statistics)."""
    zs = []
    h = x
    for l in range(net.depth):
        lin = net.linears[l]
        z = h @ lin.weight.detach().double().T + lin.bias.detach().double()
        zs.append(z)
        if net.has_batchnorm:
            m = net.norms[l]
            a = (z - z.mean(0)) / torch.sqrt(z.var(dim=0, unbiased=False) + m.eps) * m.weight.detach().double() + m.bias.detach().double()
        else:
            a = z
        h = _torch_phi(net.activations[l], net.leaky_slope, a)
    return zs


def predicted_for(trainer, act_grad_norm_last: Optional[float] = None, samples: int = 256) -> Prediction:
    """Prediction for a Trainer's current weights on a fixed sample of its training
    inputs, anchored at a measured output-layer value."""
    anchor = 1.0 if act_grad_norm_last is None or not math.isfinite(act_grad_norm_last) else act_grad_norm_last
    return predict(trainer.net, anchor, x=trainer.probe_inputs(samples))


def _mlp_gain(net: Any, x: Any) -> np.ndarray:
    return predict(net, x=x).gain


provide_theory("mlp", _mlp_gain)
