"""Lab exercise files (resources/exercises/*.toml) and the checks of their objectives.

Objectives are declarative data checked against a Session, never ``eval``:
each kind below is a small class with ``check(session, answers)``. The grader
re-evaluates them from the submitted session data and never trusts stored
results. The format is documented in docs/exercises.md.
"""
from __future__ import annotations

import json
import math
import operator
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..config import ConfigError, RunConfig
from ..events import EVENT_KINDS, START
from ..metric_words import OP_WORDS, STEP_MEAN_WORDS, event_words, layer_words, metric_words, step_words
from ..metrics import LAYER_METRICS, STEP_METRICS, middle_layer
from .diagnose import HEALTHY, KINDS as DIAGNOSIS_KINDS, diagnose
from .predictions import Prediction, PredictionError, evaluate_prediction, prediction_events, prediction_right
from .presets import load_preset
from ..resources import resource_path
from ..session.store import Session

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
LEVELS = ("intro", "intermediate", "advanced")
SUBMISSION_FORMAT = "gradsim-submission/1"
#: An exercise file's ``model`` for an exercise on the student's own model, recorded with
#: gradsim.watch: graded on the numbers handed in, since no settings rebuild the model.
WATCHED = "watched"
#: What a watched exercise's ``require`` may name: the keys gradsim.watch writes into the config.
WATCHED_CONFIG_KEYS = ("module", "optimizer", "lr", "every", "activations", "n_params")


class ExerciseError(ValueError):
    """A malformed exercise file: the message names the file, the key and the problem."""


@dataclass(frozen=True)
class Result:
    id: str
    text: str
    passed: bool
    detail: str
    value: Optional[float] = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "passed": self.passed, "detail": self.detail, "value": self.value}


# ------------------------------------------------------------ quantities
def _resolve_layer(spec: Any, n_layers: int) -> int:
    """Layer index (1-based) from an int or 'first' | 'middle' | 'last_hidden' | 'last'."""
    named = {"first": 1, "middle": middle_layer(n_layers), "last_hidden": max(1, n_layers - 1), "last": n_layers}
    return named[spec] if isinstance(spec, str) else int(spec)


def _row_at(session: Session, step: Any) -> Optional[int]:
    """Row index of ``step`` (an int, or 'last'); the nearest recorded row at or before it."""
    if len(session) == 0:
        return None
    if step == "last":
        return len(session) - 1
    i = int(np.searchsorted(session.steps, int(step), side="right")) - 1
    return i if i >= 0 else None


def _metric_at(session: Session, metric: str, step: Any, layer: Any = None) -> float:
    i = _row_at(session, step)
    if i is None:
        return float("nan")
    if metric in STEP_METRICS:
        return float(session.column(metric)[i])
    if metric in ("act_mean", "act_std", "act_saturation", "act_dead"):  # sampled: latest sample at or before
        rows = np.flatnonzero(session.has_stats[: i + 1])
        if rows.size == 0:
            return float("nan")
        i = int(rows[-1])
    idx = _resolve_layer(layer, session.n_layers)
    if not 1 <= idx <= session.n_layers:  # an exercise written for a deeper net: not recorded here
        return float("nan")
    return float(session.layer_metric(metric)[i, idx - 1])


