"""Whether the vanilla RNN's mean-field gain through time is in its domain.

The prediction (gradsim/theory/rnn_mean_field.py) assumes W_hh is a random
i.i.d. draw of variance sigma_w^2 / width whose transpose acts in the backward
pass like a fresh random matrix at every step. A recorded row is out of domain
when any of three consequences of that assumption fails
(docs/theory.md#where-the-recurrent-theory-applies):

1. **The draw**: the top layer's W_hh was last drawn by a random scheme
   (``normal:G`` or ``orthogonal``). ``identity`` is no random matrix: I^T
   hands each unit's gradient back to the same unit, whose phi' mask is the
   one it had a step later, so the masks do not cut a fresh share each step.
2. **The scale**: a trained W_hh = W_0 + dW with ||W|| - ||W_0|| at most
   ||dW||_F. Gradient updates are sums of outer products dL/dh_t h_(t-1)^T, so
   dW is concentrated on few directions, where it can act with up to its whole
   Frobenius norm; the random draw's ||W_0||_F = sigma_w sqrt(n) is spread over n
   directions of typical gain sigma_w. Once | ||W|| / ||W_0|| - 1 | > 1 / sqrt(n)
   the recorded change alone can act more strongly along one direction than the
   draw does: W_hh is no longer like an i.i.d. draw of its initial scale.
3. **The gain**: over the T - 2 transitions t (h_(t+1) -> h_t, the last one
   left out: the head's gradient enters at h_T), with e_t = ln(m_t / p_t) the
   log of measured over predicted gain, the MLP's per-transition scatter
   sd(e_t) = sqrt((2 + r_t) / n) / 2 and bias -(2 + r_t) / (4 n) hold
   (gradsim/theory_domain.py). One W_hh is shared by all steps, so the e_t are
   correlated and their mean does not average down: the tolerance is
   Z sd of one transition (the fully correlated bound), not Z sd / sqrt(T).
   A signal that died (||dL/dh_t|| = 0 below a non-zero ||dL/dh_(t+1)||, as
   after exploding-rnn's blow-up saturates tanh) is a measured gain of 0
   against a positive prediction: out of domain.
4. **The drift**: the shared W_hh gives each draw its own offset c of the mean e_t
   (measured at step 0, tanh, T = 50, seeds 0-7: seed-to-seed sd of c about half
   one step's sd at width 32 and at 256, while within a row e_t scatters by
   exactly one step's sd with little correlation between steps). c belongs to
   that W_hh, so while training leaves W_hh like its draw, the mean error of a
   later row differs from the draw row's only by the two rows' independent
   per-step scatter: Z sqrt(var/k + var_0/k_0). A larger change means training
   has changed how W_hh acts on the signal (Adam on vanishing-rnn does so by step
   100 while ||W_hh|| is still within 1/sqrt(n) of the draw). Test 3 alone cannot
   see this: at width 32 it allows the mean error to move by up to +-0.65.

Numpy only, as gradsim.theory_domain: the export and the window read the same verdict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .config import parse_recurrent_init
from .metrics import LAYER_INDEX, PRED_MIN_WIDTH
from .theory_domain import Z, Verdict, dphi_max

#: The W_hh schemes that are random draws (the theory's assumption 1).
RANDOM_SCHEMES = ("normal", "orthogonal")

_AGN, _PRED, _WN = LAYER_INDEX["act_grad_norm"], LAYER_INDEX["pred_gain"], LAYER_INDEX["weight_norm"]


@dataclass(frozen=True)
class RecurrentVerdict(Verdict):
    """The domain test of one recorded step of a vanilla RNN.

    ``gain_error`` is the geometric mean over the time transitions of measured /
    predicted gain (0 when the measured signal died); ``reason`` names the first
    failed condition ("" in domain, "identity", "scale", "dead", "gain", "drift");
    ``scale_change`` = ||W_hh|| / ||W_hh as drawn||, NaN where the draw's row is not recorded.
    """

    reason: str = ""
    scheme: str = ""
    scale_change: float = float("nan")
    #: Measured / predicted gain per step (geometric mean) at the row W_hh was drawn, and the
    #: ln-tolerance of a change from it (NaN: that row is not recorded, no drift test).
    drawn_error: float = float("nan")
    drift_tolerance: float = float("nan")
    drawn_step: int = 0

    @property
    def scale_limit(self) -> float:
        return 1.0 / math.sqrt(self.width)

    @property
    def profile_error(self) -> float:
        """Measured / predicted ||dL/dh_1|| carried over all the transitions."""
        if self.gain_error <= 0:
            return 0.0
        return super().profile_error

    def words(self) -> str:
        if self.in_domain:
            return ""
        head = "no theory line: the mean-field gain through time assumes W_hh is an i.i.d. random draw"
        if self.reason == "identity":
            return (f"{head}, and it was drawn as the identity ({self.scheme}): I^T hands each unit's gradient back to "
                    f"the same unit, so the theory's fresh random matrix per step does not hold")
        if self.reason == "scale":
            return (f"{head}; training has changed ||W_hh|| by x{self.scale_change:.3g} since it was drawn, beyond the "
                    f"1 +- {self.scale_limit:.2g} (1/sqrt(width {self.width})) within which it still looks like that draw")
        if self.reason == "dead":
            return (f"{head}; the measured signal through time died (||dL/dh_t|| = 0 below a non-zero ||dL/dh_(t+1)||) "
                    f"where the theory predicts a positive gain: saturated units, not a random-matrix product")
        if self.reason == "drift":
            lo, hi = self.drawn_error * math.exp(-self.drift_tolerance), self.drawn_error * math.exp(self.drift_tolerance)
            return (f"{head}; training has changed how W_hh acts on the signal: the measured gain per time step is "
                    f"x{self.gain_error:.3g} the predicted over {self.transitions} steps, against x{self.drawn_error:.3g} "
                    f"when W_hh was drawn (step {self.drawn_step}); finite width {self.width} allows x{lo:.3g}-x{hi:.3g} "
                    f"while W_hh is still like that draw")
        lo, hi = self.allowed
        return (f"{head}; the measured gain per time step is x{self.gain_error:.3g} the predicted over "
                f"{self.transitions} steps, beyond the x{lo:.3g}-x{hi:.3g} finite width {self.width} allows "
                f"(one shared W_hh: the steps' errors do not average out)")


def _time_errors(g: np.ndarray, p: np.ndarray, width: int, activation: str, w_hh_norm: float
                 ) -> Optional[tuple[np.ndarray, np.ndarray, bool]]:
    """(e_t of the carried transitions, the theory's var(e_t) of every predicted one, whether the
    signal died) of one row, or None when it has no finite prediction."""
    k = min(g.size, p.size) - 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        below, above, pk = g[:k], g[1 : k + 1], p[:k]
        pred_ok = np.isfinite(pk) & (pk > 0)
        if not pred_ok.any():
            return None
        carried = pred_ok & np.isfinite(above) & (above > 0) & np.isfinite(below)
        dead = bool((carried & (below == 0)).any())
        ok = carried & (below > 0)
        s2 = float(w_hh_norm) ** 2 / width
        mmax = dphi_max(activation)
        r = mmax * mmax / (pk * pk / s2) - 1.0
        r = np.clip(np.where(np.isfinite(r), r, 0.0), 0.0, None)
        var = (2.0 + r[pred_ok]) / (4.0 * width)
        e = np.log(below[ok] / above[ok]) - np.log(pk[ok])
    return e, var, dead


def judge_time(
    act_grad_norm: Sequence[float] | np.ndarray,
    pred_gain: Sequence[float] | np.ndarray,
    width: int,
    activation: str,
    w_hh_norm: float,
    w_hh_norm_drawn: float = float("nan"),
    scheme: str = "normal:1",
    drawn: Optional[tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]] = None,
    drawn_step: int = 0,
) -> Optional[RecurrentVerdict]:
    """The verdict on one recorded row's time units (t = 1 first, T entries each), or None
    when there is no prediction to test (too narrow, T < 3, no finite prediction).

    ``w_hh_norm``: ||W_hh||_F of the top layer at this row; ``w_hh_norm_drawn``: at the
    row where it was last drawn (NaN: not recorded, the scale test is skipped);
    ``scheme``: how it was drawn (``normal:G``, ``orthogonal``, ``identity``);
    ``drawn``: (act_grad_norm, pred_gain) of that row, for the drift test (None: skipped),
    ``drawn_step`` its step (for the words).
    """
    g = np.asarray(act_grad_norm, np.float64)
    p = np.asarray(pred_gain, np.float64)
    k = min(g.size, p.size) - 2
    if width < PRED_MIN_WIDTH or k < 1:
        return None
    kind, _ = parse_recurrent_init(scheme)
    found = _time_errors(g, p, width, activation, w_hh_norm)
    if found is None:
        return None
    e, var, dead = found
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = float(w_hh_norm) / float(w_hh_norm_drawn)
    bias = float(-np.mean(var))
    tol = Z * math.sqrt(float(np.mean(var)))
    n_ok = int(e.size)
    err = float(np.mean(e)) if n_ok else float("nan")
    gain_error = 0.0 if dead else math.exp(err) if n_ok else float("nan")
    # The drift test: the draw's own offset is a property of that W_hh and cancels in the change
    # of the mean error; what the theory leaves is the two rows' independent per-step scatter.
    drift, drift_tol, drawn_error = float("nan"), float("nan"), float("nan")
    if drawn is not None and n_ok and math.isfinite(w_hh_norm_drawn):
        ref = _time_errors(np.asarray(drawn[0], np.float64), np.asarray(drawn[1], np.float64), width, activation,
                           w_hh_norm_drawn)
        if ref is not None and ref[0].size and not ref[2]:
            e0, var0, _ = ref
            drawn_error = math.exp(float(np.mean(e0)))
            drift = err - float(np.mean(e0))
            drift_tol = Z * math.sqrt(float(np.mean(var)) / n_ok + float(np.mean(var0)) / e0.size)
    reason = ""
    if kind not in RANDOM_SCHEMES:
        reason = "identity"
    elif math.isfinite(scale) and abs(scale - 1.0) > 1.0 / math.sqrt(width):
        reason = "scale"
    elif dead:
        reason = "dead"
    elif n_ok and abs(err - bias) > tol:
        reason = "gain"
    elif math.isfinite(drift) and abs(drift) > drift_tol:
        reason = "drift"
    elif not n_ok:
        return None
    return RecurrentVerdict(reason == "", gain_error, bias, tol, n_ok, int(width), reason, scheme, scale,
                            drawn_error, drift_tol, int(drawn_step))


def _draw_at(config: dict[str, Any], events: Any, step: int) -> tuple[str, int]:
    """(scheme, step of the draw) of W_hh at ``step``: the config's, or the last re-draw at or before it."""
    scheme, at = str(config.get("recurrent_init", "orthogonal")), 0
    for ev in events:
        if ev.kind == "recurrent_init" and ev.step <= step and ev.step >= at:
            scheme, at = str(ev.value), int(ev.step)
    return scheme, at


