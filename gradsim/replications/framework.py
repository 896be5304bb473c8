"""Running a replication: its training runs as standard sessions, then numbers,
figure and verdict computed from what those sessions recorded.

A replication is data plus two functions: ``runs(mode)`` lists the training runs
behind its figure (plain RunConfigs and ``STEP:KEY=VALUE`` events, so each
exported session replays with ``gradsim run --config``), ``analyse`` turns the
re-loaded sessions (and step-0 probes such as Jacobian spectra, recomputable
from the replayed run) into a table, a criterion and a verdict, and ``draw``
makes the figure. The same code path runs in every mode; ``quick`` (CI) only
shrinks steps, seeds and sweeps.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..config import RunConfig

MODES = ("quick", "default", "full")


class ReplicationError(ValueError):
    """Bad replication name or mode: one clear line."""


class Cancelled(Exception):
    """The caller asked the replication to stop (the window's Cancel button)."""


@dataclass(frozen=True)
class Run:
    """One training run behind a figure; ``key`` names its session folder."""

    key: str
    config: RunConfig
    events: tuple[str, ...] = ()
    #: Probe the freshly initialised network before step 0 (e.g. its Jacobian
    #: spectrum). Gets the Trainer, returns plain numbers for the analysis.
    probe: Optional[str] = None
    tags: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    run: Run
    session: Any  # gradsim.session.store.Session, re-loaded from the exported folder
    folder: Path
    probe: Any = None

    def loss(self) -> np.ndarray:
        return self.session.column("loss")

    def accuracy(self) -> np.ndarray:
        return self.session.column("accuracy")

    def tail_mean(self, metric: str, frac: float = 0.1) -> float:
        """Mean of a step metric over the last ``frac`` of the recorded rows (NaN-aware:
        a diverged run's non-finite tail stays non-finite)."""
        col = self.session.column(metric)
        if col.size == 0:
            return float("nan")
        n = max(1, int(round(col.size * frac)))
        return float(np.mean(col[-n:]))

    def step0(self, metric: str) -> np.ndarray:
        """A per-layer metric at step 0."""
        return self.session.layer_metric(metric)[0].astype(np.float64)


@dataclass
class Outcome:
    """What the analysis found: the verdict and the words and numbers behind it."""

    reproduced: bool
    measured: str
    criterion: str
    table: list[dict[str, Any]]
    checks: dict[str, bool] = field(default_factory=dict)


class Replication:
    """Base of the seven: subclasses fill in the class attributes and three methods."""

    name: str = ""
    title: str = ""
    citation: str = ""
    #: What the paper reports, in our words.
    claim: str = ""
    #: How the setup here differs from the paper's (models, data), said in the verdict.
    setup: str = ""

    def runs(self, mode: str) -> list[Run]:  # pragma: no cover - overridden
        raise NotImplementedError

    def probe(self, kind: str, trainer: Any) -> Any:
        raise ReplicationError(f"{self.name}: no probe {kind!r}")

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:  # pragma: no cover - overridden
        raise NotImplementedError

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def verdict_text(self, outcome: Outcome, mode: str) -> str:
        word = "REPRODUCED" if outcome.reproduced else "NOT REPRODUCED"
        return (
            f"{self.name}: {self.title}. {self.citation}\n"
            f"The paper reports: {self.claim}\n"
            f"Here ({mode} mode): {self.setup}\n"
            f"Measured: {outcome.measured}\n"
            f"Criterion: {outcome.criterion}\n"
            f"Verdict: {word}."
        )


@dataclass
class Report:
    name: str
    mode: str
    reproduced: bool
    verdict: str
    out: Path
    figure: Path
    csv: Path
    sessions: list[Path]
    outcome: Outcome


ProgressFn = Callable[[int, int, str], None]


def total_steps(runs: Sequence[Run]) -> int:
    return sum(r.config.steps for r in runs)


def run_replication(
    rep: Replication,
    out: str | Path,
    mode: str = "default",
    progress: Optional[ProgressFn] = None,
    should_stop: Optional[Callable[[], bool]] = None,
) -> Report:
    """Run every run of ``rep``, export each as a session folder under ``out/runs``,
    analyse the re-loaded sessions, and write figure.png, results.csv and verdict.txt.

    ``progress(done_steps, total_steps, text)`` is called as training proceeds;
    ``should_stop()`` returning True raises Cancelled between steps (nothing
    half-written is left: every file is written atomically).
    """
    import torch

    from ..commands import parse_event
    from ..session.io import export_session, load_session, write_atomic
    from ..train.trainer import Trainer

    if mode not in MODES:
        raise ReplicationError(f"mode = {mode!r} is not known; allowed: {', '.join(MODES)}")
    out = Path(out)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReplicationError(f"--out {str(out)!r}: cannot create folder ({exc.strerror or exc})") from None
    runs = rep.runs(mode)
    keys = [r.key for r in runs]
    assert len(set(keys)) == len(keys), f"{rep.name}: duplicate run keys"
    total = total_steps(runs)
    done = 0
    torch.set_num_threads(1)  # what `gradsim run` uses: the replay is then bit-identical
    results: dict[str, RunResult] = {}
    for i, run in enumerate(runs):
        label = f"replication {rep.name} run {run.key}"
        trainer = Trainer(run.config, [parse_event(e) for e in run.events], label=label)
        probe = rep.probe(run.probe, trainer) if run.probe else None
        text = f"run {i + 1}/{len(runs)}: {run.key}"
        while not trainer.finished:
            if should_stop is not None and should_stop():
                raise Cancelled(f"{rep.name}: cancelled at {text}")
            trainer.step()
            done += 1
            if progress is not None:
                progress(done, total, text)
        done += run.config.steps - trainer.step_index  # a diverged run ends early
        folder = export_session(trainer.session, out / "runs" / run.key)
        results[run.key] = RunResult(run, load_session(folder), folder, probe)
        if progress is not None:
            progress(done, total, text)
    outcome = rep.analyse(results, mode)
    verdict = rep.verdict_text(outcome, mode)
    csv_path = out / "results.csv"
    write_atomic(csv_path, table_csv(outcome.table))
    fig_path = out / "figure.png"
    write_figure(rep, results, outcome, fig_path)
    write_atomic(out / "verdict.txt", verdict + "\n")
    summary = {
        "replication": rep.name,
        "mode": mode,
        "reproduced": outcome.reproduced,
        "criterion": outcome.criterion,
        "measured": outcome.measured,
        "checks": outcome.checks,
        "runs": keys,
    }
    write_atomic(out / "verdict.json", json.dumps(summary, indent=2) + "\n")
    return Report(rep.name, mode, outcome.reproduced, verdict, out, fig_path, csv_path, [results[k].folder for k in keys], outcome)


def table_csv(rows: list[dict[str, Any]]) -> str:
    """The table as CSV; numbers written exactly (repr), non-finite as nan/inf."""
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", restval="")
    w.writeheader()
    for row in rows:
        w.writerow({k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()})
    return buf.getvalue()


def write_figure(rep: Replication, results: dict[str, RunResult], outcome: Outcome, path: Path) -> None:
    """Draw with matplotlib's Agg canvas (no display, no pyplot global state: safe
    from a worker thread) and write the PNG atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..session.io import write_atomic

    fig = Figure(figsize=(10, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    rep.draw(fig, results, outcome)
    word = "REPRODUCED" if outcome.reproduced else "NOT REPRODUCED"
    fig.suptitle(f"{rep.title}: {word}", fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_atomic(path, buf.getvalue())


# ------------------------------------------------------------ shared helpers
def fmt(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def smooth(y: np.ndarray, n: int) -> np.ndarray:
    """Running mean over ``n`` steps (for readable loss curves; the CSV keeps raw values)."""
    if n <= 1 or y.size < n:
        return y
    c = np.cumsum(np.insert(np.where(np.isfinite(y), y, np.nan), 0, 0.0))
    out = (c[n:] - c[:-n]) / n
    return np.concatenate([np.full(n - 1, np.nan), out])


def depth_scale(profile: np.ndarray, skip_first: int, skip_last: int) -> tuple[float, float]:
    """(xi, slope): fit log ||dL/dz_l||^2 = a + slope * l over the middle layers; the
    depth scale is xi = 1 / |slope| (Schoenholz et al. 2017). Infinite when flat."""
    y = np.log(np.asarray(profile, np.float64) ** 2)
    l = np.arange(y.size, dtype=np.float64)
    sel = slice(skip_first, y.size - skip_last)
    ys, ls = y[sel], l[sel]
    ok = np.isfinite(ys)
    if ok.sum() < 3:
        return float("nan"), float("nan")
    slope = float(np.polyfit(ls[ok], ys[ok], 1)[0])
    return (1.0 / abs(slope) if slope != 0 else float("inf")), slope