@dataclass(frozen=True)
class Quantity:
    """A number computed from a session: a metric, a ratio of two layers, a mean, or the divergence step."""

    kind: str  # metric | layer_ratio | step_mean | diverged_at
    metric: str = ""
    layer: Any = None
    layer_a: Any = None
    layer_b: Any = None
    step: Any = 0
    #: > 1: the median over this many recorded rows up to ``step`` (a watched run's
    #: numbers move from step to step; one row would grade the noise).
    window: int = 1

    def value(self, s: Session) -> float:
        if self.window > 1 and self.kind in ("metric", "layer_ratio"):
            i = _row_at(s, self.step)
            if i is None:
                return float("nan")
            steps = s.steps[max(0, i - self.window + 1): i + 1].tolist()
            return float(np.median([self._at(s, int(k)) for k in steps]))  # NaN if any row has none
        return self._at(s, self.step) if self.kind in ("metric", "layer_ratio") else self._whole(s)

    def _at(self, s: Session, step: Any) -> float:
        if self.kind == "metric":
            return _metric_at(s, self.metric, step, self.layer)
        a = _metric_at(s, self.metric, step, self.layer_a)
        b = _metric_at(s, self.metric, step, self.layer_b)
        return a / b if b != 0 else float("inf")

    def _whole(self, s: Session) -> float:
        if self.kind == "step_mean":
            col = s.column(self.metric)
            return float(np.mean(col)) if col.size else float("nan")
        if self.kind == "diverged_at":
            return float("nan") if s.diverged_at is None else float(s.diverged_at)
        raise AssertionError(self.kind)

    def describe(self) -> str:
        """The quantity in plain words (gradsim.metric_words), as students read it."""
        words = metric_words(self.metric)
        if self.window <= 1:
            at = f"at {step_words(self.step)}"
        else:
            at = f"(median of the last {self.window} recorded steps)" if self.step == "last" else \
                f"(median of the {self.window} recorded steps up to {step_words(self.step)})"
        if self.kind == "metric":
            where = f" of {layer_words(self.layer)}" if self.metric in LAYER_METRICS else ""
            return f"{words}{where} {at}"
        if self.kind == "layer_ratio":
            return f"{words} of {layer_words(self.layer_a)} divided by that of {layer_words(self.layer_b)}, {at}"
        if self.kind == "step_mean":
            return STEP_MEAN_WORDS.get(self.metric, f"the mean {words} over the run")
        return "the step at which the run diverged"


# ------------------------------------------------------------ objectives
@dataclass(frozen=True)
class Objective:
    id: str
    text: str

    def check(self, s: Session, answers: dict[str, Any]) -> Result:  # pragma: no cover - overridden
        raise NotImplementedError

    def _result(self, passed: bool, detail: str, value: Optional[float] = None) -> Result:
        return Result(self.id, self.text, bool(passed), detail, value)

    def required(self) -> str:
        """What passing needs, in words (feedback pages show it beside the student's value)."""
        return self.text


@dataclass(frozen=True)
class Compare(Objective):
    """A quantity compared with a number (or inside [min, max])."""

    quantity: Quantity = field(default_factory=lambda: Quantity("metric"))
    op: str = ""
    target: float = 0.0
    lo: Optional[float] = None
    hi: Optional[float] = None

    def check(self, s: Session, answers: dict[str, Any]) -> Result:
        v = self.quantity.value(s)
        if not math.isfinite(v) and not (self.op in (">", ">=") and v == math.inf):
            return self._result(False, f"{self.quantity.describe()} is {v} (not recorded or not finite)", v)
        if self.op:
            ok = OPS[self.op](v, self.target)
            return self._result(ok, f"{self.quantity.describe()} = {v:.4g} (needs {self.op} {self.target:g})", v)
        ok = (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi)
        need = " and ".join(f"{word} {bound:g}" for word, bound in ((">=", self.lo), ("<=", self.hi)) if bound is not None)
        return self._result(ok, f"{self.quantity.describe()} = {v:.4g} (needs {need})", v)

    def required(self) -> str:
        if self.op:
            return f"{self.quantity.describe()}: {OP_WORDS.get(self.op, self.op)} {self.target:g}"
        if self.lo is not None and self.hi is not None:
            return f"{self.quantity.describe()}: between {self.lo:g} and {self.hi:g}"
        need = " and ".join(f"{word} {bound:g}" for word, bound in (("at least", self.lo), ("at most", self.hi)) if bound is not None)
        return f"{self.quantity.describe()}: {need}"


@dataclass(frozen=True)
class Accuracy(Objective):
    """Batch accuracy, averaged over `window` recorded steps, reaches `target` by step `by_step`."""

    target: float = 0.9
    by_step: int = 0
    window: int = 10

    def check(self, s: Session, answers: dict[str, Any]) -> Result:
        keep = s.steps <= self.by_step
        acc = s.column("accuracy")[keep]
        if acc.size == 0:
            return self._result(False, f"no steps recorded up to step {self.by_step}")
        w = min(self.window, acc.size)
        rolling = np.convolve(np.nan_to_num(acc), np.ones(w) / w, mode="valid")
        best = float(rolling.max())
        return self._result(best >= self.target, f"best {w}-step mean accuracy by step {self.by_step}: {best:.3f} (needs >= {self.target:g})", best)

    def required(self) -> str:
        return (f"a batch accuracy of at least {self.target:g} (the mean of {self.window} recorded steps) "
                f"by step {self.by_step}")