def rnn_verdict_at(session: Any, row: int) -> Optional[RecurrentVerdict]:
    """The verdict on recorded row ``row`` of a vanilla RNN's Session (None: no prediction there)."""
    cfg = session.config or {}
    width, depth = cfg.get("width"), cfg.get("depth")
    if cfg.get("model") != "rnn" or not 0 <= row < len(session):
        return None
    if not (isinstance(width, int) and isinstance(depth, int)) or isinstance(width, bool) or isinstance(depth, bool):
        return None
    names = [u.name for u in session.units]
    time_rows = [i for i, u in enumerate(session.units) if u.kind == "time"]
    top = f"recurrent {depth}"
    if top not in names or len(time_rows) < 3:
        return None
    j = names.index(top)
    layers = session.layers[row]
    if not np.isfinite(layers[time_rows[0], _PRED]):
        return None
    step = int(session.steps[row])
    scheme, at = _draw_at(cfg, session.events, step)
    i0 = int(np.searchsorted(session.steps, at))
    have = i0 < len(session) and int(session.steps[i0]) == at
    drawn = float(session.layers[i0, j, _WN]) if have else float("nan")
    ref = None
    if have and np.isfinite(session.layers[i0, time_rows[0], _PRED]):
        ref = (session.layers[i0, time_rows, _AGN], session.layers[i0, time_rows, _PRED])
    try:
        return judge_time(layers[time_rows, _AGN], layers[time_rows, _PRED], width, str(cfg.get("activation", "tanh")),
                          float(layers[j, _WN]), drawn, scheme, ref, at)
    except ValueError:  # a scheme or activation this rule does not know (a newer file): no verdict
        return None
