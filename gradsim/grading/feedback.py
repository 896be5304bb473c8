"""Feedback a student can read: one self-contained HTML page per submission.

The page holds the score, each objective in plain words with the student's
value and what was required, and a picture of the student's depth profile of
||dL/dz|| at step 0 and at the end against the band the exercise's own setup
gives (the exercise's config and events run with a few seeds). The picture
is drawn headless with matplotlib's Agg backend and embedded as a data URI,
so the page is one file that can be mailed or uploaded as it is.

HTML comes from a Jinja2 template with autoescaping on: a student's name,
answers and file names are untrusted text and must never become markup.
"""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..teaching.exercises import Answer, Exercise, NoDivergence
from ..session.store import Session
from .grade import Grade

BAND_SEEDS = 3  # reference runs per exercise: enough to show seed spread, cheap next to a class


@dataclass(frozen=True)
class Band:
    """Per-layer min/max of ||dL/dz|| over the reference runs, at step 0 and at the end."""

    step0_lo: tuple[float, ...]
    step0_hi: tuple[float, ...]
    end_lo: tuple[float, ...]
    end_hi: tuple[float, ...]
    seeds: tuple[int, ...]
    max_points: float = 0.0  # the grade book's maximum; 0: the number of objectives


def reference_profiles(exercise: Exercise, seed: int) -> tuple[list[float], list[float]]:
    """||dL/dz|| per layer at step 0 and at the end of the exercise's own run with ``seed`` (a task)."""
    import torch

    from ..train.trainer import Trainer

    torch.set_num_threads(1)
    t = Trainer(exercise.config.with_changes(seed=seed), exercise.events, label=f"reference seed {seed}")
    t.run()
    g = t.session.layer_metric("act_grad_norm")
    return [float(v) for v in g[0]], [float(v) for v in g[-1]]


def make_band(profiles: list[tuple[list[float], list[float]]], seeds: tuple[int, ...], max_points: float = 0.0) -> Band:
    s0 = np.array([p[0] for p in profiles], np.float64)
    se = np.array([p[1] for p in profiles], np.float64)
    with np.errstate(all="ignore"):
        lo0, hi0, loe, hie = (np.nanmin(s0, 0), np.nanmax(s0, 0), np.nanmin(se, 0), np.nanmax(se, 0))
    t = lambda a: tuple(float(v) for v in a)
    return Band(t(lo0), t(hi0), t(loe), t(hie), tuple(seeds), max_points)


def reference_seeds(exercise: Exercise) -> tuple[int, ...]:
    return tuple(exercise.config.seed + k for k in range(BAND_SEEDS))


# ------------------------------------------------------------------ picture
def _positive(v: "np.ndarray | Sequence[float]") -> np.ndarray:
    """Log axes cannot show values <= 0 or non-finite: those become gaps (the caption says so)."""
    v = np.asarray(v, np.float64).copy()
    v[~(np.isfinite(v) & (v > 0))] = np.nan
    return v


