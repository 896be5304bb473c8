"""Gaussian expectations of an activation and its derivative, E[phi(h)^2] and
E[phi'(h)^2] for h ~ N(0, q): the numbers the mean-field theory is made of.

Gaussian expectations: closed forms for linear, relu and leaky relu; otherwise
Gauss-Legendre quadrature on a geometric grid of intervals in h that splits
at 0 (the kink or jump of relu, elu and selu) and spans every scale from the
activation's own (about 1) to the Gaussian's (sqrt(q)), so a narrow peak of
phi'^2 next to a wide Gaussian (tanh, sigmoid at large q) is resolved. A
fixed Gauss-Hermite rule is wrong there (docs/architecture.md#pitfalls-measured-here). The prediction's
per-sample recursion reads the same quadrature from a table in ln q (built once
per activation; ~3e-9 relative, see expect_both_fast), since running it per
layer and sample cost about a training step per recorded step.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch

from .. import activations

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# phi, phi' and the closed forms come from the activation registry, the one
# place that defines each activation (gradsim/activations.py).
def phi(name: str, slope: float) -> Callable[[np.ndarray], np.ndarray]:
    return activations.get(name).numpy_fn(slope)


def dphi(name: str, slope: float) -> Callable[[np.ndarray], np.ndarray]:
    """phi'; at a kink or jump (x = 0) the right-hand value (quadrature never samples 0)."""
    return activations.get(name).numpy_grad(slope)


def torch_dphi(name: str, slope: float, a: torch.Tensor) -> torch.Tensor:
    """phi'(a) as a tensor (the batch-norm path and the Jacobian; same values as dphi)."""
    return activations.get(name).torch_grad(slope, a)


def torch_phi(name: str, slope: float, a: torch.Tensor) -> torch.Tensor:
    return activations.get(name).torch_fn(slope)(a)


# Gauss-Legendre rule on [0, 1] for every sub-interval of the h grid.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(10)
_GL_X, _GL_W = 0.5 * (_GL_X + 1.0), 0.5 * _GL_W
_GRID_RATIO = 2.0  # each interval [a, 2 a]: 10 nodes resolve any feature of scale >= a (~1e-9 relative)
_TAIL_SDS = 13.0  # exp(-13^2/2) ~ 2e-37: beyond it the Gaussian weighs nothing in double


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
    f, df = phi(name, slope), dphi(name, slope)
    a, b = gauss_expect_many([lambda x: f(x) ** 2, lambda x: df(x) ** 2], q)
    return a, b


def expect_phi2(name: str, q, slope: float = 0.01):
    """E[phi(h)^2], h ~ N(0, q): the forward variance map's expectation."""
    cf = _closed_form(name, slope)
    if cf is not None:
        out = cf[0] * np.asarray(q, dtype=np.float64)
        return float(out) if out.ndim == 0 else out
    fn = phi(name, slope)
    return gauss_expect(lambda x: fn(x) ** 2, q)


def expect_dphi2(name: str, q, slope: float = 0.01):
    """E[phi'(h)^2], h ~ N(0, q): the backward gain's expectation."""
    cf = _closed_form(name, slope)
    if cf is not None:
        out = np.full(np.shape(q), cf[1], np.float64)
        return float(out) if out.ndim == 0 else out
    fn = dphi(name, slope)
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
