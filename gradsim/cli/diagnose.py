"""``gradsim diagnose PATH [--json]``: what a session shows, and the fixes in the order to try them."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..session.io import SessionFormatError, load_session
from ..teaching.diagnose import diagnose
from ..watch.writer import read_growing
from .common import EXIT_BAD_INPUT

if TYPE_CHECKING:
    from .common import SubParsers


def add_parser(sub: "SubParsers") -> argparse.ArgumentParser:
    """Register the subcommand on ``sub`` (the parser's subparsers)."""
    p = sub.add_parser("diagnose", help="name what a session shows (vanishing, exploding, dead units, saturation, "
                                         "diverged or healthy) and the fixes to try")
    p.add_argument("path", help="a session folder (a watched run may still be growing) or .zip")
    p.add_argument("--json", action="store_true", help="print {verdict, findings, suggestions} as JSON")
    return p


def cmd(args: argparse.Namespace) -> int:
    path = Path(args.path)
    try:
        session = read_growing(path) if path.is_dir() and (path / "session.json").is_file() else load_session(path)
    except (SessionFormatError, OSError) as exc:
        print(f"gradsim: error: cannot read session {str(path)!r}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    d = diagnose(session)
    if args.json:
        print(json.dumps(d.to_json(), indent=2, allow_nan=False))
    else:
        sys.stdout.write(d.text())
    return 0
