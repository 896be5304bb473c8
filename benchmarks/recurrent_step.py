"""Per-step time of an instrumented recurrent run against a plain torch loop of the same size.

The plain loop is ``nn.RNN/LSTM/GRU(batch_first=True)`` + ``nn.Linear`` on the
last step + ``torch.optim.SGD``, on the trainer's own batch; both sides run
alternately in blocks on one thread and the best block of each is kept, so
both see the same machine load. Usage:

    python benchmarks/recurrent_step.py [--models rnn,lstm,gru] [--reps 5]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from gradsim.config import RunConfig
from gradsim.train.trainer import Trainer

SIZES = ((50, 64), (200, 64), (50, 256), (200, 256))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="rnn,lstm,gru")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--block", type=int, default=5, help="steps per timed block")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("model seq_len width  gradsim_ms  plain_ms  ratio")
    for model in args.models.split(","):
        for T, w in SIZES:
            # lr small enough that no size diverges during the timing (a finished run steps in no time)
            cfg = RunConfig(model=model, dataset="adding", seq_len=T, depth=1, width=w, batch_size=64, lr=1e-4,
                            steps=10**6, stats_every=10, n_samples=1000)
            t = Trainer(cfg)
            t.run(steps=2)
            layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[model](2, w, 1, batch_first=True)
            head = nn.Linear(w, 1)
            opt = torch.optim.SGD([*layer.parameters(), *head.parameters()], lr=1e-4)
            x, y = t.batch(t.step_index)

            def plain(layer: nn.Module = layer, head: nn.Module = head, opt: torch.optim.Optimizer = opt,
                      x: torch.Tensor = x, y: torch.Tensor = y) -> None:
                opt.zero_grad()
                out, _ = layer(x)
                nn.functional.mse_loss(head(out[:, -1]), y).backward()
                opt.step()

            plain()
            ours, ref = [], []
            for _ in range(args.reps):
                for fn, into in ((t.step, ours), (plain, ref)):
                    t0 = time.perf_counter()
                    for _ in range(args.block):
                        fn()
                    into.append((time.perf_counter() - t0) / args.block)
            if t.diverged_at is not None:
                print(f"{model} {T} {w}: the run diverged during the timing; lower lr")
                continue
            a, b = min(ours) * 1e3, min(ref) * 1e3
            print(f"{model:5} {T:7} {w:5}  {a:10.1f}  {b:8.1f}  {a / b:5.2f}", flush=True)


if __name__ == "__main__":
    main()
