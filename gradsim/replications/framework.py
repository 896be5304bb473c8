"""Running a replication: its training runs as standard sessions, then numbers,
figure and verdict computed from what those sessions recorded.

A replication is data plus two functions: ``runs(mode, seed)`` lists the
training runs of one repetition of the experiment (plain RunConfigs and
``STEP:KEY=VALUE`` events, so each exported session replays with ``gradsim run
--config``), ``analyse`` turns one repetition's re-loaded sessions (and step-0
probes such as Jacobian spectra, recomputable from the replayed run) into a
table and one pass/fail outcome per claim, and ``draw`` makes the figure.

One repetition per seed: a claim that holds for one seed may fail for the
next, so every claim's success rate over the seeds is reported with its 95%
Wilson interval, and the verdict follows a rule fixed before anything runs
(RULE). The same code path runs in every mode; ``quick`` (CI) only shrinks
steps, seeds and sweeps.
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
#: Repetitions (seeds) per mode. Four is the fewest at which any outcome clears
#: the rule (4 of 4: Wilson lower bound 0.51; 3 of 3 gives 0.44), so quick mode
#: needs every seed to pass; with ten, 9 of 10 clears it (0.60; 8 of 10 gives 0.49).
SEEDS = {"quick": 4, "default": 10, "full": 20}
#: Largest seed: each repetition's runs use its seed as their RunConfig seed.
MAX_SEED = 2**32 - 1
MAX_SEEDS = 1000
Z95 = 1.959963984540054  # two-sided 95% normal quantile
RULE = (
    "a claim is REPRODUCED when the lower end of the 95% Wilson interval of its success rate over the seeds "
    "is above 0.5 (it holds for a clear majority of seeds, beyond chance); the replication is REPRODUCED when "
    "every one of its claims is, NOT REPRODUCED otherwise."
)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: the p whose normal test at
    level z does not reject ``successes`` out of ``n``,
    (p^ + z^2/2n -/+ z sqrt(p^(1-p^)/n + z^2/4n^2)) / (1 + z^2/n).
    Unlike p^ +/- z sqrt(p^(1-p^)/n) it stays inside [0, 1] and is not empty at
    0 or n successes (3 of 3 gives [0.44, 1]). (0, 1) when n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    d = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


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


@dataclass(frozen=True)
class ClaimRate:
    """One claim's outcome over the seeds and what the rule makes of it."""

    claim: str
    successes: int
    seeds: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.successes / self.seeds if self.seeds else float("nan")

    @property
    def reproduced(self) -> bool:
        return self.low > 0.5

    def line(self) -> str:
        word = "REPRODUCED" if self.reproduced else "NOT REPRODUCED"
        return f"{self.claim}: {self.successes}/{self.seeds} seeds = {self.rate:.2f}, 95% interval [{self.low:.2f}, {self.high:.2f}] -> {word}"


def claim_rates(per_seed: Sequence[dict[str, bool]]) -> list[ClaimRate]:
    """Success rate and Wilson interval of every claim over the seeds' outcomes."""
    names: list[str] = []
    for checks in per_seed:
        names += [k for k in checks if k not in names]
    out = []
    for name in names:
        k = sum(bool(c.get(name, False)) for c in per_seed)
        lo, hi = wilson_interval(k, len(per_seed))
        out.append(ClaimRate(name, k, len(per_seed), lo, hi))
    return out


