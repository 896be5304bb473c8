"""Submissions a teacher should look at twice: one student name on several submissions,
and submissions whose steps.csv and layers.csv are the same bytes.

steps.csv holds each step's wall-clock ``elapsed_s``, so two honest runs of one config
never match byte for byte; identical files were copied. Flags are for the teacher to
judge: they never change a score.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Sequence

from ..grading.submission import SubmissionFiles

#: The files whose bytes identify a run (session.json and submission.json differ by name and answers).
RUN_FILES = ("steps.csv", "layers.csv")


def _same_key_groups(keys: Sequence[str | None]) -> list[list[int]]:
    """For each index, the other indices with the same key (a None key matches nothing)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        if k is not None:
            groups[k].append(i)
    return [[j for j in groups[k] if j != i] if k is not None else [] for i, k in enumerate(keys)]


def _student_key(name: str) -> str | None:
    key = " ".join(name.split()).casefold()
    return key or None  # no name given: nothing to compare


def _run_key(sub: SubmissionFiles) -> str | None:
    if any(not sub.files.get(f) for f in RUN_FILES):
        return None
    h = hashlib.sha256()
    for f in RUN_FILES:
        data = sub.files[f]
        h.update(len(data).to_bytes(8, "big") + data)  # the length keeps the two files' boundary
    return h.hexdigest()


def duplicate_flags(subs: Sequence[SubmissionFiles], students: Sequence[str], labels: Sequence[str]) -> list[list[str]]:
    """Per submission, its flags, naming the other submissions by ``labels``."""
    same_name = _same_key_groups([_student_key(s) for s in students])
    same_run = _same_key_groups([_run_key(s) for s in subs])
    flags: list[list[str]] = []
    for i in range(len(subs)):
        mine = []
        if same_name[i]:
            mine.append(f"same student name as {', '.join(labels[j] for j in same_name[i])}")
        if same_run[i]:
            mine.append(f"identical {' and '.join(RUN_FILES)} to {', '.join(labels[j] for j in same_run[i])}")
        flags.append(mine)
    return flags
