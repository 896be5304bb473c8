"""Named weight-initialisation schemes (the README lists them).

Each scheme fills a Linear's weight in place from an explicit generator, so a
re-initialisation in the middle of a run is as reproducible as the first one.
Biases start at zero unless the config asks for a bias std: the schemes are
about the weight variance, which is what sets the per-layer gain of the
backward signal.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..config import INITS

def _fans(w: torch.Tensor) -> tuple[int, int]:
    fan_out, fan_in = w.shape
    return fan_in, fan_out


def _normal(std: float) -> Callable[[torch.Tensor, torch.Generator], None]:
    def fill(w: torch.Tensor, g: torch.Generator) -> None:
        w.normal_(0.0, std, generator=g)

    return fill


def _uniform(bound: float) -> Callable[[torch.Tensor, torch.Generator], None]:
    def fill(w: torch.Tensor, g: torch.Generator) -> None:
        w.uniform_(-bound, bound, generator=g)

    return fill


def weight_std(scheme: str, fan_in: int, fan_out: int, init_std: float = 0.05, init_scale: float = 0.05) -> float:
    """Standard deviation of the weights a scheme draws (the theory's sigma_w / sqrt(fan_in))."""
    table = {
        "xavier_uniform": math.sqrt(2.0 / (fan_in + fan_out)),
        "xavier_normal": math.sqrt(2.0 / (fan_in + fan_out)),
        "he_uniform": math.sqrt(2.0 / fan_in),
        "he_normal": math.sqrt(2.0 / fan_in),
        "lecun_normal": math.sqrt(1.0 / fan_in),
        "orthogonal": math.sqrt(1.0 / max(fan_in, fan_out)),
        "normal": init_std,
        "uniform": init_scale / math.sqrt(3.0),
        "zeros": 0.0,
    }
    return table[scheme]


@torch.no_grad()
def init_linear(
    linear: torch.nn.Linear, scheme: str, generator: torch.Generator, init_std: float = 0.05, init_scale: float = 0.05, bias_std: float = 0.0
) -> None:
    """Re-initialise one Linear layer in place (same Parameter objects); biases are
    zero, or N(0, bias_std^2) drawn after the weights when ``bias_std`` > 0."""
    if scheme not in INITS:
        raise ValueError(f"init = {scheme!r} is not known; allowed: {', '.join(INITS)}")
    w = linear.weight
    fan_in, fan_out = _fans(w)
    std = weight_std(scheme, fan_in, fan_out, init_std, init_scale)
    if scheme in ("xavier_uniform", "he_uniform", "uniform"):
        _uniform(std * math.sqrt(3.0))(w, generator)
    elif scheme == "orthogonal":
        _orthogonal(w, generator)
    elif scheme == "zeros":
        w.zero_()
    else:
        _normal(std)(w, generator)
    if linear.bias is not None:
        if bias_std > 0:
            linear.bias.normal_(0.0, bias_std, generator=generator)
        else:
            linear.bias.zero_()


def _orthogonal(w: torch.Tensor, g: torch.Generator) -> None:
    """Like torch.nn.init.orthogonal_ (gain 1), but drawn from our generator."""
    rows, cols = w.shape
    flat = torch.empty(max(rows, cols), min(rows, cols)).normal_(0.0, 1.0, generator=g)
    q, r = torch.linalg.qr(flat)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if rows < cols:
        q = q.T
    w.copy_(q[:rows, :cols])
