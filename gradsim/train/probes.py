"""Per-layer statistics of one step.

The norms run every step through ``torch._foreach_norm`` (one dispatch for all
layers, 5-10 % of a step); the activation statistics cost 50-70 % of a step
(docs/architecture.md#pitfalls-measured-here), so the trainer only asks for them every ``stats_every``.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from ..activations import REGISTRY

#: Activations whose outputs can saturate, and those whose units can die
#: (the registry in gradsim/activations.py says which, with the thresholds).
_SATURATING = tuple(n for n, a in REGISTRY.items() if a.saturated_outside is not None)
_DYING = tuple(n for n, a in REGISTRY.items() if a.can_die)


class StatsWorkspace:
    """Buffers reused by every sampled step, so the statistics allocate nothing.

    Why: the stacked activations and their temporaries are megabytes at depth
    50; allocating them fresh each sample maps and unmaps memory, and those
    page faults cost more than the arithmetic (measured: ~2x the time of the
    statistics themselves on this machine).
    """

    def __init__(self) -> None:
        self._key: Optional[tuple] = None
        self._stack_key: Optional[tuple] = None

    def buffers(self, n: int, shape: tuple[int, ...], dtype: torch.dtype, need_stack: bool = True) -> tuple[Optional[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stack, tmp, mask, mask2); the stack only when asked for (a caller that
        already holds the layers in one block never needs that copy's memory)."""
        key = (n, shape, dtype)
        if key != self._key:
            m = math.prod(shape)
            self.tmp = torch.empty((n, m), dtype=dtype)
            self.mask = torch.empty((n, m), dtype=torch.bool)
            self.mask2 = torch.empty((n, m), dtype=torch.bool)
            self._key = key
        stack = None
        if need_stack:
            if self._stack_key != key:
                self.stack = torch.empty((n,) + shape, dtype=dtype)
                self._stack_key = key
            stack = self.stack
        return stack, self.tmp, self.mask, self.mask2


@torch.no_grad()
def activation_stats(
    hs: list[torch.Tensor],
    activations: list[str],
    workspace: Optional[StatsWorkspace] = None,
    stacked: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """(n_layers, 4): act_mean, act_std, act_saturation, act_dead of each block's output.

    The hidden blocks all have the same shape, so they are stacked and reduced
    in a handful of vectorised ops instead of five ops per layer. The output
    layer (the logits) has no activation: its saturation and dead are 0.
    With a ``workspace`` the stack and the temporaries reuse its buffers;
    ``stacked`` (``[n, batch, width]``, contiguous) is the hidden blocks
    already in one tensor (the hand-written pass keeps them so): no copy then.
    """
    out = hs[-1]
    n = len(hs) - 1
    if n == 0:
        hidden = out.new_zeros((0,) + tuple(out.shape))
        tmp = mask = mask2 = None
    elif workspace is not None:
        stack, tmp, mask, mask2 = workspace.buffers(n, tuple(hs[0].shape), hs[0].dtype, need_stack=stacked is None)
        hidden = stacked if stacked is not None else torch.stack(hs[:-1], out=stack)
    else:
        hidden = stacked if stacked is not None else torch.stack(hs[:-1])
        tmp = mask = mask2 = None
    flat = hidden.reshape(n, -1)
    m = flat.shape[1]
    # Two-pass mean/std with fast reductions (sum, then the norm of the centred
    # values): ~5x cheaper here than std_mean, and exact enough (no cancellation).
    mean = flat.sum(dim=1) / m
    centred = torch.sub(flat, mean[:, None], out=tmp) if tmp is not None else flat - mean[:, None]
    std = torch.linalg.vector_norm(centred, dim=1) / math.sqrt(max(m - 1, 1))
    acts = activations[:n]
    sat = torch.zeros_like(mean)
    dead = torch.zeros_like(mean)
    for name in _SATURATING:
        rows = [i for i, a in enumerate(acts) if a == name]
        if not rows:
            continue
        if len(rows) == n and tmp is not None and mask is not None and mask2 is not None:  # usually every layer: no gather, no allocation
            _saturated_into(name, flat, tmp, mask, mask2)
            sat = mask.sum(dim=1).to(mean.dtype) / m  # = mean of the 0/1 mask, exactly
        else:
            sat[rows] = REGISTRY[name].saturated(flat if len(rows) == n else flat[rows]).float().mean(dim=1)
    relu_rows = [i for i, a in enumerate(acts) if a in _DYING]
    if relu_rows:  # relu outputs are >= 0: a unit is dead when its batch maximum is 0
        sel = hidden if len(relu_rows) == n else hidden[relu_rows]
        dead[relu_rows] = (sel.amax(dim=1) == 0).float().mean(dim=1)
    hidden_rows = torch.stack([mean, std, sat, dead], dim=1)
    out_std = out.std() if out.numel() > 1 else out.new_zeros(())
    out_row = torch.stack([out.mean(), out_std, out.new_zeros(()), out.new_zeros(())]).unsqueeze(0)
    return torch.cat([hidden_rows, out_row])


def _saturated_into(name: str, flat: torch.Tensor, tmp: torch.Tensor, mask: torch.Tensor, mask2: torch.Tensor) -> None:
    """``mask`` = ``REGISTRY[name].saturated(flat)``, written into the buffers."""
    window = REGISTRY[name].saturated_outside
    assert window is not None
    lo, hi = window
    if lo == -hi:  # symmetric (tanh): one comparison of |f|
        torch.abs(flat, out=tmp)
        torch.gt(tmp, hi, out=mask)
    else:  # below the low or above the high threshold
        above = mask2
        torch.lt(flat, lo, out=mask)
        torch.gt(flat, hi, out=above)
        mask.logical_or_(above)
