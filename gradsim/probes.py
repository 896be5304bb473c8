"""Per-layer statistics of one step.

The norms run every step through ``torch._foreach_norm`` (one dispatch for all
layers, 5-10 % of a step); the activation statistics cost 50-70 % of a step
(DESIGN.md section 7), so the trainer only asks for them every ``stats_every``.
"""
from __future__ import annotations

import torch

SAT_TANH = 0.97
SAT_SIGMOID_LO, SAT_SIGMOID_HI = 0.03, 0.97


def norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norm of each tensor, stacked into one 1-D tensor."""
    return torch.stack(torch._foreach_norm(tensors))


def total_norm(per_tensor_norms: list[torch.Tensor]) -> torch.Tensor:
    """L2 norm of the concatenation of tensors, from their individual norms."""
    return torch.linalg.vector_norm(torch.stack(per_tensor_norms))


def saturation(h: torch.Tensor, activation: str) -> torch.Tensor:
    """Fraction of units in the flat region of a saturating activation (0 otherwise)."""
    if activation == "tanh":
        return (h.abs() > SAT_TANH).float().mean()
    if activation == "sigmoid":
        return ((h < SAT_SIGMOID_LO) | (h > SAT_SIGMOID_HI)).float().mean()
    return h.new_zeros(())


def dead_fraction(h: torch.Tensor) -> torch.Tensor:
    """Fraction of units whose output is exactly zero for the whole batch."""
    return (h == 0).all(dim=0).float().mean()


@torch.no_grad()
def activation_stats(hs: list[torch.Tensor], activations: list[str]) -> torch.Tensor:
    """(n_layers, 4): act_mean, act_std, act_saturation, act_dead of each block's output.

    The output layer (the logits) has no activation: saturation and dead are 0.
    """
    rows = []
    for i, h in enumerate(hs):
        act = activations[i] if i < len(activations) else "linear"
        std = h.std() if h.numel() > 1 else h.new_zeros(())
        dead = dead_fraction(h) if i < len(activations) else h.new_zeros(())
        rows.append(torch.stack([h.mean(), std, saturation(h, act), dead]))
    return torch.stack(rows)
