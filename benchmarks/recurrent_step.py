"""Per-step time of an instrumented recurrent run against a plain torch loop of the same size.

The plain loop is ``nn.RNN/LSTM/GRU(batch_first=True)`` + ``nn.Linear`` on the
last step + ``torch.optim.SGD``, on the trainer's own batch; both sides run
alternately in blocks on one thread and the best block of each is kept, so
both see the same machine load. ``--clock cpu`` (the default) times the thread's
CPU time, which a shared machine's other processes barely move; ``--clock wall``
the wall clock. ``--against FILE`` adds a third contender, interleaved with the
other two: the same trainer with the hand-written pass of an older
``gradsim/models/rnn_backprop.py`` (e.g. ``git show main:gradsim/models/rnn_backprop.py > old.py``),
for before/after figures measured side by side. Usage:

    python benchmarks/recurrent_step.py [--models rnn,lstm,gru] [--reps 5] [--against old.py]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from types import ModuleType
from typing import Any, Callable, Optional

import torch
from torch import nn

import gradsim.train.recurrent as recurrent
from gradsim.config import RunConfig
from gradsim.models import rnn_backprop
from gradsim.train.trainer import Trainer

SIZES = ((50, 64), (200, 64), (50, 256), (200, 256))


def _load_pass(path: str) -> ModuleType:
    """The older pass as a module whose ``run`` takes (and ignores) a workspace."""
    spec = importlib.util.spec_from_file_location("rnn_backprop_against", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--against {path!r}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    shim = ModuleType("rnn_backprop_against_shim")
    shim.Workspace = rnn_backprop.Workspace  # type: ignore[attr-defined]
    old_run = mod.run
    shim.run = lambda net, x, y, regression, ws=None: old_run(net, x, y, regression)  # type: ignore[attr-defined]
    return shim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="rnn,lstm,gru")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--block", type=int, default=5, help="steps per timed block")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--against", default=None, help="an older rnn_backprop.py to time side by side")
    args = ap.parse_args()
    torch.set_num_threads(1)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    older: Optional[ModuleType] = _load_pass(args.against) if args.against else None
    print(f"clock: {args.clock}; best of {args.reps} blocks of {args.block} steps")
    print("model seq_len width  gradsim_ms  plain_ms  ratio" + ("  older_ms  older_ratio" if older else ""))
    for model in args.models.split(","):
        for T, w in SIZES:
            # lr small enough that no size diverges during the timing (a finished run steps in no time)
            cfg = RunConfig(model=model, dataset="adding", seq_len=T, depth=1, width=w, batch_size=64, lr=1e-4,
                            steps=10**6, stats_every=10, n_samples=1000)
            t = Trainer(cfg)
            t.run(steps=2)
            t_old = None
            if older is not None:
                t_old = Trainer(cfg)
                t_old.run(steps=2)
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

            def ours(t: Any = t) -> None:
                recurrent.rnn_backprop = rnn_backprop
                t.step()

            def theirs(t: Any = t_old) -> None:
                assert older is not None
                recurrent.rnn_backprop = older
                t.step()

            plain()
            contenders: list[tuple[Callable[[], None], list[float]]] = [(ours, []), (plain, [])]
            if t_old is not None:
                theirs()
                contenders.append((theirs, []))
            for _ in range(args.reps):
                for fn, into in contenders:
                    t0 = clock()
                    for _ in range(args.block):
                        fn()
                    into.append((clock() - t0) / args.block)
            recurrent.rnn_backprop = rnn_backprop
            if t.diverged_at is not None or (t_old is not None and t_old.diverged_at is not None):
                print(f"{model} {T} {w}: the run diverged during the timing; lower lr")
                continue
            a, b = min(contenders[0][1]) * 1e3, min(contenders[1][1]) * 1e3
            line = f"{model:5} {T:7} {w:5}  {a:10.1f}  {b:8.1f}  {a / b:5.2f}"
            if t_old is not None:
                c = min(contenders[2][1]) * 1e3
                line += f"  {c:8.1f}  {c / b:11.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