class Replication:
    """Base of every replication: subclasses fill in the class attributes and three methods."""

    name: str = ""
    title: str = ""
    citation: str = ""
    #: What the paper reports, in our words.
    claim: str = ""
    #: How the setup here differs from the paper's (models, data), said in the verdict.
    setup: str = ""

    def runs(self, mode: str, seed: int = 0) -> list[Run]:  # pragma: no cover - overridden
        """The runs of one repetition; their keys must differ between seeds."""
        raise NotImplementedError

    def probe(self, kind: str, trainer: Any) -> Any:
        raise ReplicationError(f"{self.name}: no probe {kind!r}")

    def analyse(self, results: dict[str, RunResult], mode: str) -> Outcome:  # pragma: no cover - overridden
        raise NotImplementedError

    def draw(self, fig: Any, results: dict[str, RunResult], outcome: Outcome) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def verdict_text(self, outcome: Outcome, mode: str, seeds: Sequence[int] = (0,), rates: Sequence[ClaimRate] = ()) -> str:
        word = "REPRODUCED" if outcome.reproduced else "NOT REPRODUCED"
        span = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
        lines = "".join(f"  {r.line()}\n" for r in rates)
        return (
            f"{self.name}: {self.title}. {self.citation}\n"
            f"The paper reports: {self.claim}\n"
            f"Here ({mode} mode, {len(seeds)} {'repetition' if len(seeds) == 1 else 'repetitions'}, {span}): {self.setup}\n"
            f"Criterion (per seed): {outcome.criterion}\n"
            f"Rule: {RULE}\n"
            f"Success rate per claim:\n{lines}"
            f"Measured (seed {seeds[0]}): {outcome.measured}\n"
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
    seeds: list[int] = field(default_factory=list)
    rates: list[ClaimRate] = field(default_factory=list)
    #: Each seed's own outcome (its table rows and per-claim pass/fail).
    per_seed: dict[int, Outcome] = field(default_factory=dict)


ProgressFn = Callable[[int, int, str], None]


def total_steps(runs: Sequence[Run]) -> int:
    return sum(r.config.steps for r in runs)


def seed_list(mode: str, seed: int = 0, seeds: Optional[int] = None) -> list[int]:
    """The repetitions' seeds: ``seeds`` (default: SEEDS[mode]) consecutive ones from ``seed``."""
    if mode not in MODES:
        raise ReplicationError(f"mode = {mode!r} is not known; allowed: {', '.join(MODES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ReplicationError(f"--seed {seed!r}: must be an integer from 0 to {MAX_SEED}")
    n = SEEDS[mode] if seeds is None else seeds
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SEEDS:
        raise ReplicationError(f"--seeds {n!r}: must be an integer from 1 to {MAX_SEEDS}")
    if seed + n - 1 > MAX_SEED:
        raise ReplicationError(f"--seed {seed} with --seeds {n}: the last seed {seed + n - 1} is above {MAX_SEED}")
    return list(range(seed, seed + n))


def run_replication(
    rep: Replication,
    out: str | Path,
    mode: str = "default",
    progress: Optional[ProgressFn] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    seed: int = 0,
    seeds: Optional[int] = None,
) -> Report:
    """Run every run of ``rep`` once per seed (``seeds`` repetitions from ``seed``;
    default SEEDS[mode]), export each as a session folder under ``out/runs``,
    analyse each seed's re-loaded sessions, and write figure.png, results.csv
    (every seed's rows), seeds.csv (every seed's pass/fail per claim), rates.csv
    (success rate and Wilson interval per claim), verdict.txt and verdict.json.

    ``progress(done_steps, total_steps, text)`` is called as training proceeds;
    ``should_stop()`` returning True raises Cancelled between steps (nothing
    half-written is left: every file is written atomically).
    """
    import torch

    from ..commands import parse_event
    from ..session.io import export_session, load_session, write_atomic
    from ..train.trainer import Trainer

    seed_values = seed_list(mode, seed, seeds)
    out = Path(out)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReplicationError(f"--out {str(out)!r}: cannot create folder ({exc.strerror or exc})") from None
    by_seed = {s: rep.runs(mode, s) for s in seed_values}
    runs = [r for s in seed_values for r in by_seed[s]]
    keys = [r.key for r in runs]
    assert len(set(keys)) == len(keys), f"{rep.name}: duplicate run keys"
    total = total_steps(runs)
    done = 0
    torch.set_num_threads(1)  # what `gradsim run` uses: the replay is then bit-identical
    results: dict[str, RunResult] = {}
    per_seed: dict[int, Outcome] = {}
    i = 0
    for s in seed_values:
        seed_results: dict[str, RunResult] = {}
        for run in by_seed[s]:
            i += 1
            label = f"replication {rep.name} run {run.key}"
            trainer = Trainer(run.config, [parse_event(e) for e in run.events], label=label)
            probe = rep.probe(run.probe, trainer) if run.probe else None
            text = f"run {i}/{len(runs)}: {run.key}"
            while not trainer.finished:
                if should_stop is not None and should_stop():
                    raise Cancelled(f"{rep.name}: cancelled at {text}")
                trainer.step()
                done += 1
                if progress is not None:
                    progress(done, total, text)
            done += run.config.steps - trainer.step_index  # a diverged run ends early
            folder = export_session(trainer.session, out / "runs" / run.key)
            seed_results[run.key] = results[run.key] = RunResult(run, load_session(folder), folder, probe)
            if progress is not None:
                progress(done, total, text)
        per_seed[s] = rep.analyse(seed_results, mode)
    # An analysis without named claims has one: its own per-seed verdict.
    rates = claim_rates([o.checks or {"reproduced": o.reproduced} for o in per_seed.values()])
    first = per_seed[seed_values[0]]
    table = [{"replication_seed": s, **row} for s, o in per_seed.items() for row in o.table]
    outcome = Outcome(
        bool(rates) and all(r.reproduced for r in rates),
        first.measured,
        first.criterion,
        table,
        {r.claim: r.reproduced for r in rates},
    )
    verdict = rep.verdict_text(outcome, mode, seed_values, rates)
    csv_path = out / "results.csv"
    write_atomic(csv_path, table_csv(table))
    write_atomic(out / "seeds.csv", table_csv([{"replication_seed": s, **{k: int(v) for k, v in (o.checks or {"reproduced": o.reproduced}).items()}}
                                               for s, o in per_seed.items()]))
    write_atomic(out / "rates.csv", table_csv([
        {"claim": r.claim, "successes": r.successes, "seeds": r.seeds, "rate": r.rate, "wilson_low": r.low, "wilson_high": r.high,
         "verdict": "REPRODUCED" if r.reproduced else "NOT REPRODUCED"} for r in rates]))
    fig_path = out / "figure.png"
    first_results = {r.key: results[r.key] for r in by_seed[seed_values[0]]}
    write_figure(rep, first_results, first, fig_path, outcome.reproduced)
    write_atomic(out / "verdict.txt", verdict + "\n")
    summary = {
        "replication": rep.name,
        "mode": mode,
        "seeds": seed_values,
        "rule": RULE,
        "reproduced": outcome.reproduced,
        "criterion": outcome.criterion,
        "claims": {r.claim: {"successes": r.successes, "seeds": r.seeds, "rate": r.rate, "wilson_low": r.low, "wilson_high": r.high,
                             "reproduced": r.reproduced} for r in rates},
        "per_seed": {str(s): o.checks for s, o in per_seed.items()},
        "measured_first_seed": outcome.measured,
        "runs": keys,
    }
    write_atomic(out / "verdict.json", json.dumps(summary, indent=2) + "\n")
    return Report(rep.name, mode, outcome.reproduced, verdict, out, fig_path, csv_path, [results[k].folder for k in keys], outcome,
                  seed_values, rates, per_seed)


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


def write_figure(rep: Replication, results: dict[str, RunResult], outcome: Outcome, path: Path, reproduced: Optional[bool] = None) -> None:
    """Draw with matplotlib's Agg canvas (no display, no pyplot global state: safe
    from a worker thread) and write the PNG atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..session.io import write_atomic

    fig = Figure(figsize=(10, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    rep.draw(fig, results, outcome)
    # The title carries the verdict over all seeds; the panels show the first seed's runs.
    word = "REPRODUCED" if (outcome.reproduced if reproduced is None else reproduced) else "NOT REPRODUCED"
    fig.suptitle(f"{rep.title}: {word} (panels: first seed)", fontsize=11)
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
