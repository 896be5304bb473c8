"""Watch an LSTM learn the adding problem (Hochreiter and Schmidhuber 1997), then diagnose it.

    python examples/watch_lstm.py --steps 500 --seq-len 50 --out runs/watch-lstm
    python -m gradsim diagnose runs/watch-lstm

Each input is T steps of two channels: a value in [0, 1) and a marker that is 1
on exactly two steps; the target is the sum of the two marked values.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from gradsim.watch import watch


def adding_batch(batch: int, seq_len: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.rand(batch, seq_len, generator=gen)
    marks = torch.zeros(batch, seq_len)
    for i in range(batch):
        a, b = torch.randperm(seq_len, generator=gen)[:2]
        marks[i, a] = marks[i, b] = 1.0
    return torch.stack([values, marks], dim=2), (values * marks).sum(1, keepdim=True)


class AddingLSTM(nn.Module):
    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def train(out: str | Path, steps: int = 500, seq_len: int = 50, batch: int = 32, seed: int = 0) -> float:
    """Train, watched into ``out``; returns the last step's MSE."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AddingLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss = torch.tensor(float("nan"))
    with watch(model, opt, out=out) as w:
        for _ in range(steps):
            x, y = adding_batch(batch, seq_len, gen)
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # recorded after this: what the step applies
            opt.step()
            w.loss(loss)
    return float(loss.detach())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seq-len", type=int, default=50)
    ap.add_argument("--out", default="runs/watch-lstm")
    args = ap.parse_args(argv)
    mse = train(args.out, steps=args.steps, seq_len=args.seq_len)
    print(f"last MSE {mse:.4f} (predicting 1.0 always gives about 0.167); session in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
