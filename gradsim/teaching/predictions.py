"""Predict, then toggle: what a student predicted a toggle would do, and what it did.

Students who commit to a prediction before a demonstration understand it
better than those who only watch it (Crouch et al. 2004), so the window can ask
before it applies a toggle. The prediction is recorded as an event of kind
``prediction`` just before the toggle, at the same step, with the value

    toggle=KEY=VALUE;signal=grows|shrinks|stays;decades=D[;window=N]

``toggle`` is the command it is made for (``batchnorm=on``), ``signal`` the
predicted direction of the early layers' backprop signal, ``decades`` by how
many powers of ten (a whole number 0-6; 0 for ``stays``), ``window`` how many
steps after the toggle the outcome is measured over (default 50).

The outcome: the backprop signal ||dL/dz|| of the first unit that has one
(layer 1 of an MLP, the layer the lessons watch vanish) over the ``window``
steps from the toggle on, against the ``window`` steps before it. Each side is
the median of log10 ||dL/dz|| over its recorded rows, so one noisy batch or a
single spike moves neither; the difference is the change in decades. Within a
factor ``STAYS_FACTOR`` = 2 (0.3 decades) either way it *stays*: the norm of a
mini-batch gradient moves by tens of percent from step to step on its own,
while the changes the lessons are about (vanishing, exploding, a rescue) are a
decade or more, so a factor 2 separates noise from an effect without hiding
one. Non-finite values are data: a signal that overflows to inf grew, one
that underflows to 0 shrank.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..commands import CommandError, parse_command
from ..events import PREDICTION
from ..models.family import carries_signal
from ..session.store import Event, Session

#: The predicted directions of the early layers' signal.
SIGNALS = ("grows", "shrinks", "stays")
#: Largest number of decades a prediction may name (the window's spin box goes 0 to this).
MAX_DECADES = 6
#: Steps after (and before) the toggle the outcome is measured over, unless the prediction says.
DEFAULT_WINDOW = 50
MAX_WINDOW = 100_000
#: A change within this factor either way "stays" (see the module docstring for why 2).
STAYS_FACTOR = 2.0
STAYS_DECADES = math.log10(STAYS_FACTOR)
#: The metric the outcome reads.
SIGNAL_METRIC = "act_grad_norm"

#: Each direction in the past tense, as outcomes are told.
PAST = {"grows": "grew", "shrinks": "shrank", "stays": "stayed"}


class PredictionError(ValueError):
    """A malformed prediction; the message names the bad value and what is allowed."""


def _decades_word(n: float) -> str:
    return "decade" if n == 1 else "decades"


@dataclass(frozen=True)
class Prediction:
    """What the student predicted ``toggle`` would do to the early layers' signal."""

    toggle: str  # the command's KEY=VALUE, as events.csv writes it
    signal: str  # grows | shrinks | stays
    decades: int = 0
    window: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        try:
            command = parse_command(str(self.toggle))
        except CommandError as exc:
            raise PredictionError(f"prediction toggle={self.toggle}: not a toggle ({exc})") from None
        object.__setattr__(self, "toggle", command.text())  # one spelling: batchnorm=true reads as batchnorm=on
        if self.signal not in SIGNALS:
            raise PredictionError(f"prediction signal={self.signal!r}: allowed {', '.join(SIGNALS)}")
        if isinstance(self.decades, bool) or not isinstance(self.decades, int) or not 0 <= self.decades <= MAX_DECADES:
            raise PredictionError(f"prediction decades={self.decades!r}: allowed a whole number 0 to {MAX_DECADES}")
        if self.signal == "stays" and self.decades != 0:
            raise PredictionError(f"prediction decades={self.decades}: a signal that stays changes by 0 decades")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or not 1 <= self.window <= MAX_WINDOW:
            raise PredictionError(f"prediction window={self.window!r}: allowed a whole number 1 to {MAX_WINDOW}")

    @property
    def toggle_key(self) -> str:
        return self.toggle.partition("=")[0]

    @property
    def toggle_value(self) -> str:
        return self.toggle.partition("=")[2]

    def text(self) -> str:
        """In words: 'grows by 2 decades'."""
        if self.signal == "stays":
            return f"stays (within a factor {STAYS_FACTOR:g})"
        if self.decades == 0:
            return f"{self.signal} by less than a decade"
        return f"{self.signal} by {self.decades} {_decades_word(self.decades)}"


def format_prediction(p: Prediction) -> str:
    """The event value (the ``window`` is written only when it is not the default)."""
    parts = [f"toggle={p.toggle}", f"signal={p.signal}", f"decades={p.decades}"]
    if p.window != DEFAULT_WINDOW:
        parts.append(f"window={p.window}")
    return ";".join(parts)


def _whole(key: str, text: str) -> int:
    if not text.strip().isdigit():
        raise PredictionError(f"prediction {key}={text!r}: expected a whole number")
    return int(text)


def parse_prediction(value: str) -> Prediction:
    """The Prediction an event value stands for; PredictionError names what is wrong."""
    fields: dict[str, str] = {}
    for part in str(value).split(";"):
        if not part.strip():
            continue
        key, eq, text = part.strip().partition("=")
        if not eq:
            raise PredictionError(f"prediction {value!r}: {part!r} is not KEY=VALUE; expected toggle=..;signal=..;decades=..")
        if key not in ("toggle", "signal", "decades", "window"):
            raise PredictionError(f"prediction {value!r}: unknown key {key!r}; allowed toggle, signal, decades, window")
        if key in fields:
            raise PredictionError(f"prediction {value!r}: {key} is given twice")
        fields[key] = text.strip()
    missing = [k for k in ("toggle", "signal", "decades") if k not in fields]
    if missing:
        raise PredictionError(f"prediction {value!r}: {missing[0]} is missing; expected toggle=KEY=VALUE;signal=grows|shrinks|stays;decades=0-{MAX_DECADES}")
    window = _whole("window", fields["window"]) if "window" in fields else DEFAULT_WINDOW
    return Prediction(fields["toggle"], fields["signal"], _whole("decades", fields["decades"]), window)


