"""Where a recorded theory prediction applies, for every family that records one.

The MLP's rule lives in theory_domain, the vanilla RNN's in theory_domain_rnn (which
builds on the MLP's); this module picks between them, so that neither imports the other
both ways.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .metrics import LAYER_INDEX
from .theory_domain import Verdict, mlp_verdict_at
from .theory_domain_rnn import rnn_verdict_at

_PRED = LAYER_INDEX["pred_gain"]


def verdict_at(session: Any, row: int) -> Optional[Verdict]:
    """The verdict on recorded row ``row`` of a Session (None: no prediction there,
    no theory for the family, or nothing to test)."""
    if (session.config or {}).get("model") == "rnn":
        return rnn_verdict_at(session, row)
    return mlp_verdict_at(session, row)


def session_verdicts(session: Any) -> tuple[np.ndarray, np.ndarray]:
    """(in_domain, gain_error) per recorded row: 1.0 / 0.0 and the geometric-mean ratio
    where a prediction was recorded and tested, NaN on every other row."""
    n = len(session)
    flag = np.full(n, np.nan)
    err = np.full(n, np.nan)
    if n == 0 or (session.config or {}).get("model", "mlp") not in ("mlp", "rnn"):
        return flag, err
    rows = np.flatnonzero(np.isfinite(session.layers[:, 0, _PRED]))
    for i in rows.tolist():
        v = verdict_at(session, i)
        if v is not None:
            flag[i] = 1.0 if v.in_domain else 0.0
            err[i] = v.gain_error
    return flag, err
