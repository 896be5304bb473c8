"""What a session shows: vanishing, exploding, dead units, saturation, diverged, or healthy.

The rules and why each threshold is where it is are in docs/watch.md
("The diagnosis"); the numbers below are the same ones. In short:

- the *window* is what the run is now: the second half of the rows recorded
  since the last command event (a change of activation, init, norm, clip,
  lr or optimizer), so a rescue at step 300 is judged on what came after;
- the *signal* of a unit is its ||dL/d output|| (``act_grad_norm``), or its
  relative gradient ||grad W|| / ||W|| where the session has none (a model
  watched with ``activations=False``); the first and last units with a
  signal are compared (for an MLP: layer 1 and the output layer);
- a finding holds when it holds on the median row of the window, and
  ``started`` is the first step of the unbroken stretch of rows, up to the
  window's end, on which it holds.

Works on any session (the simulator's MLP, a watched model) without torch.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..events import COMMAND_KINDS
from ..metrics import LAYER_INDEX, STEP_INDEX
from ..models.family import unit_rows
from ..session.store import Session

#: The verdict's kinds, in the order they are listed (a divergence first; then the
#: gradient's size across depth; then the activations' states that often cause it).
KINDS = ("diverged", "exploding", "vanishing", "dead units", "saturation")
HEALTHY = "healthy"
#: Whose fixes come first: a cause (dead or saturated units starve the layers below them
#: of gradient) before the symptom it makes (vanishing).
FIX_ORDER = ("diverged", "dead units", "saturation", "exploding", "vanishing")

#: Signal at the first unit over the signal at the last: below VANISH_RATIO the first layers get
#: 100x less than the last; above EXPLODE_RATIO (about 316x) they get far more. Asymmetric on
#: purpose: batch norm makes a sigmoid net's signal grow 25-120x over 20 layers and it trains
#: well, while the exploding-relu preset sits at 1000-20000x (docs/watch.md).
VANISH_RATIO = 1e-2
EXPLODE_RATIO = 10**2.5
#: A unit with at least this fraction of its features zero for the whole batch (ReLU-like).
DEAD_FRACTION = 0.6
#: A unit with at least this fraction of its outputs in a flat region (sigmoid/tanh-like).
SATURATED_FRACTION = 0.3

_LOWER_LR = "lower the learning rate (10x)"
_CLIP = "clip the gradient norm: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) before optimizer.step()"
_WARMUP = "warm the learning rate up over the first few hundred steps (transformers especially)"
_INIT = "use He init for ReLU layers and Xavier for tanh and sigmoid (smaller weights where they are too large)"
_NORM = "add batch norm or layer norm between the layers"
_RELU = "use ReLU or Leaky ReLU instead of sigmoid or tanh in the hidden layers"

#: Fixes in the order to try them, per finding (GradSim's own lessons; docs/watch.md).
FIXES: dict[str, tuple[str, ...]] = {
    "diverged": (_LOWER_LR, _CLIP, _WARMUP, "check the inputs and the loss for NaN or inf"),
    "exploding": (_INIT, _CLIP, _LOWER_LR, _NORM, _WARMUP),
    "vanishing": (_RELU, _INIT, _NORM, "add residual (skip) connections around the layers",
                  "for a recurrent net: an orthogonal or identity recurrent init, or an LSTM or GRU"),
    "dead units": ("use Leaky ReLU (or ELU, GELU): a unit below zero still gets a gradient",
                   _LOWER_LR + ": one large step can push a unit's bias below every input",
                   "start the biases at zero with He init", "add batch norm before the ReLU"),
    "saturation": (_INIT, _RELU, "add batch norm or layer norm before the activation", _LOWER_LR),
}


@dataclass
class Finding:
    kind: str
    units: list[str]
    evidence: dict[str, Any]
    started: Optional[int] = None
    ended: Optional[int] = None  # for a finding of an earlier part of the run

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "units": self.units, "evidence": self.evidence, "started": self.started}
        if self.ended is not None:
            d["ended"] = self.ended
        return d


@dataclass
class Diagnosis:
    verdict: list[str]
    findings: list[Finding]
    suggestions: list[str]
    window: tuple[int, int] = (0, 0)
    earlier: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
            "suggestions": self.suggestions,
            "window": {"from": self.window[0], "to": self.window[1]},
            "earlier": [f.to_dict() for f in self.earlier],
        }

    def text(self, names: bool = True) -> str:
        lines = [f"verdict: {', '.join(self.verdict)}  (judged on steps {self.window[0]}-{self.window[1]})"]
        for f in self.findings:
            lines.append(f"- {describe(f)}")
            if names and f.units:
                shown = ", ".join(f.units[:8]) + (f" and {len(f.units) - 8} more" if len(f.units) > 8 else "")
                lines.append(f"  units: {shown}")
        for f in self.earlier:
            lines.append(f"- earlier, steps {f.started}-{f.ended}: {describe(f)}")
        if self.suggestions:
            lines.append("fixes, in the order to try them:")
            lines += [f"  {i}. {s}" for i, s in enumerate(self.suggestions, 1)]
        return "\n".join(lines) + "\n"


def _g(x: float) -> str:
    return f"{x:.3g}"


def describe(f: Finding) -> str:
    """One sentence with the finding's numbers."""
    e = f.evidence
    since = f" since step {f.started}" if f.started is not None and f.ended is None else ""
    if f.kind == "diverged":
        return f"diverged at step {e['step']}: {e['what']}"
    if f.kind in ("vanishing", "exploding"):
        return (f"{f.kind} gradients{since}: {e['metric']} at {e['first_unit']} is {_g(e['ratio'])} times "
                f"that at {e['last_unit']} (about {_g(e['gain_per_unit'])}x per unit over {e['span']} units)")
    if f.kind == "dead units":
        return (f"dead units{since}: in {len(f.units)} unit(s) at least {DEAD_FRACTION:.0%} of the features are zero for "
                f"the whole batch (worst {e['worst_unit']}: {e['worst']:.0%})")
    if f.kind == "saturation":
        return (f"saturation{since}: in {len(f.units)} unit(s) at least {SATURATED_FRACTION:.0%} of the outputs sit in "
                f"the flat region (worst {e['worst_unit']}: {e['worst']:.0%})")
    return f.kind


