"""Whether the mean-field prediction of a recorded step is in its domain.

Mean-field theory assumes weights drawn i.i.d. with zero mean, independent of
the signals they multiply. That holds at initialisation (and after a re-init);
training correlates the weights with the activations and the backprop signal,
and the recorded prediction (``pred_gain``, computed from the current weight
variances) can then miss the measured gain by a growing factor while nothing
in the computation is wrong. The rule here decides, from a recorded row alone,
whether measured and predicted gains still agree as well as finite width
allows; it lives in the core (numpy only) so the export and the window, which
never imports torch, read the same verdict.

The rule (docs/theory.md#where-the-theory-applies). Over the k = depth - 1
hidden-to-hidden transitions l (layer l+1 -> l, square weights), with the
measured gain m_l = ||dL/dz_l|| / ||dL/dz_(l+1)|| and the prediction p_l:

    e_l = ln(m_l / p_l),   e = mean_l e_l   (ln of the geometric-mean ratio)

At width n one transition's squared gain is ||W^T g||^2 (chi-square: relative
variance 2/n) times the mean over n units of phi'^2 (relative variance r/n,
r = E[phi'^4] / E[phi'^2]^2 - 1), so under the theory's assumptions

    sd(e_l) = sqrt((2 + r_l) / n) / 2,   E[e_l] = -(2 + r_l) / (4 n)

(the ln of a ratio of sums sits below the ln of the ratio of their means by
half its relative variance; one sample's worth, so a batch can only scatter
less). The step is in domain while |e - mean_l E[e_l]| <= Z sqrt(sum_l sd_l^2) / k.

r_l without torch or quadrature: for |phi'| <= M, E[phi'^4] <= M^2 E[phi'^2],
so r_l <= M^2 / E[phi'^2] - 1, and the recorded row holds E[phi'^2] of a plain
MLP: p_l^2 = sigma_w^2 E[phi'^2] with sigma_w^2 = ||W_(l+1)||^2 / n (the
recorded weight norm). The bound is exact for relu (r = 1) and linear (0).
Under batch or layer norm, or with residual connections, p_l also holds the
normalisation's scale, so r_l is taken at unit pre-activation variance (what
the normalisation sets): the same bound with E[phi'^2] of N(0, 1) by
quadrature split at 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from .metrics import LAYER_INDEX, PRED_MIN_WIDTH

#: The columns steps.csv ends with: 1 / 0 (in / out of domain) and the geometric-mean
#: ratio of measured to predicted per-layer gain; empty where nothing was tested.
DOMAIN_COLUMNS: tuple[str, ...] = ("theory_in_domain", "theory_gain_error")

#: Standard deviations of the finite-width scatter a step may be off and stay in domain.
#: The transitions of one step are not quite independent: over 10 fresh draws of each
#: preset at step 0 the mean log error scatters up to ~1.4x the independent estimate
#: (docs/theory.md), so 5 leaves every measured step-0 draw inside by a wide margin.
Z = 5.0

_SELU_L, _SELU_A = 1.0507009873554805, 1.6732632423543772

#: sup |phi'(h)| of each activation (gelu's at h = sqrt(2); selu's just left of 0).
_DPHI_MAX = {
    "linear": 1.0,
    "relu": 1.0,
    "tanh": 1.0,
    "sigmoid": 0.25,
    "elu": 1.0,
    "selu": _SELU_L * _SELU_A,
    "gelu": 0.5 * (1.0 + math.erf(1.0)) + math.sqrt(2.0) * math.exp(-1.0) / math.sqrt(2.0 * math.pi),
}

# Gauss-Legendre on 0..13 sd in 64 intervals of 10 nodes, mirrored: the kinks and
# jumps of phi' sit at 0, an edge of the rule, so they cost no accuracy.
_gl_x, _gl_w = np.polynomial.legendre.leggauss(10)
_edges = np.linspace(0.0, 13.0, 65)
_half = (_edges[:-1, None] + 0.5 * np.diff(_edges)[:, None] * (_gl_x + 1.0)).ravel()
_half_w = (0.5 * np.diff(_edges)[:, None] * _gl_w).ravel() * np.exp(-0.5 * _half * _half) / math.sqrt(2.0 * math.pi)
_NODES = np.concatenate([-_half, _half])
_WEIGHTS = np.concatenate([_half_w, _half_w])
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _dphi(name: str, slope: float, x: np.ndarray) -> np.ndarray:
    """phi' in numpy (the right-hand value at a kink; the quadrature never samples 0).

    A copy of gradsim.activations' numpy_grad, because the registry's gelu derivative
    calls torch's erf and the window, which reads this rule, never imports torch;
    tests/engine/test_theory_domain.py checks that both agree for every name there.
    """
    if name == "linear":
        return np.ones_like(x)
    if name == "relu":
        return (x > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(x > 0, 1.0, slope)
    if name == "tanh":
        return 1.0 - np.tanh(x) ** 2
    if name == "sigmoid":
        s = 0.5 * (1.0 + np.tanh(0.5 * x))
        return s * (1.0 - s)
    if name == "elu":
        return np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))
    if name == "selu":
        return _SELU_L * np.where(x > 0, 1.0, _SELU_A * np.exp(np.minimum(x, 0.0)))
    if name == "gelu":
        return 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    raise ValueError(f"activation = {name!r} is not known to the theory-domain rule; allowed: {', '.join(sorted(_DPHI_MAX) + ['leaky_relu'])}")


def dphi_max(name: str, slope: float = 0.01) -> float:
    """sup |phi'| of an activation."""
    if name == "leaky_relu":
        return max(1.0, abs(slope))
    if name not in _DPHI_MAX:
        _dphi(name, slope, np.zeros(1))  # the one error message for an unknown name
    return _DPHI_MAX[name]


