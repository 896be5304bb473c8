"""Naming, grouping and filtering a watched model's units (its module paths) for the heatmap.

Why: a watched transformer has hundreds of units named by module path
(``encoder.layers.3.self_attn.out_proj``). One tick per row is unreadable
past a few dozen, so rows are grouped by the prefix up to the last numbered
path part (``encoder.layers.3.*``: one block of a stack), a line separates the
groups, ticks name whole groups when the rows are too many to name one by one,
and a text box keeps only the matching rows. Pure functions, no Qt widgets
except the box itself, so the rules are tested on plain lists.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Sequence

from PySide6.QtWidgets import QLineEdit

#: At most this many row ticks on the heatmap's axis (about 14 px of text each at 720 px).
MOST_TICKS = 24
#: Tick labels longer than this keep their end (the module's own name) after an ellipsis.
MAX_LABEL = 28


def group_of(name: str) -> str:
    """The group a unit belongs to: its path up to the last numbered part, plus ``.*``
    (``encoder.layers.3.attn.q`` -> ``encoder.layers.3.*``); a path with no number
    groups by its first part (``head.fc`` -> ``head.*``); a one-part name is its own group."""
    parts = name.split(".")
    if len(parts) == 1:
        return name
    numbered = [i for i, p in enumerate(parts[:-1]) if p.isdigit()]
    cut = numbered[-1] + 1 if numbered else 1
    return ".".join(parts[:cut]) + ".*"


def groups(names: Sequence[str]) -> list[tuple[int, int, str]]:
    """Consecutive runs of names in one group: (first index, index after the last, group)."""
    out: list[tuple[int, int, str]] = []
    for i, n in enumerate(names):
        g = group_of(n)
        if out and out[-1][2] == g:
            out[-1] = (out[-1][0], i + 1, g)
        else:
            out.append((i, i + 1, g))
    return out


def matches(names: Sequence[str], text: str) -> list[int]:
    """Indices of the names the filter ``text`` keeps: every one when it is blank. Terms are
    separated by commas or spaces and any term may match (case-insensitive); a term with
    ``*`` or ``?`` is a glob on the whole name, other terms match anywhere in it."""
    terms = [t for t in re.split(r"[,\s]+", text.strip().lower()) if t]
    if not terms:
        return list(range(len(names)))
    out = []
    for i, n in enumerate(names):
        low = n.lower()
        if any(fnmatch.fnmatchcase(low, t) if ("*" in t or "?" in t) else t in low for t in terms):
            out.append(i)
    return out


def short_label(name: str, most: int = MAX_LABEL) -> str:
    """``name``, or its last ``most`` characters after an ellipsis (the end says which module)."""
    return name if len(name) <= most else "…" + name[-(most - 1):]


def _ticked_groups(names: Sequence[str], most: int) -> list[tuple[int, int, str]]:
    """The groups that get a tick: all of them when they fit, else an even spread."""
    gs = groups(names)
    if len(gs) > most:
        gs = gs[:: -(-len(gs) // most)]
    return gs


def row_ticks(names: Sequence[str], most: int = MOST_TICKS) -> list[tuple[float, str]]:
    """Axis ticks for rows 1..len(names): each name when they fit, else one per group
    (at its first row) when the groups fit, else an even spread of groups."""
    n = len(names)
    if n == 0:
        return []
    if n <= most:
        return [(float(i + 1), short_label(nm)) for i, nm in enumerate(names)]
    return [(float(a + 1), short_label(g if b - a > 1 else names[a])) for a, b, g in _ticked_groups(names, most)]


def separators(names: Sequence[str], most: int = MOST_TICKS) -> list[float]:
    """y positions (between rows) where a group begins, for the groups that get a tick
    (more lines than ticks would hide the rows under a grid)."""
    gs = _ticked_groups(names, most)
    return [a + 0.5 for a, _, _ in gs if a > 0]


class UnitFilterBox(QLineEdit):
    """The heatmap's text box: which units to show (see :func:`matches`)."""

    def __init__(self) -> None:
        super().__init__()
        self.setPlaceholderText("filter units, e.g. layers.3 or *attn*")
        self.setClearButtonEnabled(True)
        self.setMaximumWidth(260)
        self.setToolTip("Show only the units whose module path contains a term (or matches a glob with * or ?); "
                        "several terms separated by spaces or commas show any unit that matches one. Empty: every unit.")