# ------------------------------------------------------------------ rules
def _last_command_row(session: Session, steps: np.ndarray) -> int:
    """Index of the first row at or after the last command event (0 if none)."""
    cmd_steps = [e.step for e in session.events if e.kind in COMMAND_KINDS and e.step > 0]
    if not cmd_steps:
        return 0
    return int(np.searchsorted(steps, max(cmd_steps), side="left"))


def _signal(session: Session, rows: slice) -> tuple[np.ndarray, str, list[int]]:
    """(rows x units signal, its name, the units with a signal)."""
    units = [j for j, u in enumerate(session.units) if u.has_signal]
    ag = session.layer_metric("act_grad_norm")[rows].astype(np.float64)
    if units and np.isfinite(ag[:, units]).mean() >= 0.5:
        good = [j for j in units if np.isfinite(ag[:, j]).mean() >= 0.5]
        return ag, "||dL/d output||", good
    gn = session.layer_metric("grad_norm")[rows].astype(np.float64)
    wn = session.layer_metric("weight_norm")[rows].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = gn / wn
    good = [j for j in range(len(session.units)) if np.isfinite(rel[:, j]).mean() >= 0.5]
    return rel, "||grad W|| / ||W||", good


def _log_ratio(sig: np.ndarray, first: int, last: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(sig[:, first]) - np.log10(sig[:, last])


def _streak_start(holds: np.ndarray, steps: np.ndarray) -> Optional[int]:
    """The first step of the unbroken run of True at the end of ``holds``."""
    if holds.size == 0 or not holds[-1]:
        return None
    k = holds.size - 1
    while k > 0 and holds[k - 1]:
        k -= 1
    return int(steps[k])


def _depth_findings(session: Session, lo: int, hi: int, steps: np.ndarray) -> list[Finding]:
    sig, metric, good = _signal(session, slice(0, hi))
    if len(good) < 2:
        return []
    first, last = good[0], good[-1]
    lr = _log_ratio(sig, first, last)  # rows 0..hi-1
    win = lr[lo:hi]
    win = win[~np.isnan(win)]
    if win.size == 0:
        return []
    med = float(np.median(win))
    names = [u.name for u in session.units]
    out = []
    for kind, holds_all, cond in (
        ("vanishing", lr < math.log10(VANISH_RATIO), med < math.log10(VANISH_RATIO)),
        ("exploding", lr > math.log10(EXPLODE_RATIO), med > math.log10(EXPLODE_RATIO)),
    ):
        if not cond:
            continue
        ratio = 10.0 ** med
        span = good.index(last) - good.index(first)
        last_sig = np.nanmedian(sig[lo:hi, last])
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.nanmedian(sig[lo:hi, :], axis=0) / last_sig
        if kind == "vanishing":
            units = [names[j] for j in good if rel[j] < VANISH_RATIO]
        else:
            units = [names[j] for j in good if rel[j] > EXPLODE_RATIO]
        ev: dict[str, Any] = {
            "metric": metric, "first_unit": names[first], "last_unit": names[last], "ratio": ratio,
            "threshold": VANISH_RATIO if kind == "vanishing" else EXPLODE_RATIO,
            "gain_per_unit": ratio ** (1.0 / span) if span > 0 and ratio > 0 else ratio, "span": span,
        }
        ur = session.layer_metric("update_ratio")[lo:hi].astype(np.float64)
        ev["update_ratio_first"] = float(np.nanmedian(ur[:, first])) if np.isfinite(ur[:, first]).any() else None
        ev["update_ratio_last"] = float(np.nanmedian(ur[:, last])) if np.isfinite(ur[:, last]).any() else None
        loss = session.column("loss")[lo:hi].astype(np.float64)
        if kind == "exploding" and loss.size > 2:
            ev["loss_jumps"] = int(np.sum(loss[2:] > 3 * loss[1:-1]))
        out.append(Finding(kind, units, _clean(ev), _streak_start(holds_all, steps[:hi])))
    return out


def _stats_findings(session: Session, lo: int, hi: int, steps: np.ndarray) -> list[Finding]:
    has = session.has_stats[:hi]
    rows = np.flatnonzero(has[lo:hi]) + lo
    if rows.size == 0:  # no sampled row in the window: the newest sampled one since the window's start
        earlier = np.flatnonzero(has[:hi])
        rows = earlier[-1:] if earlier.size else rows
    if rows.size == 0:
        return []
    names = [u.name for u in session.units]
    out = []
    for kind, col, limit in (("dead units", "act_dead", DEAD_FRACTION), ("saturation", "act_saturation", SATURATED_FRACTION)):
        vals = session.layer_metric(col)[rows].astype(np.float64)
        if not np.isfinite(vals).any():
            continue
        med = np.nanmedian(np.where(np.isfinite(vals), vals, np.nan), axis=0)
        counted = set(unit_rows(session.units, col))  # units with an activation function (not attention's statistics)
        hit = [j for j in range(len(names)) if j in counted and np.isfinite(med[j]) and med[j] >= limit]
        if not hit:
            continue
        worst = max(hit, key=lambda j: med[j])
        all_rows = np.flatnonzero(has)
        cols = sorted(counted)
        sampled = session.layer_metric(col)[all_rows][:, cols]
        per_row = np.nanmax(np.where(np.isfinite(sampled), sampled, -1), axis=1) >= limit
        start = _streak_start(per_row, session.steps[all_rows]) if all_rows.size else None
        ev = {"threshold": limit, "worst_unit": names[worst], "worst": float(med[worst]),
              "fractions": {names[j]: float(med[j]) for j in hit}}
        out.append(Finding(kind, [names[j] for j in hit], ev, start))
    return out


def _clean(ev: dict[str, Any]) -> dict[str, Any]:
    """Non-finite floats as text (JSON has no inf or NaN); the rest as plain numbers."""
    out: dict[str, Any] = {}
    for k, v in ev.items():
        if isinstance(v, (float, np.floating)):
            v = float(v)
            out[k] = v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
        else:
            out[k] = v
    return out


def _diverged(session: Session) -> Optional[Finding]:
    steps = session.steps
    loss = session.column("loss").astype(np.float64)
    total = session.column("grad_norm_total").astype(np.float64)
    flag = session.column("diverged") > 0
    bad = flag | (~np.isfinite(total)) | (np.isinf(loss)) | (np.isnan(loss) & ~np.isnan(loss).all())
    step = session.diverged_at
    if step is None and bad.any():
        step = int(steps[np.flatnonzero(bad)[0]])
    if step is None:
        return None
    i = int(np.searchsorted(steps, step))
    what = "the run was marked diverged"
    if i < len(steps):
        if not math.isfinite(loss[i]) and not np.isnan(loss).all():
            what = f"loss = {loss[i]}"
        elif not math.isfinite(total[i]):
            what = f"gradient norm = {total[i]}"
        else:
            what = f"loss = {_g(loss[i])}, gradient norm = {_g(total[i])}"
    last_good = float(loss[:i][np.isfinite(loss[:i])][-1]) if i > 0 and np.isfinite(loss[:i]).any() else None
    return Finding("diverged", [], _clean({"step": step, "what": what, "last_finite_loss": last_good}), step)


def diagnose(session: Session) -> Diagnosis:
    """Name what ``session`` shows (see the module docstring and docs/watch.md)."""
    with warnings.catch_warnings():  # all-NaN columns (a unit never measured) are data, not news
        warnings.simplefilter("ignore", RuntimeWarning)
        return _diagnose(session)


def _diagnose(session: Session) -> Diagnosis:
    n = len(session)
    steps = session.steps
    if n == 0:
        return Diagnosis(["no data"], [], ["train at least one step, then diagnose again"])
    div = _diverged(session)
    # judge the depth and the activations on the rows before any divergence
    hi = n if div is None else max(1, int(np.searchsorted(steps, div.evidence["step"])))
    start = min(_last_command_row(session, steps), hi - 1)
    lo = start + (hi - start) // 2
    findings = ([div] if div else []) + _depth_findings(session, lo, hi, steps) + _stats_findings(session, lo, hi, steps)
    findings.sort(key=lambda f: KINDS.index(f.kind))
    earlier: list[Finding] = []
    if start > 0:  # what the run showed before its last change, if the change ended it
        before = _depth_findings(session, start // 2, start, steps) + _stats_findings(session, start // 2, start, steps)
        now = {f.kind for f in findings}
        for f in before:
            if f.kind not in now:
                f.ended = int(steps[start])
                earlier.append(f)
    verdict = [f.kind for f in findings] or [HEALTHY]
    suggestions: list[str] = []
    kinds = {f.kind for f in findings}
    for kind in FIX_ORDER:
        for s in FIXES[kind] if kind in kinds else ():
            # units that die are ReLU-like already: "use ReLU instead of sigmoid" would mislead
            if s not in suggestions and not (s == _RELU and "dead units" in kinds):
                suggestions.append(s)
    return Diagnosis(verdict, findings, suggestions, (int(steps[lo]), int(steps[hi - 1])), earlier)


assert set(FIXES) == set(KINDS) and {"act_grad_norm", "act_dead"} <= set(LAYER_INDEX) and "loss" in STEP_INDEX
