"""Instrumentation overhead: GradSim's Trainer vs a bare PyTorch loop, side by side.

Same network (depth D, width 64, batch 128, 1 thread), same data; the two are
run in short interleaved blocks so machine noise hits both alike, and the ratio
of median block times is printed. Times are this thread's CPU time
(time.thread_time), so other processes on this shared 2-core machine do not
count against either side; wall-clock ratios are printed too. Target: Trainer <= 1.15x bare at depth 50 with
every per-layer norm every step and activation stats every 10 steps.

    python benchmarks/overhead.py [--depths 10,50,100] [--blocks 15] [--steps 40]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from gradsim.config import RunConfig  # noqa: E402
from gradsim.trainer import Trainer  # noqa: E402


def bare_loop(cfg: RunConfig, trainer: Trainer):
    """The loop a student would write: Sequential, backward, step. Same data and batches."""
    torch.manual_seed(cfg.seed)
    layers: list[nn.Module] = []
    n_in = trainer.data.n_inputs
    for _ in range(cfg.depth):
        layers += [nn.Linear(n_in, cfg.width), nn.Tanh()]
        n_in = cfg.width
    layers.append(nn.Linear(n_in, trainer.data.n_classes))
    net = nn.Sequential(*layers)
    with torch.no_grad():  # same starting weights, so both do the same arithmetic
        for mine, theirs in zip([m for m in net if isinstance(m, nn.Linear)], trainer.net.linears):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, foreach=True)
    x_all, y_all = torch.from_numpy(trainer.data.x_train), torch.from_numpy(trainer.data.y_train)
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(len(y_all), generator=g)
    pos = [0]

    def step() -> None:
        nonlocal perm
        b = cfg.batch_size
        if pos[0] + b > len(perm):
            perm = torch.randperm(len(y_all), generator=g)
            pos[0] = 0
        idx = perm[pos[0] : pos[0] + b]
        pos[0] += b
        loss = F.cross_entropy(net(x_all[idx]), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # the bare loop also reads its loss once per step

    step.net = net  # type: ignore[attr-defined]
    return step


def tensorboard_loop(cfg: RunConfig, trainer: Trainer, logdir: str):
    """How people otherwise get per-layer gradient norms: the bare loop plus every
    layer's ||dL/dW|| logged to TensorBoard each step. None if tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard is not a GradSim dependency
        return None
    bare = bare_loop(cfg, trainer)
    linears = [m for m in bare.net if isinstance(m, nn.Linear)]
    writer = SummaryWriter(logdir)
    count = [0]

    def step() -> None:
        bare()  # leaves this step's .grad in place until the next zero_grad
        for i, lin in enumerate(linears):
            writer.add_scalar(f"grad_norm/layer{i + 1}", lin.weight.grad.norm().item(), count[0])
        count[0] += 1

    return step


def measure(depth: int, blocks: int, steps: int, stats_every: int) -> tuple[float, float]:
    cfg = RunConfig(depth=depth, width=64, batch_size=128, activation="tanh", init="xavier_normal", lr=0.01,
                    steps=10**8, stats_every=stats_every, max_memory_mb=64)
    trainer = Trainer(cfg)
    bare = bare_loop(cfg, trainer)
    tb = tensorboard_loop(cfg, trainer, tempfile.mkdtemp(prefix="gradsim-tb-"))
    for _ in range(10):  # warm-up all
        bare()
        trainer.step()
        if tb:
            tb()
    # Alternate single steps (bare, gradsim, bare, ...) and sum them per block of
    # `steps` steps (a whole stats_every period), so both see the same noise.
    t_bare, t_gs, w_bare, w_gs, t_tb = [], [], [], [], []
    clock = time.thread_time
    for _ in range(blocks):
        sb = sg = wb = wg = st = 0.0
        for _ in range(steps):
            w0, t0 = time.perf_counter(), clock()
            bare()
            w1, t1 = time.perf_counter(), clock()
            trainer.step()
            w2, t2 = time.perf_counter(), clock()
            sb, sg, wb, wg = sb + t1 - t0, sg + t2 - t1, wb + w1 - w0, wg + w2 - w1
            if tb:
                t3 = clock()
                tb()
                st += clock() - t3
        t_bare.append(sb / steps)
        t_gs.append(sg / steps)
        w_bare.append(wb / steps)
        w_gs.append(wg / steps)
        t_tb.append(st / steps)
    med = statistics.median
    return med(t_bare), med(t_gs), med(w_gs) / med(w_bare), (med(t_tb) if tb else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", default="10,50,100")
    p.add_argument("--blocks", type=int, default=40)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--stats-every", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, width 64, batch 128, stats every {a.stats_every}")
    print(f"{'depth':>5} {'bare ms/step':>13} {'gradsim ms/step':>16} {'ratio (CPU)':>12} {'ratio (wall)':>13} {'tensorboard ratio':>18}")
    for d in (int(x) for x in a.depths.split(",")):
        b, g, wall, tbt = measure(d, a.blocks, a.steps, a.stats_every)
        tb_txt = f"{tbt / b:>18.3f}" if tbt is not None else f"{'(not installed)':>18}"
        print(f"{d:>5} {b * 1e3:>13.2f} {g * 1e3:>16.2f} {g / b:>12.3f} {wall:>13.3f} {tb_txt}")
    print("tensorboard ratio: a bare loop that logs every layer's ||dL/dW|| with SummaryWriter.add_scalar")


if __name__ == "__main__":
    main()
