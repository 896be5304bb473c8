"""The MLP GradSim trains, and the surgery a run allows while it runs.

``depth`` hidden blocks Linear -> [BatchNorm1d] -> activation, then an output
Linear; layers are numbered 1..depth+1 from the input. The forward pass hands
back every Linear output z, because dL/dz is the backprop signal that vanishes
or explodes (dL/dW alone can look flat across depth, DESIGN.md section 3).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import ACTIVATIONS
from .initializers import init_linear

def activation_fn(name: str, leaky_slope: float = 0.01) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation = {name!r} is not known; allowed: {', '.join(ACTIVATIONS)}")
    table: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, leaky_slope),
        "elu": F.elu,
        "gelu": F.gelu,
        "selu": F.selu,
        "linear": lambda t: t,
    }
    return table[name]


class GradNet(nn.Module):
    """Deep MLP whose activation, batch norm and weights can be changed mid-run."""

    def __init__(self, n_in: int, n_out: int, depth: int, width: int, activation: str, batchnorm: bool, leaky_slope: float = 0.01) -> None:
        super().__init__()
        sizes = [n_in] + [width] * depth + [n_out]
        self.depth = depth
        self.width = width
        self.leaky_slope = leaky_slope
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self._linear_list = list(self.linears)
        self.norms = nn.ModuleList()
        self.activations: list[str] = [activation] * depth
        self._fns = [activation_fn(activation, leaky_slope)] * depth
        if batchnorm:
            self.set_batchnorm(True)

    @property
    def n_layers(self) -> int:
        return self.depth + 1

    @property
    def has_batchnorm(self) -> bool:
        return len(self.norms) > 0

    # ----------------------------------------------------------- forward
    def forward_capture(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Return (logits, z per layer, block output per layer; the last is the logits)."""
        zs: list[torch.Tensor] = []
        hs: list[torch.Tensor] = []
        h = x
        bn = self.norms if self.has_batchnorm else None
        lins = self._linear_list
        for i in range(self.depth):
            lin = lins[i]
            z = F.linear(h, lin.weight, lin.bias)  # skips Module.__call__: ~5 us a layer
            zs.append(z)
            a = bn[i](z) if bn is not None else z
            h = self._fns[i](a)
            hs.append(h)
        lin = lins[-1]
        z = F.linear(h, lin.weight, lin.bias)
        zs.append(z)
        hs.append(z)
        return z, zs, hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_capture(x)[0]

    # ----------------------------------------------------------- surgery
    def set_activation(self, name: str, layer: Optional[int] = None) -> None:
        """Switch the activation of every hidden block, or of hidden layer ``layer`` (1-based)."""
        fn = activation_fn(name, self.leaky_slope)
        if layer is None:
            self.activations = [name] * self.depth
            self._fns = [fn] * self.depth
            return
        if not 1 <= layer <= self.depth:
            raise ValueError(f"layer = {layer} has no activation: allowed 1 to {self.depth} (layer {self.depth + 1} is the output)")
        self.activations[layer - 1] = name
        self._fns[layer - 1] = fn

    def set_batchnorm(self, on: bool) -> None:
        """Insert fresh BatchNorm1d layers after each hidden Linear, or remove them."""
        if on and not self.has_batchnorm:
            self.norms = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(self.depth))
        elif not on and self.has_batchnorm:
            self.norms = nn.ModuleList()

    def reinit(self, scheme: str, generator: torch.Generator, init_std: float = 0.05, init_scale: float = 0.05) -> None:
        """Re-draw every Linear's weights (same Parameter objects) and zero the biases."""
        for lin in self.linears:
            init_linear(lin, scheme, generator, init_std, init_scale)

    # ----------------------------------------------------------- params
    def weights(self) -> list[torch.Tensor]:
        return [lin.weight for lin in self.linears]

    def biases(self) -> list[torch.Tensor]:
        return [lin.bias for lin in self.linears]

    def norm_params(self) -> list[torch.Tensor]:
        return [p for bn in self.norms for p in bn.parameters()]

    def param_kinds(self) -> dict[str, list[nn.Parameter]]:
        """Every parameter, grouped by kind: the Linear weights, the Linear biases,
        then the affine parameters of each normalisation module type, in layer order.

        The trainer keeps one flat arena per kind (gradsim/arena.py): the
        parameters of a kind are created, removed and re-drawn together, so
        the optimizer's per-kind state matches torch's per-parameter state.
        A new module type with parameters gets its own kind automatically.
        """
        kinds: dict[str, list[nn.Parameter]] = {"weight": list(self.weights()), "bias": list(self.biases())}
        for m in self.modules():
            if m is self or isinstance(m, (nn.Linear, nn.ModuleList)):
                continue
            own = list(m.parameters(recurse=False))
            if own:
                kinds.setdefault(type(m).__name__.lower(), []).extend(own)
        return kinds