@dataclass(frozen=True)
class NoDivergence(Objective):
    steps: int = 0

    def check(self, s: Session, answers: dict[str, Any]) -> Result:
        if s.diverged_at is not None and s.diverged_at < self.steps:
            return self._result(False, f"diverged at step {s.diverged_at}, before step {self.steps}")
        if s.steps_run < self.steps:
            return self._result(False, f"ran {s.steps_run} steps, needs {self.steps} without diverging")
        return self._result(True, f"{s.steps_run} steps without divergence")

    def required(self) -> str:
        return f"{self.steps} steps without the run diverging (no inf or nan)"


@dataclass(frozen=True)
class Diverged(Objective):
    before: int = 10**9

    def check(self, s: Session, answers: dict[str, Any]) -> Result:
        if s.diverged_at is None:
            return self._result(False, "the run did not diverge")
        ok = s.diverged_at < self.before
        return self._result(ok, f"diverged at step {s.diverged_at}" + ("" if ok else f" (needs before {self.before})"), float(s.diverged_at))

    def required(self) -> str:
        return "the run diverges" + (f" before step {self.before}" if self.before < 10**9 else "")


@dataclass(frozen=True)
class EventHappened(Objective):
    """An event of `event` kind (value starting with `value`) at step >= `min_step`, at least `count` times."""

    event: str = ""
    value: str = ""
    min_step: int = 0
    count: int = 1

    def check(self, s: Session, answers: dict[str, Any]) -> Result:
        hits = [e for e in s.events if e.kind == self.event and e.value.startswith(self.value) and e.step >= self.min_step]
        want = f"{self.event}{'=' + self.value if self.value else ''}"
        where = f" at step >= {self.min_step}" if self.min_step else ""
        return self._result(len(hits) >= self.count, f"{len(hits)} x {want}{where} (needs {self.count})", float(len(hits)))

    def required(self) -> str:
        times = "at least once" if self.count == 1 else f"at least {self.count} times"
        where = f", at step {self.min_step} or later" if self.min_step else ""
        return f"{event_words(self.event, self.value)}, {times}{where}"


@dataclass(frozen=True)
class Answer(Objective):
    """A number the student types, checked against the value from their own session."""

    question: str = ""
    quantity: Quantity = field(default_factory=lambda: Quantity("metric"))
    rel_tol: Optional[float] = None
    abs_tol: Optional[float] = None
    log10_tol: Optional[float] = None

    def check(self, s: Session, answers: dict[str, Any]) -> Result:
        truth = self.quantity.value(s)
        raw = answers.get(self.id)
        try:
            given = float(raw)  # type: ignore[arg-type]  # None and non-numbers land in the except below
        except (TypeError, ValueError):
            return self._result(False, f"no numeric answer given (got {raw!r})", truth)
        if not math.isfinite(truth):
            return self._result(False, f"your session has no finite value for {self.quantity.describe()}", truth)
        if self.log10_tol is not None:
            ok = given > 0 and truth > 0 and abs(math.log10(given) - math.log10(truth)) <= self.log10_tol
        elif self.rel_tol is not None:
            ok = abs(given - truth) <= self.rel_tol * abs(truth)
        else:
            ok = abs(given - truth) <= (self.abs_tol or 0.0)
        return self._result(ok, f"answered {given:g}; your session gives {truth:.4g} ({self._tolerance()})", truth)

    def _tolerance(self) -> str:
        """The tolerance in words, as students read it in the panel and on feedback pages."""
        if self.log10_tol is not None:
            return f"within {self.log10_tol:g} decade{'' if self.log10_tol == 1 else 's'}"
        if self.rel_tol is not None:
            return f"within {self.rel_tol:.0%}"
        return f"within {self.abs_tol:g}" if self.abs_tol else "exactly equal to"

    def required(self) -> str:
        tol = self._tolerance()
        return f"your answer {tol} {'' if tol.startswith('exactly') else 'of '}your own run's value of {self.quantity.describe()}"


