"""What the instrumented transformer step costs against a plain torch loop of the same model.

    .venv/bin/python benchmarks/transformer_overhead.py [--depths 6,24] [--widths 64,128] [--norms pre,post] [--seq-len 32] [--batch 64] [--steps 20]

Plain side: an input Linear, a positional table, ``nn.TransformerEncoder`` of
``nn.TransformerEncoderLayer(batch_first=True, dropout=0, norm_first=pre)``
and a Linear head on the first token, cross entropy, Adam. GradSim side: a
Trainer of the same size and norm placement (every unit's norms every step,
statistics every 10). Steps alternate one by one between the two so a busy
machine slows both alike; the ratio is of the median thread CPU time per step.
Every size and norm placement runs in one invocation; the last lines are the
rows of benchmarks/RESULTS.md's table.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", default="6,24")
    p.add_argument("--widths", default="64,128")
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--norms", default="pre,post")
    a = p.parse_args(argv)
    norms = a.norms.split(",")
    if any(n not in ("pre", "post") for n in norms):
        p.error(f"--norms {a.norms!r}: a comma-separated list of pre, post")

    import torch
    from torch import nn

    from gradsim.config import RunConfig
    from gradsim.train.trainer import Trainer

    torch.set_num_threads(1)
    print(f"seq_len {a.seq_len}, batch {a.batch}, 4 heads, Adam, {a.steps} alternating steps each; thread CPU ms per step (median)")
    print(f"{'norm':>4} {'depth':>5} {'width':>5} {'plain':>8} {'gradsim':>8} {'ratio':>6}")
    table = []
    for depth, width, norm in ((int(d), int(w), n) for d in a.depths.split(",") for w in a.widths.split(",") for n in norms):
        cfg = RunConfig(model="transformer", dataset="recall-last", seq_len=a.seq_len, depth=depth, width=width, heads=4,
                        activation="gelu", norm_position=norm, n_samples=max(4 * a.batch, 400), batch_size=a.batch,
                        steps=10 * a.steps + 10, optimizer="adam", lr=1e-3)
        t = Trainer(cfg)
        embed, pos = nn.Linear(1, width), nn.Parameter(torch.zeros(a.seq_len, width))
        layer = nn.TransformerEncoderLayer(width, 4, 4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm == "pre")
        enc = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width) if norm == "pre" else None, enable_nested_tensor=False)
        head = nn.Linear(width, 2)
        params = [*embed.parameters(), pos, *enc.parameters(), *head.parameters()]
        opt = torch.optim.Adam(params, lr=1e-3)

        ours, theirs = [], []
        for k in range(a.steps + 2):
            x, y = t.batch(t.step_index)
            c0 = time.thread_time()
            opt.zero_grad()
            out = enc(embed(x) + pos[: x.shape[1]])
            nn.functional.cross_entropy(head(out[:, 0]), y).backward()
            opt.step()
            c1 = time.thread_time()
            t.step()
            c2 = time.thread_time()
            if k >= 2:  # the first steps build buffers and import lazily
                theirs.append(c1 - c0)
                ours.append(c2 - c1)
        mp, mo = statistics.median(theirs) * 1e3, statistics.median(ours) * 1e3
        print(f"{norm:>4} {depth:>5} {width:>5} {mp:>8.2f} {mo:>8.2f} {mo / mp:>6.2f}", flush=True)
        table.append(f"| {norm}-LN | {depth} | {width} | {mp:.1f} | {mo:.1f} | {mo / mp:.2f}x |")
    print("| norm | depth | width | plain ms | GradSim ms | ratio |\n| --- | --- | --- | --- | --- | --- |")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
