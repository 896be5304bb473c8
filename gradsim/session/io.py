"""Session export (docs/session-format.md, format ``gradsim-session/3``) and load.

Version 3 adds ``model`` and ``units`` (what each row index of layers.csv is)
to session.json; version 2 added ``pred_gain`` as the last column of
layers.csv. Version-1 and version-2 files still load: their units are those
of the MLP their config describes, version 1's pred_gain column empty (NaN).

Every file is written to a temporary name in the target folder and renamed,
and a new folder is assembled under a temporary name first, so a failed export
(disk full, unplugged drive, no permission) never leaves a half-written file.
Loading never extracts a zip: members are read by exact name, so a hostile
archive cannot write anywhere.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Mapping, Optional

import numpy as np

from ..metrics import HELD_OUT_METRICS, LAYER_METRICS, NORM_METRICS, PRED_METRICS, STATS_METRICS, STEP_METRICS, LAYER_INDEX
from ..models.family import FAMILIES, UnitError, units_from_json
from .store import Session
from ..safe_json import parse_json
from ..theory_domain import DOMAIN_COLUMNS
from ..theory_verdicts import session_verdicts

FORMAT = "gradsim-session/3"
#: Formats load_session reads (version 1 has no pred_gain column, 1 and 2 no units).
READABLE_FORMATS = ("gradsim-session/1", "gradsim-session/2", FORMAT)
FILES = ("session.json", "steps.csv", "layers.csv", "events.csv")
#: steps.csv ends with the theory-domain verdict of each row (derived from layers.csv's
#: act_grad_norm, pred_gain and weight_norm; empty where no prediction was recorded).
#: Files written before it (the same format otherwise) load too.
#: Then the held-out accuracy (empty on rows where it was not measured), last so that every
#: earlier cell of a run stays byte for byte what it was. Files written before it load too (NaN).
FIRST_STEP_METRICS = tuple(m for m in STEP_METRICS if m not in HELD_OUT_METRICS)
STEPS_HEADER = ("step",) + FIRST_STEP_METRICS + DOMAIN_COLUMNS + HELD_OUT_METRICS
STEPS_HEADER_BEFORE_HELD_OUT = ("step",) + FIRST_STEP_METRICS + DOMAIN_COLUMNS
STEPS_HEADER_BEFORE_DOMAIN = ("step",) + FIRST_STEP_METRICS
#: Where each steps.csv cell after ``step`` sits in a row of Session.scalars.
_FIRST_COLS = [STEP_METRICS.index(m) for m in FIRST_STEP_METRICS]
_HELD_OUT_COLS = [STEP_METRICS.index(m) for m in HELD_OUT_METRICS]
LAYERS_HEADER = ("step", "layer") + LAYER_METRICS
LAYERS_HEADER_V1 = ("step", "layer") + tuple(m for m in LAYER_METRICS if m not in PRED_METRICS)
EVENTS_HEADER = ("step", "kind", "value")
MAX_FILE_BYTES = 2 * 1024**3  # refuse to read a member that claims more than this
_STATS_SET = {LAYER_INDEX[m] for m in STATS_METRICS}


class ExportError(OSError):
    """An export failed; nothing half-written was left and the session is intact."""


class SessionFormatError(ValueError):
    """A session file is malformed or truncated; the message names file and line."""


# ------------------------------------------------------------------- export
def _versions() -> dict[str, str]:
    import torch

    from .. import __version__

    return {
        "gradsim": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def session_json(session: Session) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "model": session.model,
        "units": [u.to_dict() for u in session.units],
        "config": session.config,
        "events": [e.to_dict() for e in session.events],
        "record_every": session.record_every,
        "versions": session.meta.get("versions") or _versions(),
        "created": session.meta.get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "steps_run": session.steps_run,
        "diverged_at": session.diverged_at,
        **({"replayable": False} if session.meta.get("replayable") is False else {}),
    }


#: About this many CSV lines are rendered at a time. An export holds one chunk of
#: text (~1 MB, ~3 MB while it is assembled) in memory whatever the size of the store, instead of the
#: whole file as one string (which grew with the store: hundreds of MB for the
#: default 256 MB budget).
CHUNK_LINES = 8192


def iter_steps_csv(session: Session, chunk_lines: Optional[int] = None) -> Iterator[str]:
    """steps.csv as a sequence of text chunks (header first)."""
    yield ",".join(STEPS_HEADER) + "\n"
    chunk_lines = max(1, chunk_lines or CHUNK_LINES)
    # One format per line: %r is repr() (the shortest exact round trip: 'nan',
    # 'inf', '-inf' included); the two flags as whole numbers.
    cells = ["%r"] * len(FIRST_STEP_METRICS)
    cells[FIRST_STEP_METRICS.index("clipped")] = cells[FIRST_STEP_METRICS.index("diverged")] = "%d"
    line = "%d," + ",".join(cells)
    n = len(session)
    flag, err = session_verdicts(session)
    # the verdict: empty cells on rows with no tested prediction (NaN)
    tail = [",," if f != f else ",%d,%r" % (f, e) for f, e in zip(flag.tolist(), err.tolist())]
    for a in range(0, n, chunk_lines):
        b = min(n, a + chunk_lines)
        chunk = session.scalars[a:b]  # columns picked per chunk: an export holds a chunk, never the file
        yield "".join([line % (step, *row) + end + "".join("," if v != v else ",%r" % v for v in ho) + "\n"
                       for step, row, end, ho in zip(session.steps[a:b].tolist(), chunk[:, _FIRST_COLS].tolist(),
                                                     tail[a:b], chunk[:, _HELD_OUT_COLS].tolist())])


def steps_csv(session: Session) -> str:
    return "".join(iter_steps_csv(session))


def iter_layers_csv(session: Session, chunk_lines: Optional[int] = None) -> Iterator[str]:
    """layers.csv as a sequence of text chunks (header first), ~chunk_lines lines each."""
    yield ",".join(LAYERS_HEADER) + "\n"
    chunk_lines = max(1, chunk_lines or CHUNK_LINES)
    n_norm, n_stats = len(NORM_METRICS), len(STATS_METRICS)
    k = n_norm + n_stats
    n_pred = len(LAYER_METRICS) - k
    norm = ",".join(["%.9g"] * n_norm)
    with_stats = "%d,%d," + norm + "," + ",".join(["%.9g"] * n_stats)  # 9 digits: float32 round trip
    without = "%d,%d," + norm + "," * n_stats  # unsampled statistics: empty cells
    n = len(session)
    per = max(1, chunk_lines // max(1, session.n_layers))
    for a in range(0, n, per):
        b = min(n, a + per)
        out: list[str] = []
        add = out.append
        for step, has, block in zip(session.steps[a:b].tolist(), session.has_stats[a:b].tolist(), session.layers[a:b].tolist()):
            head = with_stats if has else without
            for j, vals in enumerate(block, 1):
                text = head % (step, j, *vals[: k if has else n_norm])
                if n_pred:  # pred_gain: empty where not computed (NaN) and for the output layer
                    text += "".join("," if v != v else ",%.9g" % v for v in vals[k:])
                add(text + "\n")
        yield "".join(out)


def layers_csv(session: Session) -> str:
    return "".join(iter_layers_csv(session))


def events_csv(session: Session) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(EVENTS_HEADER)
    for e in session.events:
        w.writerow([e.step, e.kind, e.value])
    return out.getvalue()


def _streams(session: Session) -> dict[str, Iterable[str]]:
    """The four files of an export as chunk iterators. session.json is rendered
    now, so a config value JSON cannot hold fails before anything is written."""
    return {
        "session.json": [json.dumps(session_json(session), indent=2, allow_nan=False) + "\n"],
        "steps.csv": iter_steps_csv(session),
        "layers.csv": iter_layers_csv(session),
        "events.csv": [events_csv(session)],
    }


def render(session: Session) -> dict[str, str]:
    """The four files of an export, as text (whole strings: for small sessions and tests)."""
    return {name: "".join(chunks) for name, chunks in _streams(session).items()}


def _umask() -> int:
    """The process's umask. Read from /proc where it exists: setting and restoring
    it (the only portable getter) would briefly change it for the other threads."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def partial_dir(path: Path) -> Path:
    """A new empty folder beside ``path`` to assemble it in, then rename onto ``path``.

    mkdtemp makes it owner-only (0700); an exported folder gets the permissions
    the user's umask gives, like any folder a program creates, so an instructor
    can collect it from a shared folder.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


@contextmanager
def _atomic_file(path: Path, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only once complete (temp name, fsync, rename).

    ``durable=False`` skips the fsync: a reader still never sees a half file (the
    rename), but a power cut may leave the previous version (gradsim.watch's
    once-a-second session.json, where an fsync per rewrite cost the training loop).

    mkstemp creates it owner-only (0600); it gets the umask's permissions instead,
    as a plain open() would give (see partial_dir)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_atomic(path: Path, data: str | bytes | Iterable[str | bytes], durable: bool = True) -> None:
    """Write ``data`` (text, bytes, or an iterable of chunks of either) to ``path``
    through a temporary name and a rename: never a half file, and a chunked
    ``data`` is never held in memory whole."""
    chunks = [data] if isinstance(data, (str, bytes)) else data
    with _atomic_file(path, durable) as fh:
        for chunk in chunks:
            fh.write(chunk.encode() if isinstance(chunk, str) else chunk)


def write_folder(path: Path, files: Mapping[str, str | bytes | Iterable[str | bytes]]) -> None:
    """Write ``files`` ({name: data or text chunks}) as the folder ``path``.

    A new folder is assembled under a temporary name and renamed, so it appears
    only once complete; into an existing folder each file is replaced atomically.
    The session export and the sweep's client-side writer share this one path.
    """
    if path.is_dir():
        for name, data in files.items():
            write_atomic(path / name, data)
        return
    tmp = partial_dir(path)
    try:
        for name, data in files.items():
            write_atomic(tmp / name, data)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_session(session: Session, path: str | Path, zip_file: bool = False) -> Path:
    """Write ``path`` (a folder, or a .zip when ``zip_file`` or the name ends in .zip).

    Rows are rendered and written in chunks (``CHUNK_LINES``), so an export
    adds a few MB to the process's memory whatever the size of the store.
    Into an existing folder, each of the four files is replaced atomically; a
    new folder appears only once complete. Raises ExportError with a clear
    message; the in-memory session is never changed.
    """
    path = Path(path)
    try:
        files = _streams(session)
    except (ValueError, TypeError) as exc:  # e.g. a config value JSON cannot hold
        raise ExportError(f"cannot export session: {exc}") from None
    try:
        if zip_file or path.suffix.lower() == ".zip":
            if not path.parent.is_dir():
                raise FileNotFoundError(f"folder {str(path.parent)!r} does not exist")
            with _atomic_file(path) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, chunks in files.items():
                    with zf.open(name, "w", force_zip64=True) as member:  # streamed: no size known up front
                        for chunk in chunks:
                            member.write(chunk.encode())
            return path
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{str(path)!r} exists and is not a folder")
        parent = path.parent
        if not parent.is_dir():
            # mkdir under a *file* says only "File exists": name the file instead
            blocker = next((p for p in parent.parents if p.exists()), None) if not parent.exists() else parent
            if blocker is not None and not blocker.is_dir():
                raise NotADirectoryError(f"{str(blocker)!r} is a file, not a folder")
            parent.mkdir(parents=True, exist_ok=True)
        write_folder(path, files)
        return path
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ExportError(f"cannot export session to {str(path)!r}: {reason}") from None


# --------------------------------------------------------------------- load
class _Source:
    """Reads the four files from a folder, a zip or a {name: bytes} mapping, by exact name only.

    The mapping form lets a grader hand a submission read on one machine to a
    process (or cluster worker) that cannot see that machine's disk.
    """

    def __init__(self, path: "Path | Mapping[str, bytes]", where: str = "") -> None:
        self.zip: Optional[zipfile.ZipFile] = None
        self.files: Optional[Mapping[str, bytes]] = None
        if isinstance(path, Mapping):
            self.files, self.path = path, Path(where or "submission")
            return
        self.path = path
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise SessionFormatError(f"{path}: not a session folder or a valid .zip") from None
        elif not path.is_dir():
            raise SessionFormatError(f"{path}: no such session folder or .zip")

    def read(self, name: str) -> str:
        if self.files is not None:
            if name not in self.files:
                raise SessionFormatError(f"{self.path}: {name} is missing")
            data = self.files[name]
            if len(data) > MAX_FILE_BYTES:
                raise SessionFormatError(f"{self.path}: {name} is {len(data):,} bytes, over the {MAX_FILE_BYTES:,} byte limit")
        elif self.zip is not None:
            names = {Path(n).name: n for n in self.zip.namelist() if Path(n).name == name and ".." not in Path(n).parts}
            if name not in names:
                raise SessionFormatError(f"{self.path}: {name} is missing from the zip")
            info = self.zip.getinfo(names[name])
            if info.file_size > MAX_FILE_BYTES:
                raise SessionFormatError(f"{self.path}: {name} claims {info.file_size:,} bytes, over the {MAX_FILE_BYTES:,} byte limit")
            data = self.zip.read(info)
        else:
            f = self.path / name
            if not f.is_file():
                raise SessionFormatError(f"{self.path}: {name} is missing")
            if f.stat().st_size > MAX_FILE_BYTES:
                raise SessionFormatError(f"{f}: {f.stat().st_size:,} bytes, over the {MAX_FILE_BYTES:,} byte limit")
            data = f.read_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SessionFormatError(f"{self.path}: {name} is not UTF-8 text") from None


def _rows(text: str, name: str, header: tuple[str, ...], *older: tuple[str, ...]) -> list[list[str]]:
    """The data rows, checked against ``header`` (or an ``older`` header a file may still have)."""
    rows = list(csv.reader(io.StringIO(text)))
    if rows and tuple(rows[0]) in older:
        header = tuple(rows[0])
    if not rows or tuple(rows[0]) != header:
        got = ",".join(rows[0]) if rows else "(empty file)"
        raise SessionFormatError(f"{name} line 1: expected header {','.join(header)!r}, got {got!r}")
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise SessionFormatError(f"{name} line {i}: expected {len(header)} cells, got {len(r)} (truncated or malformed)")
    return rows[1:]


def _num(cell: str, name: str, line: int, col: str, empty_ok: bool = False) -> float:
    if cell == "" and empty_ok:
        return float("nan")
    try:
        return float(cell)
    except ValueError:
        raise SessionFormatError(f"{name} line {line}: {col} = {cell!r} is not a number") from None


def _int(cell: str, name: str, line: int, col: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise SessionFormatError(f"{name} line {line}: {col} = {cell!r} is not a whole number") from None


def load_session(path: "str | Path | Mapping[str, bytes]", where: str = "") -> Session:
    """Load an exported folder, .zip or {file name: bytes} back into a Session (checked, never trusted)."""
    src = _Source(path if isinstance(path, Mapping) else Path(path), where)
    try:
        meta = parse_json(src.read("session.json"))
    except json.JSONDecodeError as exc:
        raise SessionFormatError(f"session.json line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict) or meta.get("format") not in READABLE_FORMATS:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise SessionFormatError(f"session.json: format is {got!r}, expected one of {', '.join(map(repr, READABLE_FORMATS))}")
    v1 = meta["format"] == READABLE_FORMATS[0]
    config = meta.get("config")
    if not isinstance(config, dict):
        raise SessionFormatError("session.json: 'config' must be an object of config fields")
    units = None
    if meta["format"] == FORMAT:
        model = meta.get("model")
        if not isinstance(model, str) or not model:
            raise SessionFormatError(f"session.json: model = {model!r}, expected the name of a model family (e.g. 'mlp')")
        if config.get("model", model) != model:
            raise SessionFormatError(f"session.json: model = {model!r} but config model = {config['model']!r}; expected the same family")
        raw = meta.get("units")
        if not isinstance(raw, list) or not raw:
            got = f"{len(raw)} entries" if isinstance(raw, list) else type(raw).__name__
            raise SessionFormatError(f"session.json: units has {got}, expected a list of one entry per layer of layers.csv")
        try:
            units = units_from_json(raw, len(raw))
            # A family the engine knows must describe as many rows as the file has units
            # (the config is what a replay builds).
            if model in FAMILIES and len(units) not in FAMILIES[model].unit_counts(config):
                raise UnitError(f"{len(units)} units, but config depth = {config.get('depth')!r} describes "
                                f"{len(FAMILIES[model].config_units(config))}; expected one unit per layer")
        except UnitError as exc:
            raise SessionFormatError(f"session.json: {exc}") from None
        n_layers = len(units)
    else:
        depth = config.get("depth")
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 200:
            raise SessionFormatError(f"session.json: config depth = {depth!r}, expected a whole number 1-200")
        n_layers = depth + 1
    record_every = meta.get("record_every", 1)
    if isinstance(record_every, bool) or not isinstance(record_every, int) or record_every < 1:
        raise SessionFormatError(f"session.json: record_every = {record_every!r}, expected a whole number >= 1")

    step_rows = _rows(src.read("steps.csv"), "steps.csv", STEPS_HEADER, STEPS_HEADER_BEFORE_HELD_OUT,
                      STEPS_HEADER_BEFORE_DOMAIN)
    layer_header = LAYERS_HEADER_V1 if v1 else LAYERS_HEADER
    layer_rows = _rows(src.read("layers.csv"), "layers.csv", layer_header)
    event_rows = _rows(src.read("events.csv"), "events.csv", EVENTS_HEADER)
    n = len(step_rows)
    if len(layer_rows) != n * n_layers:
        raise SessionFormatError(f"layers.csv: {len(layer_rows)} rows, expected {n} steps x {n_layers} layers = {n * n_layers} (truncated?)")

    # Sized to hold the file whatever the budget was; further appends thin as usual.
    budget = float(config.get("max_memory_mb", 256.0)) if isinstance(config.get("max_memory_mb"), (int, float)) else 256.0
    steps = np.zeros(n, np.int64)
    scalars = np.full((n, len(STEP_METRICS)), np.nan, np.float64)  # no held-out column: NaN
    k = len(FIRST_STEP_METRICS)
    for i, r in enumerate(step_rows):
        line = i + 2
        steps[i] = _int(r[0], "steps.csv", line, "step")
        scalars[i, _FIRST_COLS] = [_num(c, "steps.csv", line, h) for c, h in zip(r[1 : 1 + k], FIRST_STEP_METRICS)]
        # the verdict is derived from layers.csv (recomputed on export): checked, not kept
        for c, h in zip(r[1 + k : 1 + k + len(DOMAIN_COLUMNS)], DOMAIN_COLUMNS):
            _num(c, "steps.csv", line, h, empty_ok=True)
        for c, h, col in zip(r[1 + k + len(DOMAIN_COLUMNS) :], HELD_OUT_METRICS, _HELD_OUT_COLS):
            scalars[i, col] = _num(c, "steps.csv", line, h, empty_ok=True)
    n_norm, n_stats = len(NORM_METRICS), len(STATS_METRICS)
    n_vals = len(layer_header) - 2
    layers = np.full((n, n_layers, len(LAYER_METRICS)), np.nan, np.float32)  # version 1: pred_gain stays NaN
    has_stats = np.zeros(n, bool)
    for k, r in enumerate(layer_rows):
        line = k + 2
        i, j = divmod(k, n_layers)
        if _int(r[0], "layers.csv", line, "step") != steps[i] or _int(r[1], "layers.csv", line, "layer") != j + 1:
            raise SessionFormatError(f"layers.csv line {line}: expected step {steps[i]} layer {j + 1}, got step {r[0]} layer {r[1]}")
        vals = [_num(c, "layers.csv", line, h, empty_ok=(m >= n_norm)) for m, (c, h) in enumerate(zip(r[2:], layer_header[2:]))]
        layers[i, j, :n_vals] = vals
        if j == 0:
            has_stats[i] = any(c != "" for c in r[2 + n_norm : 2 + n_norm + n_stats])
    try:
        session = Session.from_arrays(steps, scalars, layers, has_stats, config, max_memory_mb=max(budget, 1e-6),
                                      record_every=record_every, units=units)
    except UnitError as exc:  # formats 1 and 2: the config's family cannot describe its units
        raise SessionFormatError(f"session.json: {exc}") from None
    for i, r in enumerate(event_rows):
        session.add_event(_int(r[0], "events.csv", i + 2, "step"), r[1], r[2])
    steps_run = meta.get("steps_run", int(steps[-1]) + 1 if n else 0)
    session.steps_run = steps_run if isinstance(steps_run, int) else 0
    da = meta.get("diverged_at")
    session.diverged_at = da if isinstance(da, int) and not isinstance(da, bool) else session.diverged_at
    session.meta = {"versions": meta.get("versions"), "created": meta.get("created"),
                    # a watched run's folder cannot be trained again from its config
                    "replayable": meta.get("replayable", True) is not False, "running": meta.get("running") is True}
    return session