@dataclass(frozen=True)
class PredictionMatches(Objective):
    """The student's recorded prediction of the early layers' signal (grows / shrinks / stays)
    matches what the toggle did (gradsim.teaching.predictions).

    The *first* prediction recorded for ``toggle`` (any toggle when empty) is
    graded: predicting again after seeing the outcome does not count. With
    ``decades_tol`` the predicted number of decades must also be within that
    many decades of the measured change (a "stays" needs only its direction).
    """

    toggle: str = ""
    decades_tol: Optional[float] = None

    def check(self, s: Session, answers: dict[str, Any]) -> Result:
        found = [(e, p) for e, p in prediction_events(s) if isinstance(p, Prediction) and (not self.toggle or p.toggle == self.toggle)]
        which = f" before {self.toggle}" if self.toggle else " before a toggle"
        if not found:
            return self._result(False, f"no prediction was recorded{which}")
        event, pred = found[0]
        out = evaluate_prediction(s, event.step, pred)
        if not out.direction:
            return self._result(False, f"predicted the early signal {pred.text()} at step {event.step}; {out.detail}")
        if not out.complete:
            return self._result(False, f"predicted the early signal {pred.text()}; the outcome is measured {pred.window} steps after the toggle (not reached yet)")
        ok = bool(prediction_right(pred, out, self.decades_tol))
        return self._result(ok, f"predicted the early signal {pred.text()} at step {event.step}; it {out.text()}", out.decades)

    def required(self) -> str:
        amount = f" and its size within {self.decades_tol:g} decades" if self.decades_tol is not None else ""
        return f"a prediction{' before ' + self.toggle if self.toggle else ''} of the direction of the early layers' signal{amount} that matches the outcome"


@dataclass(frozen=True)
class DiagnosisIs(Objective):
    """What ``gradsim diagnose`` says of the session: ``healthy``, or a finding
    (``vanishing``, ``dead units``, ...) that must be there, or with ``present`` false absent."""

    verdict: str = HEALTHY
    present: bool = True

    def check(self, s: Session, answers: dict[str, Any]) -> Result:
        found = diagnose(s).verdict
        said = ", ".join(found)
        if self.verdict == HEALTHY:
            ok = found == [HEALTHY]
            return self._result(ok == self.present, f"gradsim diagnose says: {said}")
        ok = (self.verdict in found) == self.present
        return self._result(ok, f"gradsim diagnose says: {said}")

    def required(self) -> str:
        if self.verdict == HEALTHY:
            return "gradsim diagnose says healthy" if self.present else "gradsim diagnose finds a problem"
        return f"gradsim diagnose {'finds' if self.present else 'does not find'} {self.verdict}"


# ------------------------------------------------------------ parsing
@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    level: str
    body: str
    config: RunConfig
    events: tuple
    objectives: tuple[Objective, ...]
    require: dict[str, Any]
    path: Optional[Path] = None
    #: The panel shows no right/wrong marks until grading (a student cannot guess until green).
    hide_marks: bool = False
    #: On the student's own model (``model = "watched"``): graded on a gradsim.watch session,
    #: which cannot be replayed, so every grade is UNVERIFIED; ``config`` and ``events`` are unused.
    watched: bool = False
    #: The metric the plots open on when the starting point is loaded ("" leaves them as they are).
    view_metric: str = ""

    def evaluate(self, session: Session, answers: Optional[dict[str, Any]] = None) -> list[Result]:
        return [o.check(session, answers or {}) for o in self.objectives]

    def config_problems(self, config: dict[str, Any]) -> list[str]:
        """Required settings the session's starting config does not have."""
        problems = []
        for key, want in self.require.items():
            have = config.get(key)
            if isinstance(want, dict):
                lo, hi = want.get("min"), want.get("max")
                if not isinstance(have, (int, float)) or (lo is not None and have < lo) or (hi is not None and have > hi):
                    problems.append(f"{key} = {have!r}, the exercise needs {key} between {lo} and {hi}")
            elif isinstance(want, list):
                if have not in want:
                    problems.append(f"{key} = {have!r}, the exercise needs one of {want}")
            elif have != want:
                problems.append(f"{key} = {have!r}, the exercise needs {want!r}")
        return problems

    @property
    def answers(self) -> list[Answer]:
        return [o for o in self.objectives if isinstance(o, Answer)]


