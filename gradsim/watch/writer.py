"""A watched run's session folder, written while the run trains (format 3, ``model`` = ``watched``).

Why it is written as it grows instead of exported at the end: the window (or
``gradsim diagnose``) can read the folder while the user's script is still
training, and a script that crashes leaves the steps it made on disk.

How a reader following the folder never sees a torn file:

- ``session.json`` is replaced atomically (temporary name, fsync, rename);
- the three CSV files are created whole (with their header) the same way,
  then only ever grow by whole lines, each step's block in one ``write`` to a
  file opened for appending;
- a step's ``layers.csv`` rows are written before its ``steps.csv`` row, so a
  reader that reads ``steps.csv`` first finds the layers of every step it saw.
  :func:`read_growing` reads that way and drops what a later step already
  appended.

This module imports no torch: the window reads a growing folder with it.
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from ..metrics import HELD_OUT_METRICS, LAYER_METRICS, PRED_METRICS, STATS_METRICS, STEP_METRICS
from ..theory_domain import DOMAIN_COLUMNS
from ..models.family import Unit, check_units
from ..session.io import EVENTS_HEADER, FORMAT, LAYERS_HEADER, STEPS_HEADER, write_atomic, load_session
from ..session.store import Event, Session

#: The family name a watched session carries (session.json ``model`` and config ``model``).
MODEL = "watched"

#: New rows reach the CSV files at most this often (and at flush and close): a follower
#: sees a step within a quarter second, and the run pays a few writes a second, not a few per step.
WRITE_EVERY_S = 0.25
#: session.json (the totals: steps_run, diverged_at, events) is rewritten at most this often.
JSON_EVERY_S = 1.0


class WatchError(ValueError):
    """A bad argument to gradsim.watch; the message names the value and what is allowed."""


def _cell(v: float) -> str:
    """A CSV number: repr-exact, non-finite as nan, inf, -inf (the session format's spelling)."""
    if v != v:
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


def _versions() -> dict[str, str]:
    from .. import __version__

    torch_version = sys.modules["torch"].__version__ if "torch" in sys.modules else ""
    import numpy as np

    return {"gradsim": __version__, "torch": torch_version, "numpy": np.__version__,
            "python": sys.version.split()[0], "platform": platform.platform()}


def _append(fd: int, text: str) -> None:
    """Append whole lines in one write to a file opened with O_APPEND (a follower sees all of them or none)."""
    view = memoryview(text.encode())
    while view:
        n = os.write(fd, view)
        view = view[n:]


class SessionWriter:
    """Writes one watched session folder step by step (see the module docstring)."""

    def __init__(self, out: "str | os.PathLike[str]", units: Sequence[Unit], config: dict[str, Any],
                 record_every: int = 1, overwrite: bool = False) -> None:
        self.path = Path(out)
        self.units = check_units(list(units), len(units))
        self.config = dict(config, model=MODEL)
        self.record_every = int(record_every)
        self.events: list[Event] = []
        self.steps_run = 0
        self.diverged_at: Optional[int] = None
        self.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self._versions = _versions()
        self._json_at = 0.0
        self._closed = False
        if self.path.exists() and not self.path.is_dir():
            raise WatchError(f"out = {str(self.path)!r} is a file; expected a new or empty folder for the session")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not overwrite or not (self.path / "session.json").is_file():
                raise WatchError(f"out = {str(self.path)!r} is a folder that is not empty; expected a new or empty folder"
                                 + ("" if overwrite else " (or overwrite=True to replace a session there)"))
        self.path.mkdir(parents=True, exist_ok=True)
        # session.json last: a folder whose session.json exists has all four files.
        write_atomic(self.path / "steps.csv", ",".join(STEPS_HEADER) + "\n")
        write_atomic(self.path / "layers.csv", ",".join(LAYERS_HEADER) + "\n")
        write_atomic(self.path / "events.csv", ",".join(EVENTS_HEADER) + "\n")
        # Kept open for the run: appending then costs one write per file per flush.
        self._fds = {name: os.open(self.path / name, os.O_WRONLY | os.O_APPEND) for name in ("layers.csv", "steps.csv", "events.csv")}
        self._buf: dict[str, list[str]] = {name: [] for name in self._fds}
        self._written_at = 0.0
        self._buffered_steps = self.steps_run
        self.write_json()

    # --------------------------------------------------------------- writes
    def session_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model": MODEL,
            "replayable": False,
            "units": [u.to_dict() for u in self.units],
            "config": self.config,
            "events": [e.to_dict() for e in self.events],
            "record_every": self.record_every,
            "versions": self._versions,
            "created": self.created,
            "steps_run": self.steps_run,
            "diverged_at": self.diverged_at,
            "running": not self._closed,
        }

    def flush(self) -> None:
        """Append the buffered rows: layers before steps, so a reader never finds a step without its layers."""
        for name in ("layers.csv", "steps.csv", "events.csv"):
            if self._buf[name]:
                _append(self._fds[name], "".join(self._buf[name]))
                self._buf[name].clear()
        self.steps_run = self._buffered_steps
        self._written_at = time.monotonic()

    def write_json(self, durable: bool = True) -> None:
        """Replace session.json atomically. ``durable=False`` (the progress rewrites while the run
        trains) skips the fsync: the rename alone already shows a reader the old file or the
        new one, never a torn one, and the fsync, which only guards against a power cut, costs
        milliseconds of wall time a second; the first and the last write stay durable."""
        text = json.dumps(self.session_json(), indent=2, allow_nan=False) + "\n"
        if durable:
            write_atomic(self.path / "session.json", text)
        else:
            write_atomic(self.path / "session.json", text, durable=False)
        self._json_at = time.monotonic()

    def add_event(self, step: int, kind: str, value: str = "") -> None:
        ev = Event(int(step), str(kind), str(value))
        self.events.append(ev)
        if kind == "diverged" and self.diverged_at is None:
            self.diverged_at = int(step)
        self._buf["events.csv"].append(f"{ev.step},{_csv_text(ev.kind)},{_csv_text(ev.value)}\n")

    def write_step(self, step: int, scalars: Sequence[float], layers: Sequence[Sequence[float]], has_stats: bool) -> None:
        """Append one step: ``scalars`` in STEP_METRICS order, ``layers`` one row per unit in
        LAYER_METRICS order (activation statistics written only when ``has_stats``)."""
        if len(layers) != len(self.units):
            raise ValueError(f"{len(layers)} layer rows, expected {len(self.units)} (one per unit)")
        # One format per row, as the session export does: %.9g round-trips float32 and spells
        # non-finite values nan, inf, -inf; unsampled statistics and pred_gain (no theory of a
        # user's model) are empty cells.
        fmt, keep = _row_format(has_stats)
        self._add_step(step, scalars, "".join(fmt % (step, j, *[row[i] for i in keep]) for j, row in enumerate(layers, 1)))

    def write_columns(self, step: int, scalars: Sequence[float], columns: tuple[str, ...], values: Sequence[float]) -> None:
        """Append one step from a block of columns: ``values`` holds, for each name in
        ``columns`` (LAYER_METRICS names, in that order), one value per unit. What the
        recorder copies off the device comes in this shape, so a row costs no Python loop
        over its cells. A column not given is written ``nan``, but activation statistics
        and ``pred_gain`` are empty cells (not sampled; no theory of a user's model)."""
        n = len(self.units)
        if len(values) != len(columns) * n:
            raise ValueError(f"{len(values)} layer values, expected {len(columns)} columns x {n} units")
        fmt = _block_format(columns, n)
        args: list[float] = []
        for j, row in enumerate(zip(*[values[k * n:(k + 1) * n] for k in range(len(columns))]), 1):
            args += (step, j)
            args += row
        self._add_step(step, scalars, fmt % tuple(args))

    def _add_step(self, step: int, scalars: Sequence[float], layer_text: str) -> None:
        if len(scalars) != len(STEP_METRICS):
            raise ValueError(f"{len(scalars)} step values, expected {len(STEP_METRICS)}")
        self._buf["layers.csv"].append(layer_text)
        scal = [_cell(v) for v in scalars]
        for flag in ("clipped", "diverged"):
            i = STEP_METRICS.index(flag)
            scal[i] = "1" if scalars[i] > 0 else "0"
        # steps.csv's order: the first metrics, the theory-domain verdict (none for a user's
        # model: empty cells), then the held-out metrics (a watched run has no held-out split).
        first = [scal[i] for i, m in enumerate(STEP_METRICS) if m not in HELD_OUT_METRICS]
        held = ["" for m in STEP_METRICS if m in HELD_OUT_METRICS]
        self._buf["steps.csv"].append(f"{step}," + ",".join(first + [""] * len(DOMAIN_COLUMNS) + held) + "\n")
        self._buffered_steps = max(self._buffered_steps, step + 1)
        now = time.monotonic()
        if now - self._written_at >= WRITE_EVERY_S:
            self.flush()
            if now - self._json_at >= JSON_EVERY_S:
                self.write_json(durable=False)

    def close(self, steps_run: Optional[int] = None) -> None:
        """Finish the folder; ``steps_run``: the steps the run took (more than the last
        recorded step + 1 when steps after it were not recorded)."""
        if not self._closed:
            self._closed = True
            if steps_run is not None:
                self._buffered_steps = max(self._buffered_steps, int(steps_run))
            self.flush()
            for fd in self._fds.values():
                os.close(fd)
            self.write_json()


