"""Shows each recorded prediction beside its outcome, once the toggle's window of steps has run.

It reads the window's mirror session (the same events the engine recorded),
so what it shows is what the grader will compute: the outcome comes from
gradsim.teaching.predictions on the same data. Each prediction is reported
once: a line in the event log, and the latest in the live toggles panel.
"""
from __future__ import annotations

import math
from html import escape
from typing import Optional

from PySide6.QtCore import QObject

from gradsim.session.store import Session
from gradsim.teaching.predictions import PAST, Outcome, Prediction, comparison_text, evaluate_prediction, prediction_events

from .panels.event_log import EventLog
from .panels.toggles import TogglesPanel

#: The event log's kind column for a prediction's outcome.
OUTCOME_KIND = "outcome"


def short_text(pred: Prediction, outcome: Outcome) -> str:
    """The outcome and the prediction in a few words (the event log's value column is narrow)."""
    said = f"you said {pred.signal}" + (f" {pred.decades}" if pred.signal != "stays" else "")
    if not outcome.direction:
        return f"unknown; {said}"
    if outcome.direction == "stays":
        return f"stayed ({outcome.decades:+.1f} decades); {said}"
    size = abs(outcome.decades)
    return f"{PAST[outcome.direction]} {size:.1f} decades; {said}" if math.isfinite(size) else f"{PAST[outcome.direction]} without bound; {said}"


class PredictionTracker(QObject):
    """Reports predictions whose outcome is complete; ``update`` is cheap enough for a 2 Hz timer."""

    def __init__(self, event_log: EventLog, toggles: TogglesPanel, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.event_log = event_log
        self.toggles = toggles
        self._reported: set[tuple[str, int, int, str]] = set()

    def clear(self) -> None:
        """A new run (or none): forget what was reported and hide the last outcome."""
        self._reported.clear()
        self.toggles.show_outcome("")

    def update(self, session: Optional[Session], branch: str = "") -> None:
        """Report the predictions of ``session`` whose outcome is in (``branch``: "" or "branch B")."""
        if session is None:
            return
        for n, (event, pred) in enumerate(prediction_events(session)):
            key = (branch, n, event.step, event.value)
            if key in self._reported:
                continue
            where = f"{branch}: " if branch else ""
            if not isinstance(pred, Prediction):  # a session from elsewhere with a value that cannot be read
                self._reported.add(key)
                self.event_log.add_message(OUTCOME_KIND, f"{where}{pred}", event.step)
                continue
            outcome = evaluate_prediction(session, event.step, pred)
            if not outcome.complete:
                continue
            self._reported.add(key)
            self.event_log.add_message(OUTCOME_KIND, where + short_text(pred, outcome), event.step, error=False,
                                       tip=where + comparison_text(pred, outcome))
            self.toggles.show_outcome(
                f"{escape(where)}<b>You predicted:</b> {escape(pred.text())}. "
                f"<b>Outcome:</b> {escape(outcome.text())}."
                f"<br><span style='color: #616161;'>{escape(pred.toggle)} at step {outcome.toggle_step if outcome.toggle_step is not None else event.step}"
                f"{', ' + escape(outcome.unit) if outcome.unit else ''}, {pred.window} steps after vs before</span>"
            )
