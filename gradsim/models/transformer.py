"""A transformer encoder whose residual stream and sublayer outputs are all tensors of the graph.

The network: a Linear input embedding of each token's channels plus a learned
positional embedding, ``depth`` encoder blocks (multi-head self-attention with
``heads`` heads, then a two-layer MLP width -> 4 width -> width with the
config's activation), residual adds, and a Linear head on the *first token*
of the last stream (the [CLS] convention of BERT). Reading one fixed token
makes "how far must attention look" a property of the task: ``recall-last``
puts the answer seq_len - 1 positions away (gradsim/data/sequences.py).

Layer norm sits where ``norm_position`` says (Xiong et al. 2020):

- ``pre``:  x <- x + Attn(LN1(x));  x <- x + MLP(LN2(x));  a final LN before the head.
- ``post``: x <- LN1(x + Attn(x));  x <- LN2(x + MLP(x));  no final LN (LN2 already normalises).

The two placements hold the same parameters: switching moves the norms and
leaves every weight where it is. The final norm's parameters exist in both, so
a run can switch; Post-LN does not use them (their gradient is zero).

The names and shapes of the blocks are torch's own:
``encoder.layers.{i}.self_attn.in_proj_weight`` (q, k, v stacked),
``...self_attn.out_proj``, ``...linear1``, ``...linear2``, ``...norm1``,
``...norm2``, ``encoder.norm``, so ``nn.TransformerEncoder`` of
``nn.TransformerEncoderLayer(batch_first=True, dropout=0, norm_first=pre)``
loaded with the same state dict computes the same stream
(tests/engine/test_transformer.py). The attention is written out here (not
torch's fused kernel) because the softmax probabilities are what the
attention statistics read.
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Optional, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import activations
from ..config import FF_MULT, NORM_POSITIONS
from .initializers import init_linear

#: A softmax row counts as saturated when its largest probability is above this.
SATURATED_ROW = 0.99
#: Std of the learned positional embedding at (re-)initialisation (GPT-2's 0.02).
POS_STD = 0.02


class SelfAttention(nn.Module):
    """nn.MultiheadAttention's parameters (q, k, v stacked in ``in_proj``), under its names."""

    in_proj_weight: nn.Parameter
    in_proj_bias: nn.Parameter
    out_proj: nn.Linear

    def __init__(self, width: int) -> None:
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)


class EncoderLayer(nn.Module):
    """One block's parameters under torch's names (the arithmetic is in TransformerNet)."""

    self_attn: SelfAttention
    linear1: nn.Linear
    linear2: nn.Linear
    norm1: nn.LayerNorm
    norm2: nn.LayerNorm

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(width)
        self.linear1 = nn.Linear(width, FF_MULT * width)
        self.linear2 = nn.Linear(FF_MULT * width, width)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)


class Encoder(nn.Module):
    """nn.TransformerEncoder's parameters: ``layers`` and the final ``norm``."""

    layers: nn.ModuleList
    norm: nn.LayerNorm

    def __init__(self, width: int, heads: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)


