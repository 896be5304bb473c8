"""One batch for every step of a Trainer: tests compare numbers on the very same data."""
import torch


def fixed_batch(trainer, n: int, seed: int):
    """Pin ``trainer``'s batch to ``n`` samples drawn with ``seed``; returns (x, y)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(trainer._y), generator=g)[:n]
    x, y = trainer._x[idx].clone(), trainer._y[idx].clone()
    trainer._batch = lambda: (x, y)
    return x, y
