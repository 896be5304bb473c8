"""Pre-LN vs Post-LN: the per-block gradient profile at initialisation, in plain torch.

    .venv/bin/python benchmarks/ln_profile.py [--depth 12] [--width 64] [--heads 4] [--seq-len 16] [--seeds 5]

A measurement, not a test: nothing here is tuned to give an expected answer.
For each seed it builds ``nn.TransformerEncoder`` of
``nn.TransformerEncoderLayer(batch_first=True, dropout=0, norm_first=...)``
(torch's default init), an input Linear, a learned positional table
(N(0, 0.02^2)) and a Linear head on the first token (each block drawn on its
own: torch's encoder would clone one), draws one batch of the
recall-last task (the class in the last token, N(0, 1) noise before it), and
takes one backward pass of the cross entropy. Per block l it records

- ``param``: the norm of all of block l's parameter gradients taken together, and
- ``stream``: ||dL/dx_l|| of the residual stream entering block l,

fits log10(value) = a + b (l - 1) by least squares over the blocks, and
prints the fitted change from block 1 to block depth, b (depth - 1), in
decades (positive: larger toward the output). The same seed gives Pre-LN and
Post-LN the same weights (torch draws them in the same order), so Post - Pre
is a paired difference. No gradsim code runs, so the numbers are an
independent reference for the simulator's transformer rows.
"""
from __future__ import annotations

import argparse
import statistics
import sys


def profile(norm_first: bool, seed: int, depth: int, width: int, heads: int, seq_len: int, batch: int, act: str) -> tuple[list[float], list[float]]:
    """(per-block parameter-gradient norms, per-block stream-gradient norms) of one init."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    embed = nn.Linear(1, width)
    pos = nn.Parameter(torch.randn(seq_len, width) * 0.02)
    layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation=act, batch_first=True, norm_first=norm_first)
    encoder = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width) if norm_first else None, enable_nested_tensor=False)
    # TransformerEncoder deep-copies one layer, so every block would start with the same
    # weights; each block draws its own here, as in a model trained from scratch.
    encoder.layers = nn.ModuleList(
        nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation=act, batch_first=True, norm_first=norm_first)
        for _ in range(depth)
    )
    head = nn.Linear(width, 2)
    gen = torch.Generator().manual_seed(10_000 + seed)
    y = torch.randint(0, 2, (batch,), generator=gen)
    x = torch.randn(batch, seq_len, 1, generator=gen)
    x[:, -1, 0] = 2.0 * y - 1.0
    h = embed(x) + pos
    streams = []
    for blk in encoder.layers:
        h.retain_grad()
        streams.append(h)
        h = blk(h)
    out = encoder.norm(h) if encoder.norm is not None else h
    nn.functional.cross_entropy(head(out[:, 0]), y).backward()
    params = [float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in blk.parameters()))) for blk in encoder.layers]
    stream = [float(s.grad.double().norm()) for s in streams]
    return params, stream


def decades(values: list[float]) -> float:
    """Least-squares slope of log10(values) over the block index, times (blocks - 1)."""
    import math

    n = len(values)
    if n < 2:
        return float("nan")
    xs = list(range(n))
    ys = [math.log10(v) for v in values]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)
    return slope * (n - 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=12)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--activation", default="gelu", choices=("gelu", "relu"))
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    print(f"depth {a.depth}, d_model {a.width}, {a.heads} heads, seq_len {a.seq_len}, batch {a.batch}, {a.activation}; "
          f"fitted change from block 1 to block {a.depth}, in decades")
    print(f"{'seed':>4} {'pre param':>10} {'post param':>10} {'post-pre':>9} {'pre stream':>10} {'post stream':>11} {'post-pre':>9}")
    rows = []
    for seed in range(a.seeds):
        pre_p, pre_s = profile(True, seed, a.depth, a.width, a.heads, a.seq_len, a.batch, a.activation)
        post_p, post_s = profile(False, seed, a.depth, a.width, a.heads, a.seq_len, a.batch, a.activation)
        r = (decades(pre_p), decades(post_p), decades(pre_s), decades(post_s))
        rows.append(r)
        print(f"{seed:>4} {r[0]:>10.3f} {r[1]:>10.3f} {r[1] - r[0]:>9.3f} {r[2]:>10.3f} {r[3]:>11.3f} {r[3] - r[2]:>9.3f}")
    cols = list(zip(*rows))
    mean = [statistics.fmean(c) for c in cols]
    print(f"{'mean':>4} {mean[0]:>10.3f} {mean[1]:>10.3f} {mean[1] - mean[0]:>9.3f} {mean[2]:>10.3f} {mean[3]:>11.3f} {mean[3] - mean[2]:>9.3f}")
    rel = [r[1] - r[0] for r in rows]
    print(f"Post-LN's parameter profile rises relative to Pre-LN's in {sum(d > 0 for d in rel)} of {len(rel)} seeds "
          f"(paired difference {min(rel):.3f} to {max(rel):.3f} decades).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
