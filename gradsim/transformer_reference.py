"""The reference a transformer run's per-block gradient profile is read against (Xiong et al. 2020).

Xiong et al.'s Theorem 1 is about weights at initialisation and a large width d:

- Pre-LN: every block adds an O(1) branch to the residual stream, so the
  stream entering the final norm has grown like sqrt(L) and the final norm
  divides every gradient by it; the residual adds then carry the same
  gradient back to every block. Each block's weight gradient is
  O(d sqrt(ln d / L)): level across the blocks, and 1/sqrt(L) of a one-block
  net's. That is a line to draw: level, through the measured profile's
  geometric mean (the theorem fixes the shape and the L-dependence, not the
  constant).
- Post-LN: the last block's weight gradient is O(d sqrt(ln d)), independent
  of L, and the paper's figure shows the per-layer gradient growing toward
  the output. The bound gives no shape to draw, and at GradSim's width the
  absolute rise does not hold in every setting (benchmarks/ln_profile.py);
  what holds is the rise *relative* to Pre-LN on the same weights. So it is
  said in words, pointing to the fork that shows it.
- Trained weights: the theorem's independence assumptions are gone after the
  first update, so no line, and the words say so.

Numpy only, like gradsim.theory_domain: the window (which never imports
torch) and the export read the same reference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class Reference:
    """What to draw over a transformer row's block-unit ``grad_norm`` profile."""

    #: Unit row indices of the block units (attn 1, mlp 1, attn 2, ...), in order.
    rows: tuple[int, ...]
    #: The reference value per block unit (None: no line, ``words`` say why).
    line: Optional[np.ndarray]
    words: str


def _block_rows(session: Any) -> tuple[int, ...]:
    return tuple(i for i, u in enumerate(session.units) if u.kind == "block")


def norm_position_at(session: Any, step: int) -> str:
    """The norm position the row of ``step`` was computed with (the config's, moved by norm events)."""
    pos = str((session.config or {}).get("norm_position", "pre"))
    for ev in session.events:
        if ev.kind == "norm" and ev.step <= step and ev.value in ("pre", "post"):
            pos = ev.value
    return pos


def fresh_at(session: Any, step: int) -> bool:
    """Whether the weights of ``step``'s row are a fresh draw (step 0, or an init event at that step)."""
    return step == 0 or any(ev.kind == "init" and ev.step == step for ev in session.events)


def reference_at(session: Any, row: int) -> Optional[Reference]:
    """The reference for ``row`` of a transformer session; None for other families or a bad row."""
    cfg = session.config or {}
    if cfg.get("model") != "transformer" or not 0 <= row < len(session):
        return None
    rows = _block_rows(session)
    step = int(session.steps[row])
    depth = int(cfg.get("depth", len(rows) // 2))
    if not fresh_at(session, step):
        return Reference(rows, None, (
            f"no reference line at step {step}; Xiong et al.'s scaling is derived for weights at initialisation, "
            f"and by step {step} training has correlated them with the data (step 0, or a re-init, shows it)"))
    if norm_position_at(session, step) == "post":
        return Reference(rows, None, (
            "no reference line for Post-LN; fork the run and set norm=pre on one branch; what holds at this width is "
            "Post-LN's rise relative to Pre-LN on the same weights; Xiong et al. bound its last block's gradient "
            "independent of the depth L, a bound with no per-block shape to draw"))
    values = np.asarray(session.layer_metric("grad_norm")[row], dtype=np.float64)[list(rows)]
    ok = np.isfinite(values) & (values > 0)
    if not ok.any():
        return Reference(rows, None, "no reference line: no finite block gradient at this step")
    level = float(np.exp(np.mean(np.log(values[ok]))))
    spread = float(np.log10(values[ok].max() / values[ok].min()))
    width = cfg.get("width")
    return Reference(rows, np.full(len(rows), level), (
        f"reference: Xiong et al., Pre-LN at init; level across the blocks; measured blocks span {spread:.2f} decades "
        f"around it (the theorem is for large width, this net has d = {width}); 1/sqrt(L) = {1 / math.sqrt(depth):.2f} "
        f"of a one-block net's at L = {depth}, drawn through the measured geometric mean"))
