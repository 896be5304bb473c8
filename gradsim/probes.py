"""Per-layer statistics of one step.

The norms run every step through ``torch._foreach_norm`` (one dispatch for all
layers, 5-10 % of a step); the activation statistics cost 50-70 % of a step
(DESIGN.md section 7), so the trainer only asks for them every ``stats_every``.
"""
from __future__ import annotations

import math

import torch

SAT_TANH = 0.97
SAT_SIGMOID_LO, SAT_SIGMOID_HI = 0.03, 0.97


_SATURATION = {
    "tanh": lambda f: f.abs() > SAT_TANH,
    "sigmoid": lambda f: (f < SAT_SIGMOID_LO) | (f > SAT_SIGMOID_HI),
}


@torch.no_grad()
def activation_stats(hs: list[torch.Tensor], activations: list[str]) -> torch.Tensor:
    """(n_layers, 4): act_mean, act_std, act_saturation, act_dead of each block's output.

    The hidden blocks all have the same shape, so they are stacked and reduced
    in a handful of vectorised ops instead of five ops per layer. The output
    layer (the logits) has no activation: its saturation and dead are 0.
    """
    hidden = torch.stack(hs[:-1]) if len(hs) > 1 else hs[0].new_zeros((0,) + tuple(hs[0].shape))
    out = hs[-1]
    n = hidden.shape[0]
    flat = hidden.reshape(n, -1)
    m = flat.shape[1]
    # Two-pass mean/std with fast reductions (sum, then the norm of the centred
    # values): ~5x cheaper here than std_mean, and exact enough (no cancellation).
    mean = flat.sum(dim=1) / m
    std = torch.linalg.vector_norm(flat - mean[:, None], dim=1) / math.sqrt(max(m - 1, 1))
    acts = activations[:n]
    sat = torch.zeros_like(mean)
    dead = torch.zeros_like(mean)
    for name, fn in _SATURATION.items():
        rows = [i for i, a in enumerate(acts) if a == name]
        if rows:  # usually every layer: then no gather copy
            sat[rows] = fn(flat if len(rows) == n else flat[rows]).float().mean(dim=1)
    relu_rows = [i for i, a in enumerate(acts) if a == "relu"]
    if relu_rows:  # relu outputs are >= 0: a unit is dead when its batch maximum is 0
        sel = hidden if len(relu_rows) == n else hidden[relu_rows]
        dead[relu_rows] = (sel.amax(dim=1) == 0).float().mean(dim=1)
    hidden_rows = torch.stack([mean, std, sat, dead], dim=1)
    out_std = out.std() if out.numel() > 1 else out.new_zeros(())
    out_row = torch.stack([out.mean(), out_std, out.new_zeros(()), out.new_zeros(())]).unsqueeze(0)
    return torch.cat([hidden_rows, out_row])