@functools.lru_cache(maxsize=2)
def _row_format(has_stats: bool) -> tuple[str, tuple[int, ...]]:
    """(a layers.csv row's format, the LAYER_METRICS indices it fills)."""
    keep = tuple(i for i, m in enumerate(LAYER_METRICS) if m not in PRED_METRICS and (has_stats or m not in STATS_METRICS))
    return "%d,%d," + ",".join("%.9g" if i in keep else "" for i in range(len(LAYER_METRICS))) + "\n", keep


@functools.lru_cache(maxsize=4)
def _block_format(columns: tuple[str, ...], n_units: int) -> str:
    """The format of a step's ``layers.csv`` rows for all ``n_units`` units at once, taking
    (step, unit, one value per given column) per unit (see write_columns)."""
    unknown = [c for c in columns if c not in LAYER_METRICS]
    if unknown or list(columns) != [c for c in LAYER_METRICS if c in columns]:
        raise ValueError(f"columns = {columns!r}, expected LAYER_METRICS names in their order")
    cells = ["%.9g" if m in columns else "" if m in STATS_METRICS or m in PRED_METRICS else "nan" for m in LAYER_METRICS]
    return ("%d,%d," + ",".join(cells) + "\n") * n_units


def _csv_text(s: str) -> str:
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def _complete_lines(data: bytes) -> bytes:
    """``data`` up to its last newline (a line still being written is not read)."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def read_growing(path: "str | os.PathLike[str]") -> Session:
    """Load a session folder that may still be growing (a watched run in progress).

    Reads ``steps.csv`` first, then ``layers.csv`` and keeps exactly the layer
    rows of the steps read (the writer appends layers before steps); a line
    cut short by a concurrent write is dropped. Anything else malformed raises
    :class:`gradsim.session.io.SessionFormatError` as for a finished session.
    """
    folder = Path(path)
    meta_bytes = (folder / "session.json").read_bytes()
    steps = _complete_lines((folder / "steps.csv").read_bytes())
    layers = _complete_lines((folder / "layers.csv").read_bytes())
    events = _complete_lines((folder / "events.csv").read_bytes())
    try:
        n_units = len(json.loads(meta_bytes.decode("utf-8")).get("units") or [])
    except (ValueError, AttributeError):
        n_units = 0
    n_steps = max(0, steps.count(b"\n") - 1)
    if n_units:
        keep = 1 + n_steps * n_units
        lines = layers.split(b"\n")
        if len(lines) - 1 > keep:
            layers = b"\n".join(lines[:keep]) + b"\n"
    return load_session({"session.json": meta_bytes, "steps.csv": steps, "layers.csv": layers, "events.csv": events},
                        where=str(folder))