# ------------------------------------------------------------------ outcome
@dataclass(frozen=True)
class Outcome:
    """What the toggle did to the early layers' signal (``direction`` "" when it cannot be said: see ``detail``)."""

    direction: str
    decades: float  # log10(after / before) of the medians; nan when unknown
    before: float  # median ||dL/dz|| over the window before the toggle
    after: float  # ... and over the window from the toggle on
    unit: str  # the unit whose signal was read
    toggle_step: Optional[int]
    #: The window after the toggle is over (or the run ended): the outcome will not change.
    complete: bool
    detail: str = ""

    def text(self) -> str:
        """In words: 'grew by 3.1 decades'."""
        if not self.direction:
            return self.detail
        if self.direction == "stays":
            return f"stayed within a factor {STAYS_FACTOR:g} ({self.decades:+.2f} decades)"
        size = abs(self.decades)
        amount = f"{size:.1f}" if math.isfinite(size) else "an unbounded number of"
        return f"{PAST[self.direction]} by {amount} decades"


def signal_unit(session: Session) -> Optional[int]:
    """Row index (0-based) of the first unit with a recorded backprop signal, or None."""
    if len(session) == 0:
        return None
    values = session.layer_metric(SIGNAL_METRIC)
    for j, unit in enumerate(session.units):
        if carries_signal(unit.kind) and np.any(~np.isnan(values[:, j])):
            return j
    return None


def _level(values: np.ndarray) -> float:
    """Median of log10 over the recorded values (nan dropped; 0 is -inf and inf is +inf: data, not errors)."""
    v = values[~np.isnan(values)].astype(np.float64)
    if v.size == 0:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.abs(v))
    return float(np.median(logs))


def direction_of(decades: float) -> str:
    """grows | shrinks | stays for a change of ``decades`` ("" when it is nan)."""
    if math.isnan(decades):
        return ""
    if decades > STAYS_DECADES:
        return "grows"
    if decades < -STAYS_DECADES:
        return "shrinks"
    return "stays"


def _ended(session: Session) -> bool:
    steps = session.config.get("steps")
    return session.diverged_at is not None or (isinstance(steps, int) and session.steps_run >= steps)


def evaluate_prediction(session: Session, step: int, prediction: Prediction) -> Outcome:
    """The outcome of the toggle the prediction recorded at ``step`` was made for."""
    toggle = next((e for e in session.events if e.step >= step and e.kind == prediction.toggle_key
                   and e.value == prediction.toggle_value), None)
    unit = signal_unit(session)
    name = session.units[unit].name if unit is not None else ""
    if toggle is None:
        return Outcome("", math.nan, math.nan, math.nan, name, None, _ended(session),
                       f"{prediction.toggle} was not applied after the prediction (refused, or not yet)")
    t0, w = int(toggle.step), prediction.window
    complete = session.steps_run >= t0 + w or _ended(session)
    if unit is None:
        return Outcome("", math.nan, math.nan, math.nan, name, t0, complete, "no layer with a backprop signal was recorded")
    steps = session.steps
    col = session.layer_metric(SIGNAL_METRIC)[:, unit]
    before = col[(steps >= t0 - w) & (steps < t0)]
    after = col[(steps >= t0) & (steps < t0 + w)]
    lb, la = _level(before), _level(after)
    if math.isnan(lb):
        return Outcome("", math.nan, math.nan, 10.0 ** la if math.isfinite(la) else la, name, t0, complete,
                       f"no steps were recorded before the toggle at step {t0} to compare with")
    if math.isnan(la):
        return Outcome("", math.nan, 10.0 ** lb, math.nan, name, t0, complete, f"no steps recorded after the toggle at step {t0} yet")
    with np.errstate(invalid="ignore"):
        decades = la - lb
    d = direction_of(decades)
    detail = "" if d else f"the signal of {name} was {10.0 ** lb:g} before and {10.0 ** la:g} after: no change can be measured"
    return Outcome(d, decades, 10.0 ** lb, 10.0 ** la, name, t0, complete, detail)


def prediction_events(session: Session) -> list[tuple[Event, "Prediction | PredictionError"]]:
    """Every prediction event, in order, with its parsed prediction or the reason it cannot be read."""
    out: list[tuple[Event, Prediction | PredictionError]] = []
    for e in session.events:
        if e.kind == PREDICTION:
            try:
                out.append((e, parse_prediction(e.value)))
            except PredictionError as exc:
                out.append((e, exc))
    return out


def comparison_text(prediction: Prediction, outcome: Outcome) -> str:
    """'You predicted: grows by 2 decades. Outcome: grew by 3.1 decades.' (with the toggle and the layer)."""
    where = f" ({outcome.unit}, {prediction.window} steps after vs before)" if outcome.direction else ""
    return f"{prediction.toggle}: you predicted the early signal {prediction.text()}. Outcome: {outcome.text()}{where}."


def prediction_right(prediction: Prediction, outcome: Outcome, decades_tol: Optional[float] = None) -> Optional[bool]:
    """Whether the predicted direction (and, with ``decades_tol``, its size) matched the outcome;
    None while the outcome cannot be said or its window has not passed (nothing to mark yet)."""
    if not outcome.direction or not outcome.complete:
        return None
    ok = prediction.signal == outcome.direction
    if ok and decades_tol is not None and prediction.signal != "stays":
        ok = abs(prediction.decades - abs(outcome.decades)) <= decades_tol
    return ok
