"""Watch a small pre-norm transformer learn to recall the first token of a sequence, then diagnose it.

    python examples/watch_transformer.py --steps 400 --out runs/watch-transformer
    python -m gradsim diagnose runs/watch-transformer

The sequence is one class token (0-3) followed by noise tokens (4-15); the
target is the class of the first token. Learning-rate warm-up, as transformers like.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from gradsim.watch import watch

CLASSES, VOCAB = 4, 16


def recall_batch(batch: int, seq_len: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.randint(CLASSES, VOCAB, (batch, seq_len), generator=gen)
    target = torch.randint(0, CLASSES, (batch,), generator=gen)
    tokens[:, 0] = target
    return tokens, target


class TinyTransformer(nn.Module):
    def __init__(self, d_model: int = 32, heads: int = 4, layers: int = 2, seq_len: int = 16) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Parameter(torch.randn(seq_len, d_model) * 0.02)
        block = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, CLASSES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tok(tokens) + self.pos[: tokens.shape[1]]
        return self.head(self.encoder(h).mean(1))


def train(out: str | Path, steps: int = 400, seq_len: int = 16, batch: int = 32, seed: int = 0) -> float:
    """Train, watched into ``out``; returns the accuracy of the last batch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = TinyTransformer(seq_len=seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
    acc = 0.0
    with watch(model, opt, out=out) as w:
        for _ in range(steps):
            x, y = recall_batch(batch, seq_len, gen)
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            warmup.step()
            acc_t = (logits.argmax(1) == y).float().mean()
            w.loss(loss, accuracy=acc_t)
            acc = float(acc_t)
    return acc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--out", default="runs/watch-transformer")
    args = ap.parse_args(argv)
    acc = train(args.out, steps=args.steps)
    print(f"last batch accuracy {acc:.2f} (chance 0.25); session in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
