"""One JSON reader for every file a user can hand GradSim (configs, presets, sessions, submissions).

``json.loads`` recurses once per nesting level, so a hostile or broken file of
100,000 nested brackets raises RecursionError (a traceback, exit 1) instead of
the one-line "not valid JSON" every caller already reports. This turns that
into a ``json.JSONDecodeError`` like any other malformed file.
"""
from __future__ import annotations

import json
from typing import Any


def parse_json(text: str) -> Any:
    """``json.loads(text)``; nesting too deep to parse raises JSONDecodeError, not RecursionError."""
    try:
        return json.loads(text)
    except RecursionError:
        depth = _opening_run(text)
        raise json.JSONDecodeError(f"nested too deeply ({depth:,}+ levels of brackets)", text, 0) from None


def _opening_run(text: str) -> int:
    """How many brackets open in a row at the start (for the message only)."""
    stripped = text.lstrip()
    n = 0
    for ch in stripped:
        if ch in "[{":
            n += 1
        elif not ch.isspace():
            break
    return n