class _Reader:
    """Typed access to one TOML table with errors that name the file and the key."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def fail(self, key: str, problem: str) -> ExerciseError:
        return ExerciseError(f"{self.where}: key '{key}': {problem}")

    def get(self, key: str, typ: type | tuple, default: Any = ..., choices: tuple = ()) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is missing")
            return default
        v = self.data[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, typ) or (isinstance(v, bool) and typ is not bool):
            name = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            raise self.fail(key, f"must be {name}, got {v!r}")
        if choices and v not in choices:
            raise self.fail(key, f"{v!r} is not allowed; allowed: {', '.join(map(str, choices))}")
        return v

    def unknown(self, allowed: set[str]) -> None:
        extra = sorted(set(self.data) - allowed)
        if extra:
            raise self.fail(extra[0], f"is not a known key here; allowed: {', '.join(sorted(allowed))}")


_LAYER_TYPES = (int, str)
_LAYER_NAMES = ("first", "middle", "last_hidden", "last")


def _layer(r: _Reader, key: str, default: Any = ...) -> Any:
    v = r.get(key, _LAYER_TYPES, default)
    if isinstance(v, str) and v not in _LAYER_NAMES:
        raise r.fail(key, f"{v!r} is not a layer; use a number or one of {', '.join(_LAYER_NAMES)}")
    if isinstance(v, int) and v < 1:
        raise r.fail(key, f"layer {v} must be >= 1")
    return v


def _step(r: _Reader, key: str = "step", default: Any = 0) -> Any:
    v = r.get(key, (int, str), default)
    if isinstance(v, str) and v != "last":
        raise r.fail(key, f"{v!r} is not a step; use a number or 'last'")
    return v


def _window(r: _Reader) -> int:
    w = r.get("window", int, 1)
    if w < 1:
        raise r.fail("window", f"{w} must be >= 1 (the number of recorded steps whose median is taken)")
    return w


def _quantity(r: _Reader, kind: str) -> Quantity:
    all_metrics = STEP_METRICS + LAYER_METRICS
    if kind == "metric":
        metric = r.get("metric", str, choices=all_metrics)
        layer = _layer(r, "layer") if metric in LAYER_METRICS else None
        return Quantity("metric", metric, layer=layer, step=_step(r), window=_window(r))
    if kind == "layer_ratio":
        return Quantity("layer_ratio", r.get("metric", str, choices=LAYER_METRICS), layer_a=_layer(r, "layer_a"),
                        layer_b=_layer(r, "layer_b"), step=_step(r), window=_window(r))
    if kind == "step_mean":
        return Quantity("step_mean", r.get("metric", str, choices=STEP_METRICS))
    if kind == "diverged_at":
        return Quantity("diverged_at")
    raise r.fail("kind", f"{kind!r} is not a quantity; allowed: metric, layer_ratio, step_mean, diverged_at")


_COMMON = {"id", "kind", "text"}
_QTY_KEYS = {"metric", "layer", "layer_a", "layer_b", "step", "window"}


def _objective(raw: Any, where: str, index: int) -> Objective:
    if not isinstance(raw, dict):
        raise ExerciseError(f"{where}: objectives[{index}] must be a table")
    r = _Reader(raw, f"{where}: objectives[{index}]")
    kind = r.get("kind", str, choices=("metric", "layer_ratio", "accuracy", "no_divergence", "diverged", "event", "answer",
                                       "prediction", "diagnosis"))
    oid = r.get("id", str, f"o{index + 1}")
    text = r.get("text", str, "")
    if kind in ("metric", "layer_ratio"):
        r.unknown(_COMMON | _QTY_KEYS | {"op", "value", "min", "max"})
        q = _quantity(r, kind)
        if "op" in raw:
            return Compare(oid, text or f"{q.describe()} {raw['op']} {raw.get('value')}", q, r.get("op", str, choices=tuple(OPS)), r.get("value", float))
        lo, hi = r.get("min", float, None), r.get("max", float, None)
        if lo is None and hi is None:
            raise r.fail("op", "is missing: give op + value, or min and/or max")
        return Compare(oid, text or f"{q.describe()} within [{lo}, {hi}]", q, "", 0.0, lo, hi)
    if kind == "accuracy":
        r.unknown(_COMMON | {"value", "by_step", "window"})
        v = r.get("value", float)
        if not 0 <= v <= 1:
            raise r.fail("value", f"accuracy {v} must be between 0 and 1")
        return Accuracy(oid, text or f"accuracy >= {v:g} by step {raw.get('by_step')}", v, r.get("by_step", int), r.get("window", int, 10))
    if kind == "no_divergence":
        r.unknown(_COMMON | {"steps"})
        n = r.get("steps", int)
        return NoDivergence(oid, text or f"{n} steps without divergence", n)
    if kind == "diverged":
        r.unknown(_COMMON | {"before"})
        return Diverged(oid, text or "the run diverges", r.get("before", int, 10**9))
    if kind == "event":
        r.unknown(_COMMON | {"event", "value", "min_step", "count"})
        # Every run has a start event, so checking for one would pass on any run.
        ev = r.get("event", str, choices=tuple(k for k in EVENT_KINDS if k != START))
        return EventHappened(oid, text or f"a {ev} event", ev, r.get("value", str, ""), r.get("min_step", int, 0), r.get("count", int, 1))
    if kind == "diagnosis":
        r.unknown(_COMMON | {"verdict", "present"})
        verdict = r.get("verdict", str, HEALTHY, choices=(HEALTHY,) + DIAGNOSIS_KINDS)
        present = r.get("present", bool, True)
        obj = DiagnosisIs(oid, text, verdict, present)
        return obj if text else DiagnosisIs(oid, obj.required(), verdict, present)
    if kind == "prediction":
        r.unknown(_COMMON | {"toggle", "decades_tol"})
        toggle = r.get("toggle", str, "")
        if toggle:
            try:
                toggle = Prediction(toggle, "stays").toggle  # the spelling events.csv writes
            except PredictionError as exc:
                raise r.fail("toggle", str(exc)) from None
        tol = r.get("decades_tol", float, None)
        if tol is not None and not (math.isfinite(tol) and tol >= 0):
            raise r.fail("decades_tol", f"{tol} must be a number >= 0")
        return PredictionMatches(oid, text or f"predicted what {toggle or 'a toggle'} does to the early layers' signal", toggle, tol)
    # answer
    r.unknown(_COMMON | _QTY_KEYS | {"question", "compute", "rel_tol", "abs_tol", "log10_tol"})
    question = r.get("question", str)
    compute = r.get("compute", str, choices=("metric", "layer_ratio", "step_mean", "diverged_at"))
    tols = [k for k in ("rel_tol", "abs_tol", "log10_tol") if k in raw]
    if len(tols) != 1:
        raise r.fail("rel_tol", "an answer needs exactly one of rel_tol, abs_tol, log10_tol")
    tol = r.get(tols[0], float)
    if tol < 0:
        raise r.fail(tols[0], f"{tol} must be >= 0")
    q = _quantity(r, compute)
    return Answer(oid, text or question, question, q, **{tols[0]: tol})


def parse_exercise(text: str, where: str = "exercise", path: Optional[Path] = None) -> Exercise:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExerciseError(f"{where}: not valid TOML: {exc}") from None
    r = _Reader(data, where)
    r.unknown({"id", "title", "level", "body", "preset", "config", "events", "objectives", "require", "hide_marks", "model"})
    ex_id = r.get("id", str)
    title = r.get("title", str)
    level = r.get("level", str, "intro", choices=LEVELS)
    body = r.get("body", str, "")
    hide_marks = r.get("hide_marks", bool, False)
    watched = r.get("model", str, "", choices=(WATCHED,)) == WATCHED
    if watched:
        for key in ("preset", "config", "events"):
            if key in data:
                raise r.fail(key, f"a watched exercise (model = {WATCHED!r}) trains the student's own model: "
                                  "it has no preset, config or events")
    preset_name = r.get("preset", str, "")
    overrides = r.get("config", dict, {})
    try:
        base = load_preset(preset_name) if preset_name else None
    except ConfigError as exc:
        raise r.fail("preset", str(exc)) from None
    cfg = base.config if base else RunConfig()
    try:
        cfg = RunConfig.from_dict({**cfg.to_dict(), **overrides}, where=f"{where}: key 'config'")
    except ConfigError as exc:
        raise ExerciseError(str(exc)) from None
    from ..commands import CommandError, parse_event

    ev_texts = r.get("events", list, None)
    events = base.events if (base and ev_texts is None) else ()
    try:
        if ev_texts is not None:
            events = tuple(parse_event(str(e)) for e in ev_texts)
    except CommandError as exc:
        raise r.fail("events", str(exc)) from None
    objs_raw = r.get("objectives", list)
    if not objs_raw:
        raise r.fail("objectives", "needs at least one objective")
    objectives = tuple(_objective(o, where, i) for i, o in enumerate(objs_raw))
    ids = [o.id for o in objectives]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise r.fail("objectives", f"id {dup[0]!r} is used twice")
    require = r.get("require", dict, {})
    known = set(WATCHED_CONFIG_KEYS if watched else RunConfig.__dataclass_fields__)
    for k in require:
        if k not in known:
            what = "a key gradsim.watch records" if watched else "a config field"
            raise ExerciseError(f"{where}: key 'require.{k}': not {what}; allowed: {', '.join(sorted(known))}")
    return Exercise(ex_id, title, level, body, cfg, tuple(events), objectives, dict(require), path, hide_marks, watched,
                    _exercise_view(objectives, base))


def _exercise_view(objectives: Sequence[Objective], preset: Any) -> str:
    """The metric the exercise's objectives read first (what its questions are about), else its
    preset's view: exercise 5 asks about ||dL/dz|| and must not open on ||dL/dW||."""
    from .presets import VIEW_METRICS

    for o in objectives:
        metric = getattr(o, "metric", "") or getattr(getattr(o, "quantity", None), "metric", "")
        if metric in VIEW_METRICS:
            return str(metric)
    return str(getattr(preset, "view_metric", "") or "")