def profile_png(session: Session, band: Band, title: str) -> bytes:
    """The student's ||dL/dz|| depth profile at step 0 and at the end, against the band, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display; a no-op when Agg is already active
    from matplotlib.figure import Figure  # the OO API: no pyplot global state in worker processes

    g = session.layer_metric("act_grad_norm")
    layers = np.arange(1, session.n_layers + 1)
    fig = Figure(figsize=(7.0, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    nb = len(band.step0_lo)
    if nb == session.n_layers:
        bl = np.arange(1, nb + 1)
        ax.fill_between(bl, _positive(band.step0_lo), _positive(band.step0_hi), color="tab:blue", alpha=0.18, label="expected at step 0")
        ax.fill_between(bl, _positive(band.end_lo), _positive(band.end_hi), color="tab:orange", alpha=0.18, label="expected at the end")
    if len(session):
        ax.plot(layers, _positive(g[0]), "o-", color="tab:blue", label=f"yours at step {int(session.steps[0])}")
        ax.plot(layers, _positive(g[-1]), "s--", color="tab:orange", label=f"yours at step {int(session.steps[-1])}")
    ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
    ax.set_xlabel("layer (1 = next to the input)")
    ax.set_ylabel("||dL/dz||  (backprop signal)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ------------------------------------------------------------------ page
_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ exercise.title }} - {{ who }}</title>
<style>
 body { font-family: sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
 table { border-collapse: collapse; width: 100%; }
 th, td { border: 1px solid #ccc; padding: .35rem .5rem; text-align: left; vertical-align: top; }
 .pass { color: #176f2c; font-weight: bold; } .fail { color: #b00020; font-weight: bold; }
 .warn { background: #fff4e5; border-left: 4px solid #f0a000; padding: .5rem .75rem; }
 .score { font-size: 1.4rem; }
 figure { margin: 1.5rem 0; } figcaption { font-size: .9rem; color: #444; }
</style></head>
<body>
<h1>{{ exercise.title }}</h1>
<p>Student: <strong>{{ who }}</strong><br>Submission: <code>{{ name }}</code></p>
<p class="score">Score: <strong>{{ "%.4g"|format(points) }} / {{ "%g"|format(max_points) }}</strong> ({{ "%.0f"|format(100 * grade.score) }}&nbsp;%)</p>
{% if grade.verified %}<p>Checked by re-running your session from its settings and events: {{ grade.replay_note }}.</p>
{% elif not grade.error and grade.watched %}<p class="warn"><strong>UNVERIFIED</strong>: {{ grade.replay_note }}.
The objectives below were computed from the numbers gradsim.watch recorded in your session folder; nobody
(not even GradSim) can check that those files are the ones your training run wrote.</p>
{% elif not grade.error %}<p class="warn">Unverified: graded from the numbers you handed in, without re-running your session.</p>{% endif %}
{% if grade.problems %}<div class="warn"><p><strong>Problems</strong> (any problem scores 0):</p><ul>
{% for p in grade.problems %}<li>{{ p }}</li>{% endfor %}</ul></div>{% endif %}
{% if rows %}
<h2>Objectives</h2>
<table><thead><tr><th>Objective</th><th>Your value</th><th>Required</th><th>Result</th></tr></thead><tbody>
{% for r in rows %}<tr><td>{{ r.text }}</td><td>{{ r.yours }}</td><td>{{ r.required }}</td>
<td class="{{ 'pass' if r.passed else 'fail' }}">{{ 'passed' if r.passed else 'not yet' }}</td></tr>
{% endfor %}</tbody></table>
{% endif %}
{% if png %}
<figure><img src="data:image/png;base64,{{ png }}" width="700" alt="Depth profile of the backprop signal ||dL/dz|| per layer at step 0 and at the end, with the expected bands">
<figcaption>Your depth profile of ||dL/dz|| (how strongly each layer receives the training signal), on a log scale,
at the first and the last recorded step.
{% if exercise.watched %}Layers are your model's modules in order (1 = the first module with parameters); there is
no expected band, since no reference run of your own model exists.
{% else %}The shaded bands show what the exercise's own setup gives
(its configuration and events, run with seeds {{ seeds }}): the lowest to the highest value per layer.
{% endif %}Values of 0 or non-finite values cannot be drawn on a log scale and leave gaps.</figcaption></figure>
{% else %}
<p>No picture: the data of this submission could not be used.</p>
{% endif %}
<h2>The exercise</h2>
<div class="exercise">{{ body_html }}</div>
</body></html>
"""


def _fmt(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return "-" if v is None or v == "" else str(v)


def _rows(exercise: Exercise, grade: Grade, session: Optional[Session], answers: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for o, r in zip(exercise.objectives, grade.results):
        if isinstance(o, Answer):
            yours = f"you answered {_fmt(answers.get(o.id))}"
        elif isinstance(o, NoDivergence) and session is not None:
            yours = f"{session.steps_run} steps" + (f", diverged at step {session.diverged_at}" if session.diverged_at is not None else ", no divergence")
        else:
            yours = _fmt(r.value) if r.value is not None else r.detail
        rows.append({"text": o.text or r.text, "yours": yours, "required": o.required(), "passed": r.passed})
    return rows


def render_page(exercise: Exercise, grade: Grade, session: Optional[Session], answers: dict[str, Any], band: Band, name: str) -> str:
    """The HTML page for one graded submission (``session``: what it was evaluated on, or None)."""
    import jinja2
    import markupsafe

    from .markdown_html import markdown_to_html

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    max_points = band.max_points or float(len(exercise.objectives))
    png = ""
    if session is not None and len(session):
        png = base64.b64encode(profile_png(session, band, f"{exercise.title}: ||dL/dz|| by layer")).decode("ascii")
    return env.from_string(_TEMPLATE).render(
        exercise=exercise, grade=grade, name=name, who=grade.student or "(no name given)",
        points=grade.score * max_points, max_points=max_points, rows=_rows(exercise, grade, session, answers),
        png=png, seeds=", ".join(str(s) for s in band.seeds),
        body_html=markupsafe.Markup(markdown_to_html(exercise.body)),  # escaped inside the renderer
    )
