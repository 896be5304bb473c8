"""The class report: one index page for a graded class.

An instructor grading 30 submissions wants, on one page: how the scores are
spread, which objectives the class missed, what the wrong answers were, every
student's depth profile side by side (a wrong lesson shows as an odd curve),
and which submissions look copied. ``gradsim check ... --report DIR`` writes
``DIR/index.html`` (self-contained: pictures are embedded) from the grades and
the submitted files; feedback pages, when written, are linked from each row.

What is flagged, and why each test:
- *duplicate student*: two submissions name the same student (names compared
  case- and space-insensitively): the grade book would hold two rows.
- *identical data*: the session's CSVs (steps, layers, events) are byte for
  byte the same as another submission's. A replay cannot tell copies apart
  (both replay honestly), so this is the only way to see them.
- *same run*: the same config and the same changes of the student's own
  (toggles the exercise does not prescribe, at the same steps) as another
  submission, even where the CSVs differ in a wall-clock column. Two students
  who toggle at the very same step are unlikely; a run the exercise
  prescribes completely is the same for everyone, so it is never flagged.

Everything here is plain data in, HTML out: no Qt, and the pictures are drawn
with matplotlib's Agg backend (as the feedback pages are).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..events import COMMAND_KINDS
from ..safe_json import parse_json
from ..session.io import write_atomic
from ..teaching.exercises import Answer, Exercise
from ..teaching.predictions import DEFAULT_WINDOW, Prediction, evaluate_prediction, prediction_events, prediction_right
from .grade import Grade
from .submission import SUBMISSION_JSON, SubmissionFiles

#: The files whose bytes decide "identical data" (session.json holds a creation time).
DATA_FILES = ("steps.csv", "layers.csv", "events.csv")
#: Most wrong answers listed per question.
TOP_WRONG = 3
#: Depth profiles per row of the class grid.
GRID_COLUMNS = 6


@dataclass
class ClassEntry:
    """One graded submission, as the report needs it."""

    name: str  # the submission's short name (its feedback page is NAME.html)
    grade: Grade
    answers: dict[str, Any] = field(default_factory=dict)
    #: ||dL/dz|| per layer at the first and the last recorded step (empty when unreadable).
    profile_start: np.ndarray = field(default_factory=lambda: np.empty(0))
    profile_end: np.ndarray = field(default_factory=lambda: np.empty(0))
    #: sha256 of the data files; "" when the submission had none.
    data_digest: str = ""
    #: The run's identity (config and the student's own changes, canonical JSON);
    #: "" when unreadable or when the student changed nothing the exercise did not prescribe.
    run_key: str = ""
    #: Each recorded prediction, in words, with what the toggle did.
    predictions: list["PredictionRow"] = field(default_factory=list)


@dataclass(frozen=True)
class PredictionRow:
    """One prediction a student recorded before a toggle, and how it turned out."""

    step: int
    toggle: str  # the command's KEY=VALUE ("" when the prediction could not be read)
    said: str  # the prediction in words, or why it cannot be read
    outcome: str  # what the early layers' signal did, in words ("" when unknown)
    #: The direction matched the outcome (None: the outcome cannot be said, or its window has not passed).
    right: Optional[bool]

    def text(self) -> str:
        mark = {True: "right", False: "wrong", None: "not marked"}[self.right]
        what = f"{self.toggle}: {self.said}" if self.toggle else self.said
        return f"step {self.step}: {what}; it {self.outcome} ({mark})" if self.outcome else f"step {self.step}: {what} ({mark})"


def prediction_rows(session: Any) -> list[PredictionRow]:
    """The session's predictions judged by the rule the exercises grade with (the direction)."""
    rows = []
    for event, pred in prediction_events(session):
        if isinstance(pred, Prediction):
            out = evaluate_prediction(session, event.step, pred)
            rows.append(PredictionRow(int(event.step), pred.toggle, pred.text(), out.text() if out.direction else out.detail,
                                      prediction_right(pred, out)))
        else:
            rows.append(PredictionRow(int(event.step), "", f"unreadable prediction ({pred})", "", None))
    return rows


def prediction_summary(entries: Sequence[ClassEntry]) -> list[dict[str, Any]]:
    """Per toggle: how many predicted it, how many were right, wrong or not marked, and what was said."""
    by: dict[str, list[PredictionRow]] = {}
    for e in entries:
        for r in e.predictions:
            by.setdefault(r.toggle or "(unreadable)", []).append(r)
    out = []
    for toggle, rows in sorted(by.items()):
        said = Counter(r.said for r in rows)
        out.append({"toggle": toggle, "n": len(rows), "right": sum(r.right is True for r in rows),
                    "wrong": sum(r.right is False for r in rows), "unmarked": sum(r.right is None for r in rows),
                    "said": said.most_common()})
    return out


