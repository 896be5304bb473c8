"""Recurrent networks (vanilla RNN, LSTM, GRU), unrolled one time step at a time.

The parameters carry torch's own names and shapes (``rnn.weight_ih_l0``,
``rnn.weight_hh_l0``, ``rnn.bias_ih_l0``, ``rnn.bias_hh_l0``, ``_l1``.. when
stacked, ``head.weight``, ``head.bias``), so a plain
``torch.nn.RNN/LSTM/GRU(batch_first=True)`` with an ``nn.Linear`` head on the
last step's output, loaded with the same state dict, computes the same
outputs (tests/engine/test_rnn.py). The forward pass is written out per
time step with the cells' own equations, because torch's fused layer gives no
handle on the hidden state of each step: here every top-layer h_t is a
tensor of the graph, so the backward pass leaves dL/dh_t on it, the total
gradient reaching step t through the head and through the recurrence.

Gate order inside the stacked weights is torch's: LSTM (i, f, g, o), GRU
(r, z, n).
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Optional, cast

import torch
from torch import nn

from ..config import GATES, parse_recurrent_init
from .initializers import _orthogonal, init_linear


class RecurrentNet(nn.Module):
    """``depth`` stacked recurrent layers of ``width`` units and a Linear head on the last step."""

    def __init__(self, cell: str, n_in: int, n_out: int, depth: int, width: int, nonlinearity: str = "tanh", seq_len: int = 50) -> None:
        super().__init__()
        self.seq_len = seq_len  # the length the run's units are laid out for (any length runs)
        if cell not in GATES:
            raise ValueError(f"cell = {cell!r} is not known; allowed: {', '.join(GATES)}")
        if cell == "rnn" and nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity = {nonlinearity!r}: a vanilla RNN allows tanh or relu")
        self.cell, self.n_in, self.n_out, self.depth, self.width = cell, n_in, n_out, depth, width
        self.nonlinearity = nonlinearity if cell == "rnn" else "tanh"
        g = GATES[cell]
        self.rnn = nn.Module()
        for k in range(depth):
            fan_in = n_in if k == 0 else width
            self.rnn.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(g * width, fan_in)))
            self.rnn.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(g * width, width)))
            self.rnn.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.zeros(g * width)))
            self.rnn.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.zeros(g * width)))
        self.head = nn.Linear(width, n_out)

    # ----------------------------------------------------------- params
    def layer_params(self, k: int) -> tuple[nn.Parameter, nn.Parameter, nn.Parameter, nn.Parameter]:
        """(W_ih, W_hh, b_ih, b_hh) of layer ``k`` (0 = the one reading the input)."""
        r = self.rnn
        return (getattr(r, f"weight_ih_l{k}"), getattr(r, f"weight_hh_l{k}"), getattr(r, f"bias_ih_l{k}"), getattr(r, f"bias_hh_l{k}"))

    def recurrent_weights(self) -> list[nn.Parameter]:
        return [self.layer_params(k)[1] for k in range(self.depth)]

    def param_kinds(self) -> dict[str, list[nn.Parameter]]:
        """The trainer's arenas: input and head weights, the recurrent weights
        (apart, so re-drawing W_hh resets only their optimizer state), biases."""
        weights = [self.layer_params(k)[0] for k in range(self.depth)] + [cast(nn.Parameter, self.head.weight)]
        biases = [b for k in range(self.depth) for b in self.layer_params(k)[2:]] + [self.head.bias]
        return {"weight": weights, "recurrent": self.recurrent_weights(), "bias": biases}

    def param_groups(self) -> list[tuple[str, nn.Parameter, nn.Parameter]]:
        """(unit name, weight, bias) of each parameter group, in unit order."""
        out = []
        for k in range(self.depth):
            w_ih, w_hh, b_ih, b_hh = self.layer_params(k)
            out.append((f"input {k + 1}", w_ih, b_ih))
            out.append((f"recurrent {k + 1}", w_hh, b_hh))
        out.append(("head", cast(nn.Parameter, self.head.weight), self.head.bias))
        return out

    # ----------------------------------------------------------- init
    @torch.no_grad()
    def reinit(
        self, scheme: str, generator: torch.Generator, init_std: float = 0.05, init_scale: float = 0.05,
        bias_std: float = 0.0, recurrent_init: str = "orthogonal", forget_bias: float = 1.0,
    ) -> None:
        """Draw every parameter in place: ``scheme`` for each gate block of W_ih and
        for the head, ``recurrent_init`` for W_hh, biases zero or N(0, bias_std^2),
        then the LSTM forget gate's b_ih block set to ``forget_bias`` (its b_hh block 0)."""
        w = self.width
        for k in range(self.depth):
            w_ih, _, b_ih, b_hh = self.layer_params(k)
            for block in w_ih.split(w, dim=0):
                init_linear(SimpleNamespace(weight=block, bias=None), scheme, generator, init_std, init_scale)  # type: ignore[arg-type]
        init_linear(self.head, scheme, generator, init_std, init_scale)
        self.reinit_recurrent(recurrent_init, generator)
        for k in range(self.depth):
            for b in self.layer_params(k)[2:]:
                if bias_std > 0:
                    b.normal_(0.0, bias_std, generator=generator)
                else:
                    b.zero_()
        if bias_std > 0:
            self.head.bias.normal_(0.0, bias_std, generator=generator)
        else:
            self.head.bias.zero_()
        if self.cell == "lstm":
            self.set_forget_bias(forget_bias)

    @torch.no_grad()
    def set_forget_bias(self, value: float) -> None:
        """Every LSTM layer's forget-gate bias: ``value`` in b_ih's forget block, 0 in b_hh's."""
        if self.cell != "lstm":
            raise ValueError(f"a {self.cell} has no forget gate (only the LSTM does)")
        w = self.width
        for k in range(self.depth):
            _, _, b_ih, b_hh = self.layer_params(k)
            b_ih[w : 2 * w] = value
            b_hh[w : 2 * w] = 0.0

    @torch.no_grad()
    def reinit_recurrent(self, recurrent_init: str, generator: torch.Generator) -> None:
        """Re-draw every W_hh, gate block by gate block: orthogonal, identity, or
        N(0, G^2 / width) for ``normal:G`` (spectral radius about G)."""
        scheme, gain = parse_recurrent_init(recurrent_init)
        w = self.width
        for w_hh in self.recurrent_weights():
            for block in w_hh.split(w, dim=0):
                if scheme == "orthogonal":
                    _orthogonal(block, generator)
                elif scheme == "identity":
                    block.copy_(torch.eye(w))
                else:
                    assert gain is not None
                    block.normal_(0.0, gain / math.sqrt(w), generator=generator)

    # ----------------------------------------------------------- passes
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_capture(x, retain=False)[0]

    def forward_capture(self, x: torch.Tensor, retain: bool = True) -> tuple[torch.Tensor, list[torch.Tensor], Optional[list[torch.Tensor]]]:
        """(head output, the top layer's h_1..h_T, its saturating gate per step or None).

        With ``retain`` each top-layer h_t keeps its gradient (``h_t.grad`` after
        backward = dL/dh_t). The gate is the LSTM's forget gate or the GRU's
        update gate z (the one that decides what is kept), as probabilities.
        """
        batch, T, _ = x.shape
        inp = x
        hs: list[torch.Tensor] = []
        gates: Optional[list[torch.Tensor]] = None
        for k in range(self.depth):
            top = k == self.depth - 1
            w_ih, w_hh, b_ih, b_hh = self.layer_params(k)
            # All steps' input projections in one matmul, split by unbind: indexing proj[:, t]
            # would make each step's backward write a full-size zero gradient (quadratic in T).
            # RNN and LSTM add b_hh there too (it sits outside the recurrent product); the GRU's
            # b_hn is gated by r, so it stays in the step.
            merged = self.cell != "gru"
            proj = torch.nn.functional.linear(inp, w_ih, b_ih + b_hh if merged else b_ih).unbind(1)
            w_hh_t = w_hh.t()
            h = x.new_zeros(batch, self.width)
            c = x.new_zeros(batch, self.width) if self.cell == "lstm" else None
            hs = []
            gates = [] if top and self.cell != "rnn" else None
            for t in range(T):
                h, c, gate = self._cell(proj[t], h, c, w_hh_t, b_hh)
                if top and retain and h.requires_grad:
                    h.retain_grad()
                hs.append(h)
                if gates is not None and gate is not None:
                    gates.append(gate.detach())
            if not top:
                inp = torch.stack(hs, dim=1)
        return self.head(hs[-1]), hs, gates

    def _cell(
        self, xp: torch.Tensor, h: torch.Tensor, c: Optional[torch.Tensor], w_hh_t: torch.Tensor, b_hh: torch.Tensor
    ) -> tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """One step of the cell (torch's equations): (h_t, c_t, saturating gate).

        ``xp`` is the step's input projection (with b_hh already in it for RNN and
        LSTM); ``w_hh_t`` is W_hh transposed. Few, fused ops: on the CPU each op's
        dispatch, forward and backward, costs about as much as its arithmetic.
        """
        if self.cell == "rnn":
            z = torch.addmm(xp, h, w_hh_t)
            return (torch.tanh(z) if self.nonlinearity == "tanh" else torch.relu(z)), None, None
        if self.cell == "lstm":
            pre = torch.addmm(xp, h, w_hh_t)
            i, f, _, o = torch.sigmoid(pre).chunk(4, dim=1)  # the g block's sigmoid is unused: one op instead of three
            g = torch.tanh(pre.chunk(4, dim=1)[2])
            assert c is not None
            c = torch.addcmul(f * c, i, g)
            return o * torch.tanh(c), c, f
        hp = torch.addmm(b_hh, h, w_hh_t)
        xr, xz, xn = xp.chunk(3, dim=1)
        hr, hz, hn = hp.chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        zg = torch.sigmoid(xz + hz)
        n = torch.tanh(torch.addcmul(xn, r, hn))
        return torch.lerp(n, h, zg), None, zg

    def spectral_radius(self) -> float:
        """Largest |eigenvalue| of the top layer's W_hh (its first gate block for LSTM/GRU)."""
        w_hh = self.recurrent_weights()[-1].detach()[: self.width].double()
        return float(torch.linalg.eigvals(w_hh).abs().max())


def describe(net: Any) -> str:
    """A short name for summaries: ``tanh rnn``, ``lstm``, ``gru``."""
    return f"{net.nonlinearity} rnn" if net.cell == "rnn" else str(net.cell)
