"""Check that a change keeps every MLP number: export the same runs from two checkouts, compare the CSVs.

    python benchmarks/export_identity.py --before /work/wt/v020 [--after .] [--out /tmp/export-identity]

Each run is ``python -m gradsim run ... --out DIR`` in a fresh process, once
with the ``--before`` checkout on the path and once with ``--after`` (default:
this checkout). steps.csv, layers.csv and events.csv must then be equal byte
for byte (steps.csv over the columns the older version writes: newer ones are
appended), except steps.csv's ``elapsed_s`` column (wall-clock time) and the
``start`` event's label. session.json is compared field by field over the keys
both formats have (``format``, ``versions``, ``created`` aside): a newer
format may add keys (``model``, ``units``) but not change the old ones.
Exits 1 and prints the first difference when anything differs.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> arguments of ``gradsim run``: presets, and each structural toggle as
#: a config field and as a live event (the events change the network mid-run).
RUNS: dict[str, list[str]] = {
    "vanishing-sigmoid": ["--preset", "vanishing-sigmoid", "--steps", "50"],
    "exploding-relu": ["--preset", "exploding-relu", "--steps", "40"],
    "batchnorm-event": ["--preset", "deep-tanh-xavier", "--steps", "40", "--event", "20:batchnorm=on"],
    "residual": ["--depth", "12", "--activation", "relu", "--init", "he_normal", "--residual", "--steps", "30", "--stats-every", "5"],
    # batch norm's theory path reads phi' as tensors: each activation family once
    "batchnorm-leaky": ["--depth", "8", "--width", "64", "--activation", "leaky_relu", "--batchnorm", "--steps", "20"],
    "batchnorm-gelu": ["--depth", "8", "--width", "64", "--activation", "gelu", "--batchnorm", "--steps", "20"],
    "layernorm": ["--depth", "8", "--layernorm", "--optimizer", "adam", "--lr", "0.01", "--steps", "30", "--stats-every", "3"],
    "events": ["--depth", "6", "--steps", "40", "--stats-every", "4", "--event", "10:residual=on", "--event", "15:layernorm=on",
               "--event", "20:activation=relu", "--event", "25:init=he_normal", "--event", "30:clip=norm:0.5", "--event", "35:lr=0.01"],
}

IGNORED_JSON = {"format", "versions", "created"}


def export(checkout: Path, args: list[str], out: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    subprocess.run([sys.executable, "-m", "gradsim", "run", *args, "--out", str(out)], cwd=checkout, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def _without_elapsed(text: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    col = rows[0].index("elapsed_s")
    return "\n".join(",".join(r[:col] + r[col + 1:]) for r in rows)


def _columns_of(text: str, reference: str) -> str:
    """``text``'s CSV with only the columns ``reference``'s header names, in that order."""
    names = next(csv.reader(io.StringIO(reference)))
    rows = list(csv.reader(io.StringIO(text)))
    idx = [rows[0].index(n) for n in names]
    return "\n".join(",".join(r[i] if i < len(r) else "" for i in idx) for r in rows)


def _without_start_label(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("0,start,"))


def compare(before: Path, after: Path) -> list[str]:
    """The differences between two exported folders (empty when they agree)."""
    problems: list[str] = []
    for name, clean in (("steps.csv", _without_elapsed), ("layers.csv", None), ("events.csv", _without_start_label)):
        a, b = (before / name).read_text(), (after / name).read_text()
        if name == "steps.csv":  # a newer version may append columns; every column the older one has must agree
            a, b = _columns_of(a, a), _columns_of(b, a)
        if clean is not None:
            a, b = clean(a), clean(b)
        if a != b:
            la, lb = a.splitlines(), b.splitlines()
            i = next((k for k, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
            problems.append(f"{name} line {i + 1}: {la[i] if i < len(la) else '(end)'!r} != {lb[i] if i < len(lb) else '(end)'!r}")
    ja, jb = json.loads((before / "session.json").read_text()), json.loads((after / "session.json").read_text())
    for key in sorted(set(ja) - IGNORED_JSON):
        va, vb = ja[key], jb.get(key)
        if key == "events":  # the start event's label names the command line
            va, vb = [e for e in va if e["kind"] != "start"], [e for e in (vb or []) if e["kind"] != "start"]
        if key == "config" and isinstance(vb, dict):  # new fields at their defaults are allowed
            vb = {k: v for k, v in vb.items() if k in va}
        if va != vb:
            problems.append(f"session.json {key}: {va!r} != {vb!r}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout giving the reference numbers (e.g. v0.2.0)")
    ap.add_argument("--after", type=Path, default=ROOT, help="checkout under test (default: this one)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/export-identity"))
    ap.add_argument("--runs", nargs="*", default=list(RUNS), help=f"subset of {', '.join(RUNS)}")
    opts = ap.parse_args()
    failed = 0
    for name in opts.runs:
        dirs = []
        for side, checkout in (("before", opts.before), ("after", opts.after)):
            d = opts.out / side / name
            if d.exists():
                for f in d.iterdir():
                    f.unlink()
                d.rmdir()
            d.parent.mkdir(parents=True, exist_ok=True)
            export(checkout.resolve(), RUNS[name], d)
            dirs.append(d)
        problems = compare(*dirs)
        print(f"{name:20s} {'identical' if not problems else 'DIFFERENT'}")
        for p in problems:
            print("   ", p)
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