class TransformerNet(nn.Module):
    """Encoder of ``depth`` blocks over ``seq_len`` tokens of ``n_in`` channels, a head on token 1."""

    def __init__(
        self, n_in: int, n_out: int, depth: int, width: int, heads: int, activation: str = "gelu",
        seq_len: int = 16, norm_position: str = "pre", leaky_slope: float = 0.01,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"heads = {heads}: width = {width} must be divisible by it")
        self.n_in, self.n_out, self.depth, self.width, self.heads, self.seq_len = n_in, n_out, depth, width, heads, seq_len
        self.leaky_slope = leaky_slope
        self.activations: list[str] = [activation] * depth  # what summaries and the trainer's state read
        self._fn = activations.get(activation).torch_fn(leaky_slope)
        self.norm_position = "pre"
        self.set_norm_position(norm_position)
        self.embed = nn.Linear(n_in, width)
        self.pos = nn.Parameter(torch.zeros(seq_len, width))
        self.encoder = Encoder(width, heads, depth)
        self.head = nn.Linear(width, n_out)
        #: Normalised attention entropy of each block's heads, (depth, heads), from the last pass that took statistics.
        self.head_entropy = np.full((depth, heads), np.nan)
        #: Per block, each head's (entropy, saturated-row fraction) rows of the last pass that took statistics.
        self._head_rows: list[torch.Tensor] = []

    # ----------------------------------------------------------- structure
    @property
    def layers(self) -> list[EncoderLayer]:
        return cast(list[EncoderLayer], list(self.encoder.layers))

    @property
    def n_layers(self) -> int:
        """Units (rows of layers.csv): depth + 1 streams, 2 depth sublayers, embedding and head,
        then one per attention head of every block (depth x heads)."""
        return 3 * self.depth + 3 + self.depth * self.heads

    def set_norm_position(self, position: str) -> None:
        if position not in NORM_POSITIONS:
            raise ValueError(f"norm_position = {position!r} is not known; allowed: {', '.join(NORM_POSITIONS)}")
        self.norm_position = position

    def structure(self) -> dict[str, Any]:
        """What Trainer.state() records of the structure (no parameter changes with it)."""
        return {"activations": list(self.activations), "norm_position": self.norm_position}

    def load_structure(self, st: dict[str, Any]) -> None:
        self.set_norm_position(st.get("norm_position", self.norm_position))

    # ----------------------------------------------------------- params
    def unit_groups(self) -> list[tuple[str, list[nn.Parameter], list[nn.Parameter]]]:
        """(unit name, weights, biases) of every unit that owns parameters, in unit order.

        The layer norms belong to no unit (as the MLP's): layers.csv has no
        column for them; they still count in the total gradient norm.
        """
        out: list[tuple[str, list[nn.Parameter], list[nn.Parameter]]] = []
        for i, lay in enumerate(self.layers, 1):
            att = lay.self_attn
            out.append((f"attn {i}", [att.in_proj_weight, cast(nn.Parameter, att.out_proj.weight)], [att.in_proj_bias, att.out_proj.bias]))
            out.append((f"mlp {i}", [cast(nn.Parameter, lay.linear1.weight), cast(nn.Parameter, lay.linear2.weight)], [lay.linear1.bias, lay.linear2.bias]))
        out.append(("embed", [cast(nn.Parameter, self.embed.weight), self.pos], [self.embed.bias]))
        out.append(("head", [cast(nn.Parameter, self.head.weight)], [self.head.bias]))
        return out

    def weights(self) -> list[nn.Parameter]:
        return [w for _, ws, _ in self.unit_groups() for w in ws]

    def biases(self) -> list[nn.Parameter]:
        return [b for _, _, bs in self.unit_groups() for b in bs]

    def norm_params(self) -> list[nn.Parameter]:
        mods = [n for lay in self.layers for n in (lay.norm1, lay.norm2)] + [self.encoder.norm]
        return [p for m in mods for p in (m.weight, m.bias)]

    def param_kinds(self) -> dict[str, list[nn.Parameter]]:
        """The trainer's arenas: matrices (and the positional table), biases, layer-norm affines."""
        return {"weight": self.weights(), "bias": self.biases(), "layernorm": self.norm_params()}

    # ----------------------------------------------------------- init
    @torch.no_grad()
    def reinit(self, scheme: str, generator: torch.Generator, init_std: float = 0.05, init_scale: float = 0.05, bias_std: float = 0.0) -> None:
        """Draw every weight in place: ``scheme`` for each Linear (q, k and v as three
        width x width blocks, as separate projections), the positional table from
        N(0, 0.02^2), biases zero or N(0, bias_std^2). Layer norms are left as they are
        (1 and 0 at the start), as the MLP's re-init leaves its norms."""
        for lay in self.layers:
            for block in lay.self_attn.in_proj_weight.split(self.width, dim=0):
                init_linear(SimpleNamespace(weight=block, bias=None), scheme, generator, init_std, init_scale)  # type: ignore[arg-type]
            for lin in (lay.self_attn.out_proj, lay.linear1, lay.linear2):
                init_linear(lin, scheme, generator, init_std, init_scale)
        init_linear(self.embed, scheme, generator, init_std, init_scale)
        init_linear(self.head, scheme, generator, init_std, init_scale)
        self.pos.normal_(0.0, POS_STD, generator=generator)
        for b in self.biases():
            if bias_std > 0:
                b.normal_(0.0, bias_std, generator=generator)
            else:
                b.zero_()

    # ----------------------------------------------------------- passes
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_units(x)[0]

    def forward_units(self, x: torch.Tensor, stats: bool = False) -> tuple[torch.Tensor, list[Optional[torch.Tensor]], Optional[torch.Tensor]]:
        """(logits, the signal tensor of each unit or None, the (units, 4) activation statistics or None).

        Signals in unit order: the stream x_1 .. x_(depth+1) entering each block
        (x_(depth+1): leaving the last one), then each block's attention and
        MLP sublayer output (before its residual add), then None for the
        embedding and head (parameter units) and for every attention head
        (statistics only). Statistics only when ``stats``
        (docs/session-format.md says which column holds what).
        """
        batch, T, _ = x.shape
        if T > self.seq_len:
            raise ValueError(f"sequences of {T} tokens: this network has positions for {self.seq_len}")
        h = self.embed(x) + self.pos[:T]
        pre = self.norm_position == "pre"
        streams: list[Optional[torch.Tensor]] = []
        subs: list[Optional[torch.Tensor]] = []
        self._head_rows = []
        rows: list[torch.Tensor] = []
        sub_rows: list[torch.Tensor] = []
        for i, lay in enumerate(self.layers):
            streams.append(h)
            if stats:
                rows.append(_stream_row(h))
            a, p = self._attention(lay, lay.norm1(h) if pre else h)
            h = h + a if pre else lay.norm1(h + a)
            m, u = self._mlp(lay, lay.norm2(h) if pre else h)
            h = h + m if pre else lay.norm2(h + m)
            subs += [a, m]
            if stats:
                sub_rows.append(self._attention_row(i, p))
                sub_rows.append(self._mlp_row(u))
        streams.append(h)
        if stats:
            rows.append(_stream_row(h))
        out = self.encoder.norm(h) if pre else h
        logits = self.head(out[:, 0])
        table = None
        if stats:
            nan = torch.full((2, 4), float("nan"), dtype=x.dtype)
            table = torch.cat([torch.stack(rows), torch.stack(sub_rows), nan, *self._head_rows])
        return logits, streams + subs + [None] * (2 + self.depth * self.heads), table

    def _attention(self, lay: EncoderLayer, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the sublayer's output, the softmax probabilities [batch, heads, query, key])."""
        batch, T, d = z.shape
        H, dh = self.heads, d // self.heads
        att = lay.self_attn
        q, k, v = F.linear(z, att.in_proj_weight, att.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(batch, T, H, dh).transpose(1, 2) for t in (q, k, v))
        p = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), dim=-1)
        o = (p @ v).transpose(1, 2).reshape(batch, T, d)
        return att.out_proj(o), p

    def _mlp(self, lay: EncoderLayer, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the sublayer's output, its hidden activation phi(linear1(z)))."""
        u = self._fn(lay.linear1(z))
        return lay.linear2(u), u

    # ----------------------------------------------------------- statistics
    @torch.no_grad()
    def _attention_row(self, block: int, p: torch.Tensor) -> torch.Tensor:
        """[mean entropy over heads, std across heads, saturated-row fraction, lowest head's entropy].

        Entropy of each softmax row -sum p log p, divided by log(keys) so 1 is
        uniform attention over every token and 0 attention on one token;
        averaged over the batch and the query positions per head. Each head's
        own row, [entropy, NaN, its saturated-row fraction, NaN], is kept for
        the head units (``_head_rows``).
        """
        p = p.detach()
        keys = p.shape[-1]
        ent = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # [batch, heads, query]
        per_head = ent.mean(dim=(0, 2)) / math.log(keys) if keys > 1 else torch.zeros(p.shape[1], dtype=p.dtype)
        self.head_entropy[block] = per_head.double().numpy()
        sat_rows = (p.amax(dim=-1) > SATURATED_ROW).to(p.dtype)  # [batch, heads, query]
        nan = per_head.new_full(per_head.shape, float("nan"))
        self._head_rows.append(torch.stack([per_head, nan, sat_rows.mean(dim=(0, 2)), nan], dim=1))
        return torch.stack([per_head.mean(), per_head.std(correction=0), sat_rows.mean(), per_head.min()])

    @torch.no_grad()
    def _mlp_row(self, u: torch.Tensor) -> torch.Tensor:
        """[mean, std, saturated fraction, dead fraction] of the MLP's hidden activation.

        A hidden unit is dead when it outputs zero at every token of the batch
        (the relu family); saturation uses the activation registry's test.
        """
        u = u.detach()
        act = activations.get(self.activations[0])
        flat = u.reshape(-1, u.shape[-1])
        sat = act.saturated(flat).to(u.dtype).mean() if act.saturated_outside is not None else u.new_zeros(())
        dead = (flat.amax(dim=0) == 0).to(u.dtype).mean() if act.can_die else u.new_zeros(())
        return torch.stack([flat.mean(), flat.std(), sat, dead])


@torch.no_grad()
def _stream_row(h: torch.Tensor) -> torch.Tensor:
    """[mean, std, NaN, NaN]: the stream has no activation function to saturate or die."""
    h = h.detach()
    nan = h.new_full((), float("nan"))
    return torch.stack([h.mean(), h.std(), nan, nan])


def describe(net: Any) -> str:
    """A short name for summaries: ``pre-ln transformer``."""
    return f"{net.norm_position}-ln transformer"