def dphi2_at_unit_variance(name: str, slope: float = 0.01) -> float:
    """E[phi'(h)^2] for h ~ N(0, 1) (Gauss-Legendre on each half-line, split at the kink)."""
    return float(_WEIGHTS @ (_dphi(name, slope, _NODES) ** 2))


@dataclass(frozen=True)
class Verdict:
    """The domain test of one recorded step.

    ``gain_error`` is the geometric mean over the hidden transitions of measured /
    predicted gain; the step is in domain while ln(gain_error) lies within
    ``bias`` +- ``tolerance`` (both in ln units).
    """

    in_domain: bool
    gain_error: float
    bias: float
    tolerance: float
    transitions: int
    width: int

    @property
    def allowed(self) -> tuple[float, float]:
        """The range of gain_error finite width allows (as factors)."""
        return math.exp(self.bias - self.tolerance), math.exp(self.bias + self.tolerance)

    @property
    def profile_error(self) -> float:
        """Measured / predicted ||dL/dz|| at layer 1 carried over all the transitions."""
        with np.errstate(over="ignore"):
            return float(np.exp(self.transitions * math.log(self.gain_error)))

    def words(self) -> str:
        """Why the theory line no longer applies ("" when in domain)."""
        if self.in_domain:
            return ""
        lo, hi = self.allowed
        return (
            f"theory no longer applies: the weights have drifted from the i.i.d. draw it assumes "
            f"(measured per-layer gain x{self.gain_error:.3g} the predicted over {self.transitions} layers, "
            f"beyond the x{lo:.3g}-x{hi:.3g} finite width {self.width} allows; x{self.profile_error:.3g} at layer 1)"
        )