def _student_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def entry_for(sub: SubmissionFiles, grade: Grade, name: str, exercise: Optional[Exercise] = None) -> ClassEntry:
    """Read what the report needs from a submission's files (never raises: an
    unreadable part leaves its fields empty; the grade already says why)."""
    entry = ClassEntry(name=name, grade=grade)
    if sub.error:
        return entry
    try:
        meta = parse_json(sub.files.get(SUBMISSION_JSON, b"{}").decode("utf-8"))
        if isinstance(meta, dict) and isinstance(meta.get("answers"), dict):
            entry.answers = dict(meta["answers"])
    except (ValueError, UnicodeDecodeError):
        pass
    if all(f in sub.files for f in DATA_FILES):
        h = hashlib.sha256()
        for f in DATA_FILES:
            h.update(f.encode() + b"\0" + hashlib.sha256(sub.files[f]).digest())
        entry.data_digest = h.hexdigest()
    try:
        from ..session.io import SessionFormatError, load_session

        session = load_session(sub.files, where=sub.path)
    except (SessionFormatError, ValueError, KeyError, TypeError):
        return entry
    if len(session):
        g = session.layer_metric("act_grad_norm")
        entry.profile_start = np.asarray(g[0], dtype=np.float64)
        entry.profile_end = np.asarray(g[-1], dtype=np.float64)
    prescribed = {(s.step, s.command.key, s.command.value()) for s in (exercise.events if exercise is not None else ())}
    own = [(e.step, e.kind, e.value) for e in session.events if e.kind in COMMAND_KINDS and (e.step, e.kind, e.value) not in prescribed]
    if own:  # only a run with choices of the student's own can be "the same run" as another's
        entry.run_key = json.dumps({"config": session.config, "events": own}, sort_keys=True, default=str)
    entry.predictions = prediction_rows(session)
    return entry


def find_flags(entries: Sequence[ClassEntry]) -> dict[str, list[str]]:
    """name -> the flags of that submission (see the module docstring), naming the other submissions."""
    flags: dict[str, list[str]] = {e.name: [] for e in entries}

    def mark(key_of: Any, text: str) -> None:
        groups: dict[str, list[str]] = {}
        for e in entries:
            key = key_of(e)
            if key:
                groups.setdefault(key, []).append(e.name)
        for names in groups.values():
            if len(names) > 1:
                for n in names:
                    flags[n].append(f"{text} as {', '.join(m for m in names if m != n)}")

    mark(lambda e: _student_key(e.grade.student), "same student name")
    mark(lambda e: e.data_digest, "identical data")
    identical = {e.name for e in entries if any(f.startswith("identical data") for f in flags[e.name])}
    mark(lambda e: e.run_key if e.name not in identical else "", "same run (config, seed and events)")
    return flags


def objective_rates(exercise: Exercise, entries: Sequence[ClassEntry]) -> list[dict[str, Any]]:
    """Per objective: how many of the graded submissions passed it (unreadable ones count as not passed)."""
    rows = []
    for i, o in enumerate(exercise.objectives):
        passed = sum(1 for e in entries if i < len(e.grade.results) and e.grade.results[i].passed)
        n = len(entries)
        rows.append({"id": o.id, "text": o.text or o.id, "passed": passed, "n": n, "rate": passed / n if n else float("nan")})
    return rows


def wrong_answers(exercise: Exercise, entries: Sequence[ClassEntry]) -> list[dict[str, Any]]:
    """Per question: the most common answers of the students who got it wrong."""
    out = []
    for i, o in enumerate(exercise.objectives):
        if not isinstance(o, Answer):
            continue
        wrong: Counter[str] = Counter()
        for e in entries:
            if i < len(e.grade.results) and not e.grade.results[i].passed:
                wrong[_answer_text(e.answers.get(o.id))] += 1
        out.append({"id": o.id, "question": o.question or o.text or o.id, "wrong": wrong.most_common(TOP_WRONG), "n_wrong": sum(wrong.values())})
    return out


def _answer_text(v: Any) -> str:
    if v is None or v == "":
        return "(no answer)"
    if isinstance(v, float):
        return f"{v:.3g}"
    return " ".join(str(v).split())[:60]


