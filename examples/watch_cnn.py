"""Watch a small ResNet-like CNN learn the 8x8 digits, then ask GradSim what it saw.

    python examples/watch_cnn.py --steps 300 --out runs/watch-cnn
    gradsim diagnose runs/watch-cnn          # (or: python -m gradsim diagnose ...)

Copy the three marked lines into your own training loop to watch your model.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from gradsim.watch import watch  # (1) import (or: import gradsim.watch, then gradsim.watch(...))
from gradsim.data.datasets import make_dataset


class Block(nn.Module):
    """conv-BN-ReLU-conv-BN plus the identity, then ReLU (He et al. 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)


class SmallResNet(nn.Module):
    def __init__(self, channels: int = 16, blocks: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.blocks = nn.Sequential(*[Block(channels) for _ in range(blocks)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.relu(self.bn(self.stem(x.view(-1, 1, 8, 8)))))
        return self.fc(self.pool(h).flatten(1))


def train(out: str | Path, steps: int = 300, batch: int = 64, seed: int = 0, channels: int = 16, blocks: int = 3) -> float:
    """Train the CNN for ``steps`` steps, watched into ``out``; returns the test accuracy."""
    torch.manual_seed(seed)
    data = make_dataset("digits", seed=seed)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    model = SmallResNet(channels, blocks)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    with watch(model, opt, out=out) as w:  # (2) start watching
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch,), generator=gen)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.loss(loss)  # (3) optional: the loss curve
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(data.x_test)).argmax(1)
    return float((pred == torch.from_numpy(data.y_test)).float().mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default="runs/watch-cnn")
    ap.add_argument("--replace", action="store_true", help="replace an earlier session in --out")
    args = ap.parse_args(argv)
    if args.replace and Path(args.out).is_dir():
        shutil.rmtree(args.out)
    acc = train(args.out, steps=args.steps)
    print(f"test accuracy {acc:.3f}; session in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
