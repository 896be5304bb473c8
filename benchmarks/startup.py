"""Start-up to the first training step: ``python -m gradsim run`` vs a plain PyTorch loop.

    python benchmarks/startup.py [--rounds 5] [--importtime]

Both are fresh processes (depth 50, width 64, batch 128, 1 torch thread) that
print the wall-clock time when their first optimizer step has finished
(GradSim: GRADSIM_REPORT_FIRST_STEP=1); start-up = that time minus the time just
before the process was spawned. Interleaved rounds, medians. The plain loop
builds nn.Sequential and torch.optim.SGD: its first step pays torch.optim's
import of torch._dynamo, which GradSim's own optimizers avoid. Target: GradSim
<= 3.5 s here. --importtime prints GradSim's 15 slowest imports (python -X importtime).
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

PLAIN = r"""
import sys, time
import torch, torch.nn.functional as F
from torch import nn
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
from gradsim.data.datasets import make_dataset
d = make_dataset("spiral")
layers, n = [], d.n_inputs
for _ in range(50):
    layers += [nn.Linear(n, 64), nn.Tanh()]
    n = 64
net = nn.Sequential(*layers, nn.Linear(n, d.n_classes))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
x, y = torch.from_numpy(d.x_train[:128]), torch.from_numpy(d.y_train[:128])
loss = F.cross_entropy(net(x), y)
opt.zero_grad(); loss.backward(); opt.step(); loss.item()
print(f"plain: first step done at {time.time():.6f}", file=sys.stderr, flush=True)
"""


def once(kind: str) -> float:
    out = tempfile.mkdtemp(prefix="gradsim-start-")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRADSIM_REPORT_FIRST_STEP="1")
    if kind == "gradsim":
        cmd = [sys.executable, "-m", "gradsim", "run", "--depth", "50", "--width", "64", "--batch-size", "128",
               "--steps", "1", "--out", str(Path(out) / "s")]
    else:
        cmd = [sys.executable, "-c", PLAIN, str(ROOT)]
    t0 = time.time()
    p = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{kind} failed: {p.stderr[-1500:]}")
    line = [ln for ln in p.stderr.splitlines() if "first step done at" in ln]
    if not line:
        raise SystemExit(f"{kind}: no first-step line in its stderr:\n{p.stderr[-1500:]}")
    return float(line[-1].rsplit(" ", 1)[1]) - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--importtime", action="store_true")
    a = p.parse_args()
    print(f"load average at start {os.getloadavg()[0]:.1f}")
    res: dict[str, list[float]] = {"gradsim": [], "plain": []}
    for _ in range(a.rounds):
        for kind in res:
            res[kind].append(once(kind))
    for kind, v in res.items():
        print(f"{kind:>8}: start-up to first step, median {statistics.median(v):.2f} s (min {min(v):.2f}, max {max(v):.2f}) over {len(v)}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if a.importtime:
        out = tempfile.mkdtemp(prefix="gradsim-start-")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "gradsim", "run", "--steps", "1", "--out", str(Path(out) / "s")],
                           cwd=out, env=env, capture_output=True, text=True)
        rows = []
        for ln in r.stderr.splitlines():
            if ln.startswith("import time:") and "|" in ln:
                self_us, cum_us, name = [x.strip() for x in ln[len("import time:"):].split("|")]
                if self_us.isdigit():
                    rows.append((int(cum_us), name))
        for cum, name in sorted(rows, reverse=True)[:15]:
            print(f"  {cum / 1e6:6.2f} s  {name}")


if __name__ == "__main__":
    main()
