"""What gradsim.watch costs a training loop: per-step time watched / unwatched, side by side.

    .venv/bin/python benchmarks/watch_overhead.py [--model cnn|transformer|both] [--runs 3] [--rounds 30]
        [--steps 5] [--device cpu] [--clock cpu|wall] [--json FILE]

Every kind of loop trains the same model with the same optimizer and batch (a
copy of the model per kind would time the copies' memory layout too: that
measured up to 25 % apart here): the plain loop, ``watch(activations=False)``,
``watch(activations=True)`` (each block a new session in a temporary folder) and
the peer most people use instead, a TensorBoard histogram of every parameter's
gradient every step (``SummaryWriter.add_histogram``; needs the ``bench`` extra,
skipped with a note if tensorboard is missing). A block makes its recorder, runs
one untimed step (the recorder's first builds its index plan and buffers, once
in a real run), times ``--steps`` steps and closes the recorder untimed.

Why the estimate holds on a busy machine: the run is ``--rounds`` rounds; a round
runs one short block of ``--steps`` steps of every kind, in an order that rotates
from round to round, so each watched block has a plain block right next to it in
time. Each round gives a ratio (the kind's time per step / the plain loop's in the
same round), and the result is the median of those ratios with their spread (the
25th to 75th percentile): a burst of load from another program spoils a round or
two, not the estimate. On a CPU the clock is the process's CPU time by default
(all its threads, so a writer thread is counted; with one torch thread that is the
work itself, whatever else shares the machine). ``--runs`` repeats the whole
measurement with a fresh model and prints the range of the medians. For the watched
loops it also prints the time spent inside the recorder per step (its hooks and
``loss()``), which a busy machine blurs far less. The budget for
``activations=False, every=1`` is 1.05x.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

PLAIN = "plain"
KINDS = (PLAIN, "watch(activations=False)", "watch(activations=True)", "TensorBoard histograms")


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


_CLOCK: list[Callable[[], float]] = [time.process_time]


def _time_the_recorder() -> None:
    """Count the time spent inside the recorder (its optimizer hooks and ``loss()``, which
    write the rows) on each Watch, so the report can say what a step costs in there, a
    number far less noisy than the difference of two loop times."""
    from gradsim.watch.recorder import Watch

    for name in ("_before_step", "_after_step", "loss"):
        fn = getattr(Watch, name)
        if getattr(fn, "_timed", False):
            continue

        def timed(self: Any, *a: Any, _fn: Any = fn, **k: Any) -> Any:
            t0 = _CLOCK[0]()
            try:
                return _fn(self, *a, **k)
            finally:
                self.__dict__["in_watch_s"] = self.__dict__.get("in_watch_s", 0.0) + _CLOCK[0]() - t0

        timed._timed = True  # type: ignore[attr-defined]
        setattr(Watch, name, timed)


class _Loop:
    """The training loop, on one model and optimizer for every kind; a block attaches the
    kind's recorder (a new Watch or SummaryWriter, made and closed outside the timing)."""

    def __init__(self, model: Any, x: Any, y: Any, tmp: Path) -> None:
        import torch

        self.model, self.x, self.y, self.tmp, self.step = model, x, y, tmp, 0
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.named = list(model.named_parameters())
        self.w: Any = None
        self.tb: Any = None
        self._n = 0

    def attach(self, kind: str) -> None:
        from gradsim.watch import watch

        self._n += 1
        if kind.startswith("watch"):
            self.w = watch(self.model, self.opt, out=self.tmp / f"w{self._n}", activations="True" in kind)
        elif kind.startswith("TensorBoard"):
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.tmp / f"tb{self._n}"))

    def run(self, steps: int) -> None:
        from torch import nn

        for _ in range(steps):
            loss = nn.functional.cross_entropy(self.model(self.x), self.y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            if self.w is not None:
                self.w.loss(loss)
            if self.tb is not None:
                for n, prm in self.named:
                    if prm.grad is not None:
                        self.tb.add_histogram(n, prm.grad, self.step)
                self.tb.add_scalar("loss", loss, self.step)
            self.step += 1

    def detach(self) -> None:
        if self.w is not None:
            self.w.close()
        if self.tb is not None:
            self.tb.close()
        self.w = self.tb = None


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def measure(name: str, kinds: tuple[str, ...], rounds: int, steps: int, device: str,
            clock: Callable[[], float]) -> dict[str, Any]:
    """One run: {kind: {"ms": median ms/step, "ratio": median per-round ratio, "q25", "q75"}}."""
    import torch

    model, x, y = _models(name, device)
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    per: dict[str, list[float]] = {k: [] for k in kinds}
    inside: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        loop = _Loop(model, x, y, Path(tmp))
        for k in kinds:  # warm up: the allocator, torch's first-call paths, each recorder's code
            loop.attach(k)
            loop.run(steps)
            loop.detach()
        for r in range(rounds):
            for i in range(len(kinds)):
                kind = kinds[(i + r) % len(kinds)]
                loop.attach(kind)
                loop.run(1)  # untimed: a recorder's first step builds its index plan and buffers, once per run
                w = loop.w
                w0 = w.__dict__.get("in_watch_s", 0.0) if w is not None else 0.0
                sync()
                t0 = clock()
                loop.run(steps)
                sync()
                per[kind].append((clock() - t0) / steps)
                if w is not None:
                    inside[kind].append((w.__dict__.get("in_watch_s", 0.0) - w0) / steps)
                loop.detach()
    out: dict[str, Any] = {"parameters": sum(p.numel() for p in model.parameters())}
    for k in kinds:
        ratios = [t / p for t, p in zip(per[k], per[PLAIN])]
        out[k] = {"ms": statistics.median(per[k]) * 1e3, "ratio": statistics.median(ratios),
                  "q25": _quantile(ratios, 0.25), "q75": _quantile(ratios, 0.75),
                  "in_watch_ms": statistics.median(inside[k]) * 1e3 if inside[k] else None}
    return out


def main() -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("cnn", "transformer", "both"), default="both")
    p.add_argument("--runs", type=int, default=3, help="whole measurements, each with a fresh model")
    p.add_argument("--rounds", type=int, default=30, help="rounds per run; a round runs one block of each kind")
    p.add_argument("--steps", type=int, default=8, help="timed steps per block")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="cpu: this process's CPU time (one thread: the work itself, not the other programs "
                        "sharing the machine); wall: elapsed time (use on a quiet machine or a GPU)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    for flag in ("runs", "rounds", "steps", "threads"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag} = {getattr(args, flag)}, expected a whole number >= 1")
    clock = time.process_time if args.clock == "cpu" and args.device == "cpu" else time.perf_counter
    _CLOCK[0] = clock
    _time_the_recorder()
    torch.set_num_threads(args.threads)
    kinds: tuple[str, ...] = KINDS
    try:
        import torch.utils.tensorboard
    except ImportError:
        print("tensorboard is not installed (the bench extra): its peer is skipped")
        kinds = KINDS[:3]
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} thread(s), {args.runs} run(s) x "
          f"{args.rounds} rounds x {args.steps} steps per block, "
          f"{'process CPU' if clock is time.process_time else 'wall-clock'} time")
    results: dict[str, list[dict[str, Any]]] = {}
    for name in (("cnn", "transformer") if args.model == "both" else (args.model,)):
        runs = results[name] = []
        for r in range(args.runs):
            res = measure(name, kinds, args.rounds, args.steps, args.device, clock)
            runs.append(res)
            print(f"\n{name} run {r + 1}: {res['parameters']:,} parameters")
            for k in kinds:
                e = res[k]
                inner = "" if e["in_watch_ms"] is None else f"   in the recorder {e['in_watch_ms']:.3f} ms/step"
                print(f"  {k:26s} {e['ms']:8.2f} ms/step   {e['ratio']:6.3f}x  (per-round 25-75%: "
                      f"{e['q25']:.3f}-{e['q75']:.3f}){inner}")
        print(f"\n{name}, median ratio over {args.runs} run(s): min-max")
        for k in kinds[1:]:
            meds = [res[k]["ratio"] for res in runs]
            line = f"  {k:26s} {min(meds):6.3f}x - {max(meds):6.3f}x"
            inners = [res[k]["in_watch_ms"] for res in runs if res[k]["in_watch_ms"] is not None]
            if inners:
                line += f"   in the recorder {min(inners):.3f}-{max(inners):.3f} ms/step"
            print(line + f"   (plain {statistics.median(res[PLAIN]['ms'] for res in runs):.2f} ms/step)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
