"""Following a watched session folder while it grows: read only what was appended.

Why not :func:`gradsim.watch.writer.read_growing` on every poll: it parses the
whole folder, so a follower polling twice a second would cost time that grows
with the run. :class:`SessionTail` remembers how many bytes of each CSV file it
has consumed and parses only the complete lines after them, with the same
checks as a finished session (each chunk goes through
:func:`gradsim.session.io.load_session`).

The writer appends a step's ``layers.csv`` rows before its ``steps.csv`` row,
so the steps read here always have their layer rows on disk; a line still being
written (no newline yet) is left for the next poll. Imports no torch: the
window follows a run with it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..session.io import EVENTS_HEADER, LAYERS_HEADER, STEPS_HEADER, SessionFormatError, load_session
from ..session.store import Rows, Session
from .writer import MODEL


class NotWatchedError(ValueError):
    """The folder is not a watched session (the message says what it is instead, in one line)."""


def watched_meta(path: "str | os.PathLike[str]") -> dict[str, Any]:
    """session.json of the watched session folder ``path``, or NotWatchedError saying why not."""
    folder = Path(path)
    if not folder.exists():
        raise NotWatchedError(f"{folder}: no such folder; expected the out= folder of a gradsim.watch run")
    if not folder.is_dir():
        raise NotWatchedError(f"{folder}: a file, not a folder; expected the out= folder of a gradsim.watch run "
                              "(File > Open session opens a .zip)")
    meta_file = folder / "session.json"
    if not meta_file.is_file():
        raise NotWatchedError(f"{folder}: holds no session.json; expected the out= folder of a gradsim.watch run "
                              "(it appears once the script calls gradsim.watch)")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotWatchedError(f"{meta_file}: cannot be read as JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("model") != MODEL:
        got = meta.get("model", "mlp") if isinstance(meta, dict) else type(meta).__name__
        raise NotWatchedError(f"{folder}: a saved session of model {got!r}, not a watched run (model {MODEL!r}); "
                              "open it with File > Open session")
    return meta


@dataclass
class TailUpdate:
    """What one poll found: the rows appended since the last poll and the run's state."""

    rows: Rows
    running: bool
    steps_run: int
    diverged_at: Optional[int]


def _header(cols: tuple[str, ...]) -> bytes:
    return (",".join(cols) + "\n").encode()


class SessionTail:
    """Reads a watched session folder incrementally (see the module docstring).

    ``open()`` returns an empty :class:`Session` with the folder's units and
    config; each ``poll()`` returns the rows appended since, to be appended to it.
    """

    def __init__(self, path: "str | os.PathLike[str]") -> None:
        self.path = Path(path)
        self.n_units = 0
        self._meta_bytes = b""
        self._at = {"steps.csv": 0, "layers.csv": 0, "events.csv": 0}
        self.bytes_read = 0  # what the polls read in all (tests check that only new bytes are read)

    def open(self) -> Session:
        meta = watched_meta(self.path)
        self.n_units = len(meta.get("units") or [])
        self._meta_bytes = (self.path / "session.json").read_bytes()
        for name, header in (("steps.csv", STEPS_HEADER), ("layers.csv", LAYERS_HEADER), ("events.csv", EVENTS_HEADER)):
            head = _header(header)
            with open(self.path / name, "rb") as f:
                got = f.read(len(head))
            if got != head:
                raise SessionFormatError(f"{self.path / name} line 1: expected header {head.decode().strip()!r}")
            self._at[name] = len(head)
        return self._load(b"", b"", b"")

    def _read_new(self, name: str) -> bytes:
        with open(self.path / name, "rb") as f:
            f.seek(self._at[name])
            data = f.read()
        self.bytes_read += len(data)
        end = data.rfind(b"\n")
        return data[: end + 1] if end >= 0 else b""

    def _load(self, steps: bytes, layers: bytes, events: bytes) -> Session:
        files = {"session.json": self._meta_bytes, "steps.csv": _header(STEPS_HEADER) + steps,
                 "layers.csv": _header(LAYERS_HEADER) + layers, "events.csv": _header(EVENTS_HEADER) + events}
        return load_session(files, where=str(self.path))

    def poll(self) -> TailUpdate:
        """The rows appended since the last poll (none is fine) and the run's state now."""
        # session.json first: "running: false" read here means every row was written before it.
        self._meta_bytes = (self.path / "session.json").read_bytes()
        meta = json.loads(self._meta_bytes.decode("utf-8"))
        steps = self._read_new("steps.csv")
        layers = self._read_new("layers.csv")
        events = self._read_new("events.csv")
        n_steps = steps.count(b"\n")
        step_lines = steps.split(b"\n")[:-1]
        layer_lines = layers.split(b"\n")[:-1]
        if self.n_units:
            n_steps = min(n_steps, len(layer_lines) // self.n_units)
        steps = b"".join(line + b"\n" for line in step_lines[:n_steps])
        layers = b"".join(line + b"\n" for line in layer_lines[: n_steps * self.n_units])
        chunk = self._load(steps, layers, events)
        self._at["steps.csv"] += len(steps)
        self._at["layers.csv"] += len(layers)
        self._at["events.csv"] += len(events)
        rows = chunk.rows_after(-(2**62))
        da = meta.get("diverged_at")
        sr = meta.get("steps_run")
        return TailUpdate(rows, meta.get("running") is True, sr if isinstance(sr, int) else 0,
                          da if isinstance(da, int) and not isinstance(da, bool) else None)