# ------------------------------------------------------------------ pictures
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(w: float, h: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display; a no-op when Agg is already active
    from matplotlib.figure import Figure  # the OO API: no pyplot global state

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def score_histogram(scores: Sequence[float], max_points: float, n_objectives: int) -> str:
    """A bar chart of the class's points (base64 PNG): one bar per possible score
    (a score is the fraction of objectives met, so there are n_objectives + 1)."""
    fig = _figure(6.0, 2.8)
    ax = fig.add_subplot()
    points = [s * max_points for s in scores]
    levels = max(1, n_objectives)
    width = max_points / levels
    bins = (np.arange(levels + 2) - 0.5) * width  # centred on 0, width, ..., max_points
    ax.hist(points, bins=bins, color="tab:blue", edgecolor="white", rwidth=0.9)
    ax.set_xticks(np.arange(levels + 1) * width)
    ax.set_xlabel(f"points (of {max_points:g})")
    ax.set_ylabel("submissions")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Score distribution", fontsize=10)
    return _png(fig)


def profile_grid(entries: Sequence[ClassEntry], flags: dict[str, list[str]]) -> str:
    """Every student's ||dL/dz|| depth profile, start and end, as small multiples (base64 PNG)."""
    n = max(1, len(entries))
    cols = min(GRID_COLUMNS, n)
    rows = math.ceil(n / cols)
    fig = _figure(2.1 * cols, 1.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for k, ax in enumerate(axes.flat):
        if k >= len(entries):
            ax.set_visible(False)
            continue
        e = entries[k]
        for prof, style, colour in ((e.profile_start, "o-", "tab:blue"), (e.profile_end, "s--", "tab:orange")):
            ok = np.isfinite(prof) & (prof > 0)
            if ok.any():
                ax.plot(np.arange(1, prof.size + 1)[ok], prof[ok], style, color=colour, ms=2, lw=1)
        ax.set_yscale("log")
        who = e.grade.student or e.name
        ax.set_title(who[:22], fontsize=7, color="#b00020" if flags.get(e.name) else "black")
        ax.tick_params(labelsize=6)
        if not (e.profile_start.size or e.profile_end.size):
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, fontsize=7)
    fig.supxlabel("layer (1 = next to the input)", fontsize=8)
    fig.supylabel("||dL/dz||", fontsize=8)
    return _png(fig)


# ------------------------------------------------------------------ page
def render_report(exercise: Exercise, entries: Sequence[ClassEntry], max_points: float,
                  feedback_dir: Optional[str] = None) -> str:
    """The index page's HTML."""
    import jinja2

    flags = find_flags(entries)
    scores = [e.grade.score for e in entries]
    readable = [e for e in entries if not e.grade.error]
    summary = {
        "n": len(entries),
        "mean": statistics.fmean(scores) * max_points if scores else float("nan"),
        "median": statistics.median(scores) * max_points if scores else float("nan"),
        "full": sum(1 for s in scores if s >= 1.0),
        "errors": len(entries) - len(readable),
        "flagged": sum(1 for v in flags.values() if v),
    }
    predictions = [(e, p) for e in entries for p in e.predictions]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        exercise=exercise, entries=entries, flags=flags, max_points=max_points, summary=summary,
        objectives=objective_rates(exercise, entries), wrong=wrong_answers(exercise, entries),
        histogram=score_histogram(scores, max_points, len(exercise.objectives)) if entries else "",
        grid=profile_grid(entries, flags) if entries else "",
        feedback=feedback_dir, n_predictions=len(predictions),
        window=DEFAULT_WINDOW, predictors=len({e.name for e, _ in predictions}), n_right=sum(p.right is True for _, p in predictions),
        n_wrong=sum(p.right is False for _, p in predictions), prediction_table=prediction_summary(entries),
    )


