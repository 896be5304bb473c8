"""Time per step of GradSim vs a plain PyTorch loop, as whole processes, start-up subtracted.

    python benchmarks/overhead.py [--depths 10,50,100] [--rounds 5] [--quick] [--steps-scale X] [--src BEFORE_CHECKOUT]

Each side is its own process, started fresh: GradSim's Trainer (everything the
headless ``gradsim run`` computes: every per-layer norm every step, activation
statistics and the theory prediction every 10th step), the same plus the
export (``python -m gradsim run``, which writes every recorded row to CSV), a
plain loop (``nn.Sequential`` + ``torch.optim.SGD`` with its defaults, as a
student writes it), and that loop logging every layer's ||dL/dW|| with
``torch.utils.tensorboard`` (how people get these numbers otherwise; needs the
``bench`` extra). Same data, width 64, batch 128, tanh, SGD, 1 torch thread.

With ``--src`` a fifth kind, ``before``, runs that checkout's Trainer the same way,
interleaved with the others in every round (the before/after figures of
RESULTS.md section 4.1b).

Every kind runs N steps and 1 step; time per step = (T(N) - T(1)) / (N - 1),
so start-up (interpreter, imports, building the net) cancels out. Kinds are
interleaved within each round and the median over rounds is reported, so load
from the shared machine hits all alike. CPU time (user + system of the child,
from os.wait4) is the main figure: on a loaded machine it excludes waiting for a
core; wall-clock ratios are printed beside it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("plain", "gradsim", "gradsim-run", "tensorboard")
STEPS = {10: 1500, 50: 400, 100: 200}


# ---------------------------------------------------------------- children
def _data(depth: int):
    from gradsim.config import RunConfig
    from gradsim.data.datasets import make_dataset

    cfg = RunConfig(depth=depth, width=64, batch_size=128, activation="tanh", init="xavier_normal", lr=0.01)
    return cfg, make_dataset(cfg.dataset, cfg.n_samples, cfg.noise, cfg.seed, cfg.test_fraction)


def child_plain(depth: int, steps: int, tensorboard: bool) -> None:
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(1)
    cfg, data = _data(depth)
    torch.manual_seed(cfg.seed)
    layers: list[nn.Module] = []
    n_in = data.n_inputs
    for _ in range(depth):
        layers += [nn.Linear(n_in, cfg.width), nn.Tanh()]
        n_in = cfg.width
    layers.append(nn.Linear(n_in, data.n_classes))
    net = nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    perm, pos, b = torch.randperm(len(y), generator=g), 0, cfg.batch_size
    writer = linears = None
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(tempfile.mkdtemp(prefix="gradsim-tb-"))
        linears = [m for m in net if isinstance(m, nn.Linear)]
    for step in range(steps):
        if pos + b > len(perm):
            perm, pos = torch.randperm(len(y), generator=g), 0
        idx = perm[pos : pos + b]
        pos += b
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        if writer is not None:
            for i, lin in enumerate(linears):
                writer.add_scalar(f"grad_norm/layer{i + 1}", lin.weight.grad.norm().item(), step)
        opt.step()
        loss.item()
    if writer is not None:
        writer.close()


def child_gradsim(depth: int, steps: int) -> None:
    import torch

    from gradsim.train.trainer import Trainer

    torch.set_num_threads(1)
    cfg, _ = _data(depth)
    Trainer(cfg.with_changes(steps=steps)).run()


def _child_cmd(kind: str, depth: int, steps: int, out: str) -> list[str]:
    if kind == "gradsim-run":
        return [sys.executable, "-m", "gradsim", "run", "--depth", str(depth), "--width", "64", "--batch-size", "128",
                "--activation", "tanh", "--init", "xavier_normal", "--lr", "0.01", "--steps", str(steps), "--out", out]
    return [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--depth", str(depth), "--steps", str(steps)]


SRC: Path | None = None  # --src: the before checkout, run as kind "before"


def run_child(kind: str, depth: int, steps: int) -> tuple[float, float]:
    """(wall s, CPU s) of one whole child process."""
    out = tempfile.mkdtemp(prefix="gradsim-ovh-")
    src = SRC if kind == "before" else ROOT
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    child = "gradsim" if kind == "before" else kind
    t0 = time.perf_counter()
    p = subprocess.Popen(_child_cmd(child, depth, steps, str(Path(out) / "s")), cwd=out, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode() if p.stderr else ""
    if status != 0:
        raise RuntimeError(f"{kind} depth {depth} failed: {err[-1500:]}")
    return wall, ru.ru_utime + ru.ru_stime


def has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depths", default="10,50,100")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="2 rounds, a quarter of the steps")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--src", help="a checkout of the version before a change: its Trainer runs as kind 'before', interleaved")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply the steps per process (more steps: less start-up noise)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--depth", type=int, help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    global SRC
    if a.src:
        SRC = Path(a.src).resolve()
        if not (SRC / "gradsim" / "__init__.py").exists():
            p.error(f"--src {a.src}: no gradsim package there")
    if a.child:
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(ROOT)).split(os.pathsep)[0])
        if a.child == "gradsim":
            child_gradsim(a.depth, a.steps)
        else:
            child_plain(a.depth, a.steps, tensorboard=a.child == "tensorboard")
        return
    kinds = [k for k in a.kinds.split(",") if k]
    if SRC is not None and "before" not in kinds:
        kinds.append("before")
    if "tensorboard" in kinds and not has_tensorboard():
        print("tensorboard is not installed (pip install -e '.[bench]'): its column is skipped")
        kinds.remove("tensorboard")
    rounds = 2 if a.quick else a.rounds
    print(f"gradsim from {ROOT}" + (f"; before: {SRC}" if SRC else ""))
    print(f"whole processes, 1 torch thread, width 64, batch 128, tanh, SGD; {rounds} rounds; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    print(f"{'depth':>5} {'kind':>12} {'steps':>6} {'ms/step CPU':>12} {'ms/step wall':>13} {'ratio CPU':>10} {'ratio wall':>11} {'start-up s':>11}")
    for depth in (int(x) for x in a.depths.split(",")):
        n = int(STEPS.get(depth, max(100, 20000 // depth)) * a.steps_scale)
        if a.quick:
            n = max(50, n // 4)
        per: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
        for _ in range(rounds):
            for kind in kinds:
                w1, c1 = run_child(kind, depth, 1)
                wn, cn = run_child(kind, depth, n)
                per[kind].append(((cn - c1) / (n - 1), (wn - w1) / (n - 1), w1))
        med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in per.items()}
        base = med.get("plain")
        for kind in kinds:
            cpu, wall, start = med[kind]
            rc = f"{cpu / base[0]:>10.3f}" if base else f"{'':>10}"
            rw = f"{wall / base[1]:>11.3f}" if base else f"{'':>11}"
            print(f"{depth:>5} {kind:>12} {n:>6} {cpu * 1e3:>12.2f} {wall * 1e3:>13.2f} {rc} {rw} {start:>11.2f}", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    print("gradsim: the Trainer as `gradsim run` drives it, without the export; gradsim-run: the whole CLI, "
          "which also writes every row to CSV; before: the --src checkout's Trainer; ratio: to the plain loop.")


if __name__ == "__main__":
    main()