def load_exercise(path: str | Path) -> Exercise:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExerciseError(f"{path}: no such exercise file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExerciseError(f"{path}: cannot read ({exc})") from None
    return parse_exercise(text, str(path), path)


def exercise_files() -> list[Path]:
    folder = resource_path("exercises")
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def watched_exercise_files() -> list[Path]:
    """The shipped exercises on a student's own model (``model = "watched"``). Kept in their own
    folder: the window's Exercise dock runs exercises in the simulator, which cannot train them."""
    folder = resource_path("exercises", WATCHED)
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


# ------------------------------------------------------------ submissions
def write_submission(folder: str | Path, exercise: Exercise, session: Session, answers: dict[str, Any], student: str = "") -> Path:
    """Export the session and a submission.json beside it (atomically).

    ``student`` (a name or ID for the grade book) is optional: submissions
    without it still grade, with an empty student column.
    """
    from ..session.io import export_session, write_atomic

    folder = Path(folder)
    export_session(session, folder)
    results = exercise.evaluate(session, answers)
    doc = {
        "format": SUBMISSION_FORMAT,
        "exercise": exercise.id,
        **({"student": student.strip()} if student.strip() else {}),
        "answers": answers,
        # Informative only (the grader recomputes). Answers' true values are left
        # out, or a student could read them here and type them in; with hide_marks
        # so is every mark, which the panel keeps hidden until grading.
        "results": [
            {"id": r.id} if exercise.hide_marks else {"id": r.id, "passed": r.passed} if isinstance(o, Answer) else r.to_dict()
            for o, r in zip(exercise.objectives, results)
        ],
    }
    write_atomic(folder / "submission.json", json.dumps(doc, indent=2, allow_nan=True) + "\n")
    return folder


#: An exercise's "during the run" change is asked for no earlier than this step: by then the plots
#: show the problem the change is meant to fix.
EARLIEST_CHANGE_STEP = 50


def mid_run_changes(ex: Exercise) -> list[tuple[int, str]]:
    """The changes an exercise asks the student to make while the run trains: (the step to pause
    at, what to do), in step order. An ``event`` objective with ``min_step`` > 0 whose change the
    exercise does not schedule itself is one; the pause comes at ``min_step`` (at least
    EARLIEST_CHANGE_STEP, and before the run's last step)."""
    scheduled = {(s.command.key, s.command.value()) for s in ex.events}
    out = []
    for o in ex.objectives:
        if not isinstance(o, EventHappened) or o.min_step <= 0:
            continue
        if any(kind == o.event and value.startswith(o.value) for kind, value in scheduled):
            continue
        step = min(max(o.min_step, EARLIEST_CHANGE_STEP), max(1, ex.config.steps - 1))
        out.append((step, o.text or o.required()))
    return sorted(out)
