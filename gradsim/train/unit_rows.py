"""The norm columns of layers.csv for a family whose units own several parameters each.

An MLP layer owns one weight and one bias, so its row reads one norm each. A
transformer sublayer owns several (q/k/v and the output projection; the MLP's
two Linears) and a stream unit none. Here every per-parameter norm the step
measured is combined into its unit's row as the norm of the unit's parameters
taken together, ||(W_1, W_2, ..)|| = sqrt(sum ||W_i||^2), summed in float64:
the same number as the norm of the unit's parameters flattened into one
vector. A unit with no weight has NaN in the parameter columns.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..arena import Arena


class UnitRows:
    """Which per-parameter norms make each unit's row, for one set of arenas."""

    def __init__(self, net: Any, arenas: Sequence[Arena], units: Sequence[Any]) -> None:
        self.arenas = list(arenas)
        groups = {name: (ws, bs) for name, ws, bs in net.unit_groups()}
        offsets, pos = [], 0
        for a in self.arenas:
            offsets.append(pos)
            pos += len(a)
        weights = self.arenas[0]

        def where(p: torch.Tensor) -> int:
            for a, off in zip(self.arenas, offsets):
                if p in a:
                    return off + a.index(p)
            raise KeyError("a unit's parameter is in none of the trainer's arenas")

        self.n_units = len(units)
        #: per unit: positions of its weights and biases in the per-parameter norm vector,
        #: and of its weights in the weight arena (weight and update norms)
        self.w_idx: list[list[int]] = []
        self.b_idx: list[list[int]] = []
        self.wa_idx: list[list[int]] = []
        for u in units:
            ws, bs = groups.get(u.name, ([], []))
            self.w_idx.append([where(p) for p in ws])
            self.b_idx.append([where(p) for p in bs])
            self.wa_idx.append([weights.index(p) for p in ws])

    def matches(self, arenas: Sequence[Arena]) -> bool:
        return len(arenas) == len(self.arenas) and all(a is b for a, b in zip(arenas, self.arenas))

    def rows(self, param_norms: torch.Tensor, weight_norms: torch.Tensor, update_norms: torch.Tensor, signal: Sequence[float], n_cols: int) -> np.ndarray:
        """(units, n_cols) float32: grad_norm, bias_grad_norm, weight_norm, update_norm,
        update_ratio, act_grad_norm in the first six columns, NaN elsewhere."""
        pn = param_norms.double().numpy()
        wn = weight_norms.double().numpy()
        upd = update_norms.double().numpy()
        out = np.full((self.n_units, n_cols), np.nan, np.float64)

        def combine(v: np.ndarray, idx: list[int]) -> float:
            return float(np.sqrt(np.sum(v[idx] ** 2))) if idx else float("nan")

        for j in range(self.n_units):
            w, b, wa = self.w_idx[j], self.b_idx[j], self.wa_idx[j]
            out[j, 0] = combine(pn, w)
            out[j, 1] = combine(pn, b)
            out[j, 2] = combine(wn, wa)
            out[j, 3] = combine(upd, wa)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[j, 4] = out[j, 3] / out[j, 2]
            out[j, 5] = signal[j]
        return out.astype(np.float32)
