"""The grade of one submission: plain data that travels back from any worker."""
from __future__ import annotations

from dataclasses import dataclass

from ..teaching.exercises import Result

#: Why a watched session's grade is never verified (the feedback page and the scores CSV say it).
WATCHED_NOTE = ("not replayed: a watched session of your own model cannot be re-run (no settings rebuild "
                "the model), so the numbers handed in were graded as they are")


@dataclass
class Grade:
    """The grade of one submission. ``error`` (unreadable, or a replay mismatch) scores 0."""

    submission: str
    exercise_ok: bool
    config_problems: list[str]
    results: list[Result]
    error: str = ""
    student: str = ""
    #: True: the submitted data matched its replay and the objectives were evaluated
    #: on the replay. False: not replayed (``--no-replay``): the CSVs were trusted.
    verified: bool = False
    replay_note: str = ""
    #: Graded for a watched exercise (the student's own model): UNVERIFIED by nature, never replayed.
    watched: bool = False

    @property
    def check_status(self) -> str:
        """``replayed``, ``unverified`` (not re-run: --no-replay, or a watched model), or "" (not graded)."""
        if self.verified:
            return "replayed"
        return "" if self.error else "unverified"

    @property
    def score(self) -> float:
        if self.error or not self.exercise_ok or self.config_problems or not self.results:
            return 0.0
        return sum(r.passed for r in self.results) / len(self.results)

    @property
    def problems(self) -> list[str]:
        return ([self.error] if self.error else []) + self.config_problems