def write_class_report(out_dir: Path, exercise: Exercise, entries: Sequence[ClassEntry], max_points: float,
                       feedback_dir: Optional[Path] = None) -> Path:
    """Write ``out_dir/index.html`` (atomically) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    link = None
    if feedback_dir is not None:
        try:
            link = str(Path(feedback_dir).resolve().relative_to(out_dir.resolve()))
        except ValueError:
            link = Path(feedback_dir).resolve().as_uri()
    path = out_dir / "index.html"
    write_atomic(path, render_report(exercise, entries, max_points, link).encode("utf-8"))
    return path


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ exercise.title }} - class report</title>
<style>
 body { font-family: sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
 table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
 th, td { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 .flag { color: #b00020; } .pass { color: #176f2c; } .fail { color: #b00020; }
 .bar { display: inline-block; height: .8rem; background: #4a90d9; vertical-align: middle; }
 .note { color: #444; font-size: .9rem; }
</style></head>
<body>
<h1>{{ exercise.title }}: class report</h1>
<p>{{ summary.n }} submission(s); mean {{ "%.3g"|format(summary.mean) }} and median {{ "%.3g"|format(summary.median) }}
of {{ "%g"|format(max_points) }} points; {{ summary.full }} with every objective met;
{{ summary.errors }} that could not be graded (score 0, the reason is in the table);
<span class="{{ 'flag' if summary.flagged else '' }}">{{ summary.flagged }} flagged</span>.</p>
{% if exercise.watched %}<p><strong>UNVERIFIED</strong>: this exercise grades gradsim.watch sessions of the students' own
models. No settings rebuild such a model, so no submission could be re-run: every score comes from the numbers handed in,
and only copies (identical data) can be seen here.</p>{% endif %}
{% if histogram %}<img src="data:image/png;base64,{{ histogram }}" width="600" alt="Histogram of the class's points">{% endif %}

<h2>Objectives</h2>
<table><thead><tr><th>Objective</th><th>Passed</th><th>Rate</th></tr></thead><tbody>
{% for o in objectives %}<tr><td>{{ o.text }} <span class="note">({{ o.id }})</span></td>
<td class="num">{{ o.passed }} / {{ o.n }}</td>
<td><span class="bar" style="width: {{ (100 * o.rate)|round|int if o.n else 0 }}px"></span> {{ "%.0f"|format(100 * o.rate) if o.n else "-" }}&nbsp;%</td></tr>
{% endfor %}</tbody></table>

{% if wrong %}<h2>Most common wrong answers</h2>
<table><thead><tr><th>Question</th><th>Wrong answers (how many gave each)</th></tr></thead><tbody>
{% for q in wrong %}<tr><td>{{ q.question }}</td><td>{% if q.wrong %}{% for text, count in q.wrong %}{{ text }} ({{ count }}){% if not loop.last %}; {% endif %}{% endfor %}{% else %}nobody got it wrong{% endif %}</td></tr>
{% endfor %}</tbody></table>{% endif %}

<h2>Predictions</h2>
{% if n_predictions %}<p>{{ n_predictions }} prediction(s) recorded by {{ predictors }} student(s) before a toggle:
<strong>{{ n_right }} right</strong>, {{ n_wrong }} wrong{% if n_predictions - n_right - n_wrong %}, {{ n_predictions - n_right - n_wrong }} not marked (the outcome could not be measured){% endif %}.
A prediction is right when the direction it named (grows, shrinks, stays) is what the early layers' signal did over the
{{ window }} steps after the toggle, compared with the {{ window }} before (the rule the exercises grade with); each student's are in the table below.</p>
<table><thead><tr><th>Toggle</th><th>Predictions</th><th>Right</th><th>Wrong</th><th>What the class said (how many)</th></tr></thead><tbody>
{% for t in prediction_table %}<tr><td>{{ t.toggle }}</td><td class="num">{{ t.n }}</td><td class="num">{{ t.right }}</td><td class="num">{{ t.wrong }}</td>
<td>{% for text, count in t.said %}{{ text }} ({{ count }}){% if not loop.last %}; {% endif %}{% endfor %}</td></tr>
{% endfor %}</tbody></table>
{% else %}<p class="note">No predictions were recorded in these submissions (students record one when the window asks "what will happen?" before a toggle).</p>{% endif %}

<h2>Every student's depth profile</h2>
{% if grid %}<img src="data:image/png;base64,{{ grid }}" style="max-width: 100%" alt="A grid of each student's backprop-signal depth profile">
<p class="note">||dL/dz|| per layer, log scale: blue at the first recorded step, orange at the last. Names in red are flagged below.
An honest class's curves look alike but not the same; a curve unlike the others is worth a look.</p>{% endif %}

<h2>Submissions</h2>
<table><thead><tr><th>Submission</th><th>Student</th><th>Points</th><th>Checked</th><th>Flags and problems</th>{% if n_predictions %}<th>Predictions</th>{% endif %}</tr></thead><tbody>
{% for e in entries %}<tr>
<td>{% if feedback %}<a href="{{ feedback }}/{{ e.name }}.html">{{ e.name }}</a>{% else %}{{ e.name }}{% endif %}</td>
<td>{{ e.grade.student or "(no name given)" }}</td>
<td class="num">{{ "%.3g"|format(e.grade.score * max_points) }}</td>
<td>{{ "replayed" if e.grade.verified else ("-" if e.grade.error else "unverified") }}</td>
<td>{% for f in flags[e.name] %}<span class="flag">{{ f }}</span><br>{% endfor %}{% for p in e.grade.problems %}{{ p }}<br>{% endfor %}</td>
{% if n_predictions %}<td>{% for p in e.predictions %}<span class="{{ 'flag' if p.right is false else '' }}">{{ p.text() }}</span><br>{% endfor %}</td>{% endif %}
</tr>{% endfor %}</tbody></table>
</body></html>
"""