def judge(
    act_grad_norm: Sequence[float] | np.ndarray,
    pred_gain: Sequence[float] | np.ndarray,
    weight_norm: Sequence[float] | np.ndarray,
    width: int,
    activations: Sequence[str],
    normalised: bool = False,
    leaky_slope: float = 0.01,
) -> Optional[Verdict]:
    """The verdict on one recorded row (layer 1 first, depth + 1 entries each), or None
    when the row has no prediction or no hidden-to-hidden transition to test.

    ``activations``: the hidden layers' activations (depth entries); ``normalised``:
    batch norm, layer norm or residual connections were on at this step. Transitions
    whose measured or predicted gain is not finite and positive are left out.
    """
    g = np.asarray(act_grad_norm, np.float64)
    p = np.asarray(pred_gain, np.float64)
    w = np.asarray(weight_norm, np.float64)
    k = len(activations) - 1
    if k < 1 or width < PRED_MIN_WIDTH or g.size < k + 1 or p.size < k or w.size < k + 1:
        return None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = g[:k] / g[1 : k + 1]
        pk = p[:k]
        ok = np.isfinite(m) & (m > 0) & np.isfinite(pk) & (pk > 0)
        if not ok.any():
            return None
        e = np.log(m[ok]) - np.log(pk[ok])
        mmax = np.array([dphi_max(a, leaky_slope) for a in activations[:k]])
        if normalised:
            e_dphi2 = np.array([dphi2_at_unit_variance(a, leaky_slope) for a in activations[:k]])
        else:
            e_dphi2 = pk * pk / (w[1 : k + 1] ** 2 / width)
        r = mmax * mmax / e_dphi2 - 1.0
    r = np.clip(np.where(np.isfinite(r), r, 0.0), 0.0, None)[ok]
    n_ok = int(ok.sum())
    var = (2.0 + r) / (4.0 * width)
    bias = float(-np.mean(var))
    tol = Z * math.sqrt(float(var.sum())) / n_ok
    err = float(np.mean(e))
    return Verdict(abs(err - bias) <= tol, math.exp(err), bias, tol, n_ok, int(width))


# ------------------------------------------------------------------ sessions
_AGN, _PRED, _WN = LAYER_INDEX["act_grad_norm"], LAYER_INDEX["pred_gain"], LAYER_INDEX["weight_norm"]


@dataclass
class _Structure:
    activations: list[str]
    batchnorm: bool
    layernorm: bool
    residual: bool

    @property
    def normalised(self) -> bool:
        return self.batchnorm or self.layernorm or self.residual


def _structure_at(config: dict[str, Any], events: Iterable[Any], step: int) -> Optional[_Structure]:
    """The network's activations and switches at ``step`` (config, then events up to it)."""
    depth = config.get("depth")
    act = config.get("activation", "relu")
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1 or not isinstance(act, str):
        return None
    s = _Structure([act] * depth, bool(config.get("batchnorm")), bool(config.get("layernorm")), bool(config.get("residual")))
    for ev in events:
        if ev.step > step:
            continue
        value = str(ev.value)
        if ev.kind == "activation":
            name, at, layer = value.partition("@")
            if at and layer.isdigit() and 1 <= int(layer) <= depth:
                s.activations[int(layer) - 1] = name
            elif not at:
                s.activations = [name] * depth
        elif ev.kind in ("batchnorm", "layernorm", "residual"):
            setattr(s, ev.kind, value.startswith("on"))
    return s


def mlp_verdict_at(session: Any, row: int) -> Optional[Verdict]:
    """The verdict on recorded row ``row`` of an MLP's Session (None: no prediction there,
    not an MLP, or nothing to test). Any family: gradsim.theory_verdicts.verdict_at."""
    cfg = session.config or {}
    if cfg.get("model", "mlp") != "mlp" or not 0 <= row < len(session):
        return None
    layers = session.layers[row]
    if not np.isfinite(layers[0, _PRED]):
        return None
    width = cfg.get("width")
    s = _structure_at(cfg, session.events, int(session.steps[row]))
    if s is None or not isinstance(width, int) or isinstance(width, bool):
        return None
    try:
        return judge(layers[:, _AGN], layers[:, _PRED], layers[:, _WN], width, s.activations, s.normalised,
                     float(cfg.get("leaky_slope", 0.01)))
    except ValueError:  # an activation this rule does not know (a newer file): no verdict
        return None
