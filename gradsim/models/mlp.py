"""The MLP GradSim trains, and the surgery a run allows while it runs.

``depth`` hidden blocks Linear -> [BatchNorm1d] -> [LayerNorm] -> activation,
then an output Linear; layers are numbered 1..depth+1 from the input. With
``residual`` on, hidden blocks 2..depth (the ones whose input and output have
the same width) become z + alpha * block(z) with the pre-activation z as the
stream (see ``forward_capture``). The forward pass hands
back every Linear output z, because dL/dz is the backprop signal that vanishes
or explodes (dL/dW alone can look flat across depth: with ReLU and Xavier
the weight gradients stay level while dL/dz decays by ~1/sqrt(2) a layer).
"""
from __future__ import annotations

import math
from typing import Callable, Optional, cast

import torch
import torch.nn.functional as F
from torch import nn

from .. import activations
from ..config import default_residual_alpha
from .initializers import init_linear

def activation_fn(name: str, leaky_slope: float = 0.01) -> Callable[[torch.Tensor], torch.Tensor]:
    """phi as a torch function (gradsim/activations.py defines each one)."""
    return activations.get(name).torch_fn(leaky_slope)


class GradNet(nn.Module):
    """Deep MLP whose activation, batch norm and weights can be changed mid-run."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        depth: int,
        width: int,
        activation: str,
        batchnorm: bool,
        leaky_slope: float = 0.01,
        layernorm: bool = False,
        residual: bool = False,
        residual_alpha: Optional[float] = None,
    ) -> None:
        super().__init__()
        sizes = [n_in] + [width] * depth + [n_out]
        self.depth = depth
        self.width = width
        self.leaky_slope = leaky_slope
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self._linear_list: list[nn.Linear] = list(self.linears)  # type: ignore[arg-type]  # ModuleList iterates as Module
        self.norms = nn.ModuleList()
        self.lnorms = nn.ModuleList()
        self.activations: list[str] = [activation] * depth
        self._fns = [activation_fn(activation, leaky_slope)] * depth
        self.residual = False
        self.residual_alpha = 0.0
        if batchnorm:
            self.set_batchnorm(True)
        if layernorm:
            self.set_layernorm(True)
        if residual:
            self.set_residual(True, residual_alpha)

    @property
    def n_layers(self) -> int:
        return self.depth + 1

    @property
    def has_batchnorm(self) -> bool:
        return len(self.norms) > 0

    @property
    def has_layernorm(self) -> bool:
        return len(self.lnorms) > 0

    def skips(self, layer: int) -> bool:
        """Whether layer ``layer`` (1-based) adds its Linear's output to the stream (2..depth)."""
        return self.residual and 2 <= layer <= self.depth

    # ----------------------------------------------------------- forward
    def forward_capture(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Return (logits, z per layer, activation output per hidden block + the logits).

        Residual connections are pre-activation blocks (He et al. 2016,
        "Identity Mappings in Deep Residual Networks"): the stream is the
        pre-activation z, and for layers 2..depth
            z_l = z_(l-1) + alpha * Linear_l(act(norm(z_(l-1)))).
        So z_l is still what layer l's norm and activation read, dL/dz_l is the
        backprop signal along the stream, and its per-block gain is exactly the
        mean-field sqrt(1 + alpha^2 chi): the skip adds the identity to each
        block's Jacobian, and W_l is independent of the signal it multiplies. (A
        skip around Linear -> act instead lets ReLU's positive mean pile up in
        the stream and the gradient drift by 1 + O(alpha) per block: measured
        14-35x over 100 layers.) Without residual connections this is the plain
        MLP, op for op.
        """
        lins = self._linear_list
        bn = self.norms if self.has_batchnorm else None
        ln = self.lnorms if self.has_layernorm else None
        alpha = self.residual_alpha
        first = lins[0]
        z = F.linear(x, first.weight, first.bias)  # skips Module.__call__: ~5 us a layer
        zs: list[torch.Tensor] = [z]
        hs: list[torch.Tensor] = []
        for i in range(self.depth):
            a = bn[i](z) if bn is not None else z
            if ln is not None:
                a = ln[i](a)
            h = self._fns[i](a)
            hs.append(h)
            lin = lins[i + 1]
            u = F.linear(h, lin.weight, lin.bias)
            z = z + alpha * u if (self.residual and i + 1 < self.depth) else u
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

    def set_layernorm(self, on: bool) -> None:
        """Insert fresh LayerNorm layers (per sample, over the units) after each hidden
        Linear (after batch norm when both are on), or remove them."""
        if on and not self.has_layernorm:
            self.lnorms = nn.ModuleList(nn.LayerNorm(self.width) for _ in range(self.depth))
        elif not on and self.has_layernorm:
            self.lnorms = nn.ModuleList()

    def set_residual(self, on: bool, alpha: Optional[float] = None) -> None:
        """Skip connections around hidden blocks 2..depth with weight ``alpha``
        (None: 1/sqrt(depth)). No parameters change: a pure change of the graph."""
        if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"residual alpha = {alpha!r}: must be a finite number > 0")
        self.residual = bool(on)
        self.residual_alpha = (default_residual_alpha(self.depth) if alpha is None else float(alpha)) if on else 0.0

    def reinit(self, scheme: str, generator: torch.Generator, init_std: float = 0.05, init_scale: float = 0.05, bias_std: float = 0.0) -> None:
        """Re-draw every Linear's weights (same Parameter objects); biases zero or N(0, bias_std^2)."""
        for lin in self._linear_list:
            init_linear(lin, scheme, generator, init_std, init_scale, bias_std)

    # ----------------------------------------------------------- params
    def weights(self) -> list[nn.Parameter]:
        return [cast(nn.Parameter, lin.weight) for lin in self._linear_list]  # the stub types Linear.weight as Tensor

    def biases(self) -> list[nn.Parameter]:
        return [lin.bias for lin in self._linear_list]

    def norm_params(self) -> list[nn.Parameter]:
        """Batch-norm then layer-norm affine parameters."""
        return [p for bn in self.norms for p in bn.parameters()] + [p for m in self.lnorms for p in m.parameters()]

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

