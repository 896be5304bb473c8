"""What gradsim.watch costs a training loop: per-step time watched / unwatched, side by side.

    .venv/bin/python benchmarks/watch_overhead.py [--model cnn|transformer|both] [--blocks 6] [--steps 20] [--device cpu]

One model, one optimizer, one batch; blocks of ``--steps`` steps alternate
between the plain loop, ``watch(activations=False)``,
``watch(activations=True)`` (each watched block writes its own session to a
temporary folder) and the peer most people use instead: a TensorBoard
histogram of every parameter's gradient every step
(``SummaryWriter.add_histogram`` into a temporary folder; needs the ``bench``
extra, skipped with a note if tensorboard is missing), so a busy machine
slows all four alike. It prints the
median time per step of each (on a CPU, the process's CPU time by default:
with one thread that is the work itself, whatever else shares the machine)
and the ratios to the plain loop. The budget
for ``activations=False, every=1`` is 1.05x.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def _models(name: str, device: str):  # -> (model, inputs, targets)
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "cnn":
        from watch_cnn import SmallResNet

        return SmallResNet(16, 3).to(device), torch.randn(64, 64, device=device), torch.randint(0, 10, (64,), device=device)

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 64)
            layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True, norm_first=True, dropout=0.0)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.enc(self.emb(x)).mean(1))

    return Tiny().to(device), torch.randint(0, 100, (32, 32), device=device), torch.randint(0, 10, (32,), device=device)


def _block(model, opt, x, y, steps: int, watch_kw, clock=time.process_time) -> float:
    import torch
    from torch import nn

    from gradsim.watch import watch

    tb = None
    if watch_kw == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        tb, watch_kw = SummaryWriter(tempfile.mkdtemp()), None
        named = list(model.named_parameters())
    w = watch(model, opt, out=Path(tempfile.mkdtemp()) / "s", **watch_kw) if watch_kw is not None else None
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = clock()
    for step in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if w is not None:
            w.loss(loss)
        if tb is not None:
            for n, prm in named:
                if prm.grad is not None:
                    tb.add_histogram(n, prm.grad, step)
            tb.add_scalar("loss", loss, step)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    dt = (clock() - t0) / steps
    if w is not None:
        w.close()
    if tb is not None:
        tb.close()
    return dt


def main() -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("cnn", "transformer", "both"), default="both")
    p.add_argument("--blocks", type=int, default=6, help="blocks of each kind, interleaved")
    p.add_argument("--steps", type=int, default=20, help="steps per block")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="cpu: this process's CPU time (one thread: the work itself, not the other programs "
                        "sharing the machine); wall: elapsed time (use on a quiet machine or a GPU)")
    args = p.parse_args()
    clock = time.process_time if args.clock == "cpu" and args.device == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    kinds: dict[str, Any] = {"plain": None, "watch(activations=False)": {"activations": False},
                             "watch(activations=True)": {"activations": True}}
    try:
        import torch.utils.tensorboard
        kinds["TensorBoard histograms"] = "tensorboard"
    except ImportError:
        print("tensorboard is not installed (the bench extra): its peer is skipped")
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} thread(s), {args.blocks} blocks x {args.steps} steps, "
          f"{'process CPU' if clock is time.process_time else 'wall-clock'} time")
    for name in (("cnn", "transformer") if args.model == "both" else (args.model,)):
        model, x, y = _models(name, args.device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        _block(model, opt, x, y, args.steps, None)  # warm up
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.blocks):
            for k, kw in kinds.items():
                times[k].append(_block(model, opt, x, y, args.steps, kw, clock))
        plain = statistics.median(times["plain"])
        print(f"\n{name}: {sum(p.numel() for p in model.parameters()):,} parameters")
        for k in kinds:
            med = statistics.median(times[k])
            print(f"  {k:26s} {med * 1e3:8.2f} ms/step   {med / plain:5.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
