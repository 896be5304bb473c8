"""Pure functions on sessions that the window, the CLI and scripts share.

They need no display: opening a saved session with one clear error, and turning
a session's recorded changes back into a schedule that replays them.
"""
from __future__ import annotations

from pathlib import Path

from ..commands import CommandError, Scheduled, command_from_event
from ..events import COMMAND_KINDS
from .store import Session


class SessionOpenError(ValueError):
    """The path is not a readable GradSim session; the message says why, in one line."""


def load_saved_session(path: str | Path) -> Session:
    """Load an exported session folder or .zip, or raise SessionOpenError with one clear line.

    Any failure (a foreign file, a truncated CSV, no permission) becomes the
    same error type, so callers show it and keep what they had.
    """
    from .io import SessionFormatError, load_session  # here: io's parsers load only when a file is opened

    p = Path(path)
    try:
        session = load_session(p)
    except SessionFormatError as exc:
        text = one_line(str(exc))
        raise SessionOpenError(text if str(p) in text else f"{p}: {text}") from None
    except OSError as exc:
        raise SessionOpenError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, TypeError, KeyError) as exc:  # shapes or fields the loader did not expect
        raise SessionOpenError(f"{p}: not a GradSim session ({type(exc).__name__}: {one_line(str(exc))})") from None
    if len(session) == 0:
        raise SessionOpenError(f"{p}: the session holds no recorded steps")
    return session


#: What a forked run's export holds (gradsim/train/fork.py's export_comparison): a folder of two sessions.
BRANCH_NAMES = ("branch-A", "branch-B")


def comparison_branches(path: str | Path) -> tuple[Path, Path] | None:
    """The two branch sessions of a forked run's export folder (folders or .zip files), or None."""
    p = Path(path)
    if not p.is_dir() or (p / "session.json").exists():
        return None
    found = []
    for name in BRANCH_NAMES:
        cands = [c for c in (p / name, p / f"{name}.zip") if c.exists()]
        if not cands:
            return None
        found.append(cands[0])
    return found[0], found[1]


def load_saved_run(path: str | Path) -> tuple[Session, Session | None]:
    """A session (branch B: None), or both branches of a forked run's export folder, as
    ``load_saved_session`` would (SessionOpenError with one clear line, naming the branch)."""
    branches = comparison_branches(path)
    if branches is None:
        return load_saved_session(path), None
    return load_saved_session(branches[0]), load_saved_session(branches[1])


def session_schedule(session: Session) -> tuple[Scheduled, ...]:
    """The session's changes (toggles, scheduled events) as a schedule that replays them.

    Annotations (start, pause, diverged, note) are not commands and are left out.
    """
    out = []
    for ev in session.events:
        if ev.kind not in COMMAND_KINDS:
            continue
        try:
            cmd = command_from_event(ev.kind, ev.value)
        except CommandError as exc:
            raise SessionOpenError(f"event at step {ev.step} cannot be replayed: {exc}") from None
        if cmd is not None:
            out.append(Scheduled(int(ev.step), cmd))
    return tuple(out)


def one_line(text: str) -> str:
    return " ".join(text.split())
