"""Every replication in its reduced (quick) mode: same code path as the default
mode, one repetition per seed, reaches its verdict, writes figure/CSV/verdict
and standard sessions that replay exactly; and each seed's outcome per claim,
the success rates, their Wilson intervals and the verdict recomputed here from
the raw files (csv module, numpy, autograd, statistics) without the
replication's own code.

The quick runs of every replication (4 seeds each) take a few minutes on 2 cores: they are the
point of the test (CI must run the real replications), so each runs once per
session. The seed flags, the interval and the rule are also tested on a tiny
replication of 3-step runs.
"""
from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch

from gradsim.session.io import STEPS_HEADER
from gradsim.config import RunConfig
from gradsim.teaching.presets import parse_run_file
from gradsim.replications import REPLICATIONS, ReplicationError, run_replication
from gradsim.replications.framework import SEEDS, Outcome, Replication, Run, wilson_interval
from gradsim.session.io import export_session
from gradsim.train.trainer import Trainer

_CACHE: dict[str, object] = {}

ELAPSED = STEPS_HEADER.index("elapsed_s")  # wall clock: the one column a replay may change


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    def get(name: str):
        if name not in _CACHE:
            _CACHE[name] = run_replication(REPLICATIONS[name], tmp_path_factory.mktemp(name), "quick")
        return _CACHE[name]

    return get


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _col(folder: Path, name: str) -> np.ndarray:
    return np.array([float(r[name]) for r in _rows(folder / "steps.csv")])


def _layer(folder: Path, metric: str, step: int = 0) -> np.ndarray:
    rows = [r for r in _rows(folder / "layers.csv") if int(r["step"]) == step]
    return np.array([float(r[metric]) for r in sorted(rows, key=lambda r: int(r["layer"]))])


def _tail(x: np.ndarray) -> float:
    return float(np.mean(x[-max(1, int(round(x.size * 0.1))):]))


def _config(folder: Path) -> dict:
    return json.loads((folder / "session.json").read_text())["config"]


def _jacobian_sv(folder: Path, n: int = 8) -> np.ndarray:
    """Singular values of d h_depth / d h_1 by autograd on the replayed network's own forward."""
    cfg, _ = parse_run_file(folder / "session.json")
    net = Trainer(cfg).net
    x = Trainer(cfg).probe_inputs(n)
    fn = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda t: t}[cfg.activation]
    with torch.no_grad():
        h1 = fn(net.linears[0](x)).double()
    out = []
    for s in range(n):
        def f(h):
            for lin in list(net.linears)[1:-1]:
                h = fn(h @ lin.weight.double().T + lin.bias.double())
            return h
        out.append(torch.linalg.svdvals(torch.autograd.functional.jacobian(f, h1[s])).numpy())
    return np.stack(out)


def _spread(sv: np.ndarray) -> float:
    """Per input (one row of sv), then averaged over the inputs."""
    return float(np.mean([(row**2).var() / (row**2).mean() ** 2 for row in sv]))


Z = statistics.NormalDist().inv_cdf(0.975)


def _wilson_low(k: int, n: int) -> float:
    """Smaller p solving the score test's equality (k/n - p)^2 = Z^2 p (1 - p) / n."""
    ph = k / n
    roots = np.roots([1 + Z * Z / n, -(2 * ph + Z * Z / n), ph * ph]).real
    return float(max(0.0, roots.min()))


def _seed(folder: Path) -> int:
    return int(_config(folder)["seed"])


def _by_seed(rep) -> dict[int, list[Path]]:
    out: dict[int, list[Path]] = {}
    for f in rep.sessions:
        out.setdefault(_seed(f), []).append(f)
    return out


def _assert_rule(rep, per_seed: dict[int, dict[str, bool]]) -> None:
    """seeds.csv holds these outcomes; rates.csv and the verdict follow the rule from them."""
    got = {int(r["replication_seed"]): {k: bool(int(v)) for k, v in r.items() if k != "replication_seed"} for r in _rows(rep.out / "seeds.csv")}
    assert got == per_seed
    claims = list(next(iter(per_seed.values())))
    n = len(per_seed)
    lows = {c: _wilson_low(sum(o[c] for o in per_seed.values()), n) for c in claims}
    rates = {r["claim"]: r for r in _rows(rep.out / "rates.csv")}
    assert sorted(rates) == sorted(claims)
    for c in claims:
        assert int(rates[c]["successes"]) == sum(o[c] for o in per_seed.values()) and int(rates[c]["seeds"]) == n
        assert float(rates[c]["wilson_low"]) == pytest.approx(lows[c], abs=1e-9)
        assert rates[c]["verdict"] == ("REPRODUCED" if lows[c] > 0.5 else "NOT REPRODUCED")
    assert rep.reproduced == all(v > 0.5 for v in lows.values())


@pytest.mark.parametrize("name", list(REPLICATIONS))
def test_quick_mode_writes_figure_csv_verdict_and_sessions_for_every_seed(name, quick):
    rep = quick(name)
    out = rep.out
    assert rep.seeds == list(range(SEEDS["quick"]))
    assert (out / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "figure.png").stat().st_size > 20_000  # a drawn figure, not an empty canvas
    rows = _rows(out / "results.csv")
    assert rows and all(rows[0].keys())
    assert sorted({int(r["replication_seed"]) for r in rows}) == rep.seeds
    text = (out / "verdict.txt").read_text()
    for part in ("The paper reports:", "Measured (seed 0):", "Criterion (per seed):", "Rule: a claim is REPRODUCED when the lower end",
                 "Success rate per claim:", f"seeds 0..{SEEDS['quick'] - 1}"):
        assert part in text
    assert text.rstrip().endswith("Verdict: REPRODUCED." if rep.reproduced else "Verdict: NOT REPRODUCED.")
    for r in rep.rates:
        assert f"{r.claim}: {r.successes}/{r.seeds} seeds" in text
    summary = json.loads((out / "verdict.json").read_text())
    assert summary["reproduced"] is rep.reproduced and summary["seeds"] == rep.seeds
    assert len(rep.sessions) == sum(len(REPLICATIONS[name].runs("quick", s)) for s in rep.seeds)
    for folder in rep.sessions:
        assert sorted(p.name for p in folder.iterdir()) == ["events.csv", "layers.csv", "session.json", "steps.csv"]


#: Not every replication reproduces on the quick seeds: schoenholz2017's deep chaotic net
#: trains on some seeds and its xi peak wanders between the grid points near criticality,
#: pascanu2013's clipped net reaches 0.9 in 100 steps on only some seeds. Their verdicts
#: are still checked against the rule from the raw files below.
QUICK_REPRODUCES = ["he2015", "glorot2010", "saxe2014", "pennington2017", "ioffe2015"]


@pytest.mark.parametrize("name", QUICK_REPRODUCES)
def test_quick_mode_reproduces(name, quick):
    """Every claim holds on all 4 quick seeds (the fewest at which the rule can pass)."""
    rep = quick(name)
    assert rep.reproduced, rep.verdict


@pytest.mark.parametrize("name", list(REPLICATIONS))
def test_a_replications_session_replays_to_identical_csvs(name, quick, tmp_path):
    """The last run of each (the full training run where there is one) replays headless."""
    torch.set_num_threads(1)
    folder = quick(name).sessions[-1]  # the last seed's
    cfg, schedule = parse_run_file(folder / "session.json")
    t = Trainer(cfg, schedule)
    t.run()
    again = export_session(t.session, tmp_path / "replay")
    strip = lambda p: [",".join(c for i, c in enumerate(line.split(",")) if i != ELAPSED) for line in p.read_text().splitlines()]  # elapsed_s aside
    assert strip(again / "steps.csv") == strip(folder / "steps.csv")
    assert (again / "layers.csv").read_text() == (folder / "layers.csv").read_text()


# ------------------------------------------------ independent recomputation of each verdict
def _gain_fwd(f: Path) -> float:
    a = _layer(f, "act_std")[: _config(f)["depth"]]
    return float(np.exp(np.mean(np.log(a[1:] / a[:-1]))))


def _gain_back(f: Path, drop_top: int = 0) -> float:
    g = _layer(f, "act_grad_norm")[: _config(f)["depth"]]
    g = g[: g.size - drop_top] if drop_top else g
    return float(np.exp(np.mean(np.log(g[:-1] / g[1:]))))


def test_he2015_per_seed_scales_from_raw_layers(quick):
    rep = quick("he2015")
    per_seed = {}
    table = {r["run"]: r for r in _rows(rep.csv)}
    for seed, folders in _by_seed(rep).items():
        g = {}
        for f in folders:
            init = _config(f)["init"]
            g[init] = (_gain_fwd(f), _gain_back(f))
            assert float(table[f.name]["forward_gain_step0"]) == pytest.approx(g[init][0], rel=1e-5)
            assert float(table[f.name]["backward_gain_step0"]) == pytest.approx(g[init][1], rel=1e-5)
        near = lambda x, want: abs(x / want - 1) <= 0.1
        per_seed[seed] = {
            "he_keeps_forward_scale": near(g["he_normal"][0], 1.0),
            "he_keeps_backward_scale": near(g["he_normal"][1], 1.0),
            "xavier_forward_shrinks_by_sqrt_half": near(g["xavier_normal"][0], math.sqrt(0.5)),
            "xavier_backward_shrinks_by_sqrt_half": near(g["xavier_normal"][1], math.sqrt(0.5)),
        }
    _assert_rule(rep, per_seed)


def test_ioffe2015_per_seed_from_raw_steps(quick):
    rep = quick("ioffe2015")
    per_seed = {}
    for seed, folders in _by_seed(rep).items():
        acc = {bool(_config(f)["batchnorm"]): _tail(_col(f, "accuracy")) for f in folders}
        per_seed[seed] = {"without_fails": acc[False] <= 0.6, "with_trains": acc[True] >= 0.9}
    _assert_rule(rep, per_seed)


def test_pascanu2013_per_seed_from_raw_files(quick):
    rep = quick("pascanu2013")
    per_seed = {}
    for seed, folders in _by_seed(rep).items():
        o = {"exploding": True}
        for f in folders:
            meta = json.loads((f / "session.json").read_text())
            assert meta["model"] == "rnn"  # a real recurrent net, not a stand-in
            T = meta["config"]["seq_len"]
            g = _layer(f, "act_grad_norm")[:T]  # rows 1..T are the time steps t = 1..T
            assert [u["name"] for u in meta["units"][:T]] == [f"t {t}" for t in range(1, T + 1)]
            o["exploding"] &= g[0] / g[-1] > 10
            if meta["config"]["clip_mode"] == "none":
                loss = _col(f, "loss")
                o["unclipped_fails"] = meta["diverged_at"] is not None or not (_tail(loss) < loss[0])
            else:
                o["clipped_trains"] = meta["diverged_at"] is None and _tail(_col(f, "accuracy")) >= 0.9
        per_seed[seed] = o
    _assert_rule(rep, per_seed)


def _through_time(f: Path) -> np.ndarray:
    """||dL/dh_t|| for t = 1..T at step 0, from layers.csv and the units session.json names."""
    meta = json.loads((f / "session.json").read_text())
    T = meta["config"]["seq_len"]
    assert meta["model"] == "rnn" and [u["name"] for u in meta["units"][:T]] == [f"t {t}" for t in range(1, T + 1)]
    return _layer(f, "act_grad_norm")[:T]


def test_le2015_per_seed_from_raw_files(quick):
    rep = quick("le2015")
    per_seed = {}
    bar = 0.3 * 2.0 / 12.0  # 0.3 x the adding problem's mean-predictor loss, as the criterion says
    for seed, folders in _by_seed(rep).items():
        o = {}
        for f in folders:
            meta = json.loads((f / "session.json").read_text())
            loss_end = _tail(_col(f, "loss"))
            if meta["config"]["recurrent_init"] == "identity":
                assert meta["config"]["activation"] == "relu"
                o["irnn_learns"] = meta["diverged_at"] is None and loss_end < bar
            else:
                assert meta["config"]["activation"] == "tanh"
                o["tanh_does_not"] = not (loss_end < bar)
            assert np.isfinite(_through_time(f)).all()
        per_seed[seed] = {"irnn_learns": o["irnn_learns"], "tanh_does_not": o["tanh_does_not"]}
    _assert_rule(rep, per_seed)


def test_bengio1994_per_seed_from_raw_files(quick):
    rep = quick("bengio1994")
    per_seed = {}
    for seed, folders in _by_seed(rep).items():
        by_t = {}
        for f in folders:
            meta = json.loads((f / "session.json").read_text())
            g = _through_time(f)
            by_t[meta["config"]["seq_len"]] = (meta["diverged_at"], _tail(_col(f, "accuracy")), g[0] / g[-1])
        short, long = by_t[min(by_t)], by_t[max(by_t)]
        per_seed[seed] = {
            "short_learned": short[0] is None and short[1] >= 0.9,
            "long_fails": not (long[1] > 0.6),
            "signal_shrinks": long[2] < 0.1 * short[2],
        }
    _assert_rule(rep, per_seed)


@pytest.mark.parametrize("mode", ["quick", "default", "full"])
def test_bengio1994_trains_on_unseen_sequences_only(mode):
    """Each step's batch is sequences no earlier step drew, so the training accuracy the criterion reads
    is that of unseen data (with 800 sequences a net fitted part of them from the noise)."""
    for run in REPLICATIONS["bengio1994"].runs(mode, seed=1):
        cfg = run.config
        assert cfg.n_train >= cfg.steps * cfg.batch_size
        if mode == "quick" and cfg.seq_len == min(r.config.seq_len for r in REPLICATIONS["bengio1994"].runs(mode)):
            t = Trainer(cfg)
            xs = torch.cat([t.batch(s)[0] for s in range(cfg.steps)]).reshape(cfg.steps * cfg.batch_size, -1).numpy()
            assert len(np.unique(xs, axis=0)) == len(xs)  # no sequence twice over the whole run


def test_hochreiter1997_per_seed_from_raw_files(quick):
    rep = quick("hochreiter1997")
    per_seed = {}
    bar = 0.3 * 2.0 / 12.0
    for seed, folders in _by_seed(rep).items():
        end = {}
        for f in folders:
            meta = json.loads((f / "session.json").read_text())
            assert meta["model"] in ("lstm", "rnn") and meta["config"]["dataset"] == "adding"
            end[(meta["model"], meta["config"]["seq_len"])] = (meta["diverged_at"], _tail(_col(f, "loss")))
        longest = max(T for _, T in end)
        per_seed[seed] = {
            "lstm_learns": end[("lstm", longest)][0] is None and end[("lstm", longest)][1] < bar,
            "rnn_fails": not (end[("rnn", longest)][1] < bar),
        }
    _assert_rule(rep, per_seed)


def test_glorot2010_per_seed_from_raw_layers(quick):
    rep = quick("glorot2010")
    per_seed = {}
    for seed, folders in _by_seed(rep).items():
        o = {}
        for f in folders:
            cfg = _config(f)
            if cfg["activation"] == "sigmoid":
                depth = cfg["depth"]
                by_step: dict[int, dict[int, float]] = {}
                for r in _rows(f / "layers.csv"):
                    if r["act_mean"] != "":
                        by_step.setdefault(int(r["step"]), {})[int(r["layer"])] = float(r["act_mean"])
                hit = [s for s in sorted(by_step) if by_step[s][depth] < 0.1]
                ok = bool(hit)
                if hit:
                    s = hit[0]
                    loss = _col(f, "loss")
                    # The written criterion: still >= 0.9 x the step-0 loss itself.
                    ok = min(by_step[s][l] for l in range(1, depth)) >= 0.4 and float(np.mean(loss[max(0, s - 9): s + 1])) >= 0.9 * loss[0]
                o["sigmoid_top_saturates_early"] = ok
            else:
                gain = _gain_back(f)
                if cfg["init"] == "uniform":
                    o["tanh_standard_shrinks"] = gain < 0.8
                else:
                    o["tanh_normalized_level"] = 0.85 <= gain <= 1.2
        per_seed[seed] = o
    _assert_rule(rep, per_seed)


def test_saxe2014_per_seed_spectra_by_autograd_and_learning_times(quick):
    rep = quick("saxe2014")
    table = {r["run"]: r for r in _rows(rep.csv)}
    per_seed = {}
    for seed, folders in _by_seed(rep).items():
        times, spreads, iso = {}, {}, True
        for f in folders:
            cfg = _config(f)
            sv = _jacobian_sv(f)
            if cfg["init"] == "orthogonal":
                iso &= bool(np.abs(sv - 1).max() <= 1e-3)
            spreads[(cfg["init"], cfg["depth"])] = _spread(sv)
            assert spreads[(cfg["init"], cfg["depth"])] == pytest.approx(float(table[f.name]["sv_spread"]), rel=1e-4, abs=1e-9)
            sm = np.convolve(_col(f, "loss"), np.ones(5) / 5, mode="valid")
            hit = np.flatnonzero(sm <= 0.5)
            times[(cfg["init"], cfg["depth"])] = (hit[0] + 4) if hit.size else math.inf
            assert float(table[f.name]["learning_time_steps"]) == times[(cfg["init"], cfg["depth"])]
        d0, d1 = min(d for _, d in times), max(d for _, d in times)
        per_seed[seed] = {
            "orthogonal_isometry": iso,
            "gaussian_spreads": spreads[("normal", d1)] >= 5 * spreads[("normal", d0)] and spreads[("normal", d1)] >= 1,
            "orthogonal_depth_independent": times[("orthogonal", d1)] <= 1.5 * times[("orthogonal", d0)],
            "gaussian_slows": times[("normal", d1)] >= 2 * times[("normal", d0)],
        }
    _assert_rule(rep, per_seed)


def test_pennington2017_per_seed_spreads_by_autograd(quick):
    rep = quick("pennington2017")
    table = {r["run"]: float(r["spread"]) for r in _rows(rep.csv)}
    per_seed = {}
    for seed, folders in _by_seed(rep).items():
        spreads = {}
        for f in folders:
            s = _spread(_jacobian_sv(f))
            assert s == pytest.approx(table[f.name], rel=1e-4, abs=1e-9)
            spreads[(f.name.rsplit("-depth", 1)[0], _config(f)["depth"])] = s
        d0, d1 = min(d for _, d in spreads), max(d for _, d in spreads)
        grows = {n: spreads[(n, d1)] >= 5 * spreads[(n, d0)] and spreads[(n, d1)] >= 1 for n in ("tanh-gaussian", "relu-he")}
        per_seed[seed] = {"gaussian_tanh_grows": grows["tanh-gaussian"], "relu_grows": grows["relu-he"],
                          "orthogonal_tanh_narrow": spreads[("tanh-orthogonal", d1)] <= min(0.5, spreads[("tanh-gaussian", d1)] / 20)}
    _assert_rule(rep, per_seed)


def test_schoenholz2017_per_seed_from_raw_layers(quick):
    rep = quick("schoenholz2017")
    table = [r for r in _rows(rep.csv) if r["part"] == "depth_scale"]
    per_seed = {}
    for seed, folders in _by_seed(rep).items():
        xi: dict[float, float] = {}
        acc: dict[tuple[float, int], float] = {}
        for f in folders:
            cfg = _config(f)
            s2 = round(cfg["init_std"] ** 2 * cfg["width"], 6)
            if cfg["steps"] == 1:
                y = 2 * np.log(_layer(f, "act_grad_norm")[: cfg["depth"]])[5:-2]
                xi[s2] = 1 / abs(np.polyfit(np.arange(5, 5 + y.size), y, 1)[0])
            else:
                acc[(s2, cfg["depth"])] = _tail(_col(f, "accuracy"))
        for s2, v in xi.items():
            row = next(r for r in table if int(r["replication_seed"]) == seed and abs(float(r["sigma_w2"]) - s2) < 1e-6)
            assert float(row["xi"]) == pytest.approx(v, rel=1e-6)
        deep, shallow = max(d for _, d in acc), min(d for _, d in acc)
        crit = next(s for s, _ in acc if abs(s - 1.76) < 1e-6)
        per_seed[seed] = {
            "xi_peaks_at_critical": abs(max(xi, key=xi.get) - 1.76) < 1e-6,
            "depths_straddle_6xi": all(shallow < 6 * xi[s] <= deep for s in (1.0, 4.0)),
            "critical_deep_trains": acc[(crit, deep)] >= 0.9,
            "ordered_deep_fails": acc[(1.0, deep)] <= 0.7,
            "chaotic_deep_fails": acc[(4.0, deep)] <= 0.7,
            "ordered_shallow_trains": acc[(1.0, shallow)] >= 0.8,
            "chaotic_shallow_trains": acc[(4.0, shallow)] >= 0.8,
        }
    _assert_rule(rep, per_seed)


def test_spread_is_per_input_then_averaged():
    """Two inputs whose Jacobians are each exact isometries of different scales have
    spread 0 (pooling them would report the scale difference as spread)."""
    from gradsim.replications.spectra import spread

    sv = np.stack([np.ones(8), 3 * np.ones(8)])
    assert spread(sv) == 0.0
    rng = np.random.default_rng(0)
    sv = rng.uniform(0.1, 2.0, (5, 16))
    assert spread(sv) == pytest.approx(_spread(sv), rel=1e-12)


def test_docs_show_every_replications_figure_with_its_citation():
    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "replications.md").read_text()
    for name, rep in REPLICATIONS.items():
        assert f"](replications/{name}.png)" in text, name
        png = root / "docs" / "replications" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        first_author = rep.citation.split(",")[0].split()[-1]
        assert first_author in text, (name, first_author)
    # Which sections report a non-reproduction, from their own measured verdicts (default mode, seeds 0-9):
    # xiong2020 in part, bengio1994 (too few seeds fail at T = 80 at width 32). A section that changes
    # its verdict must change this line too, so a verdict never flips in the docs unnoticed.
    sections = {part.split(" ", 1)[0]: part for part in text.split("\n## ")[1:]}
    not_reproduced = {name for name, part in sections.items() if "NOT REPRODUCED" in part}
    assert not_reproduced == {"bengio1994", "xiong2020"}


@pytest.mark.parametrize("mode", ["quick", "default", "full"])
def test_every_mode_lists_valid_runs_with_unique_folders_across_seeds(mode):
    """--full and the default mode are not run in CI (minutes): their configs at least validate."""
    for name, rep in REPLICATIONS.items():
        runs = [r for s in (0, 1, 7) for r in rep.runs(mode, s)]
        assert runs and len({r.key for r in runs}) == len(runs), name
        for s in (0, 7):
            assert {r.config.seed for r in rep.runs(mode, s)} == {s}, name  # a repetition's runs use its seed
        for r in runs:
            r.config.validate()


# ------------------------------------------------ seeds, Wilson interval and the rule on a tiny replication
class _Tiny(Replication):
    """3-step runs; claim "odd" holds on odd seeds only, "finite" on every seed."""

    name, title, citation, claim, setup = "tiny", "Tiny", "nobody", "the loss is finite", "one small run per seed"

    def runs(self, mode, seed=0):
        return [Run(f"only-seed{seed}", RunConfig(dataset="moons", depth=2, width=4, steps=3, seed=seed), tags={"seed": seed})]

    def analyse(self, results, mode):
        (r,) = results.values()
        seed = r.run.tags["seed"]
        finite = bool(np.isfinite(r.loss()).all())
        checks = {"finite": finite, "odd": seed % 2 == 1}
        return Outcome(all(checks.values()), f"seed {seed}", "finite loss; odd seed", [{"run": r.run.key, "loss0": float(r.loss()[0])}], checks)

    def draw(self, fig, results, outcome):
        fig.add_subplot(1, 1, 1).plot(next(iter(results.values())).loss())


def test_wilson_interval_solves_the_score_test_equality():
    for k, n in [(0, 1), (0, 10), (3, 3), (4, 4), (7, 20), (9, 10), (29, 29), (13, 50)]:
        lo, hi = wilson_interval(k, n)
        assert 0 <= lo <= k / n <= hi <= 1
        ph = k / n
        for p in (lo, hi):  # an endpoint strictly inside (0, 1) is a root of (ph - p)^2 = Z^2 p (1 - p) / n
            if 0 < p < 1:
                assert (ph - p) ** 2 == pytest.approx(Z * Z * p * (1 - p) / n, rel=1e-9, abs=1e-12)
        assert lo == pytest.approx(_wilson_low(k, n), abs=1e-12)
        assert wilson_interval(n - k, n) == pytest.approx((1 - hi, 1 - lo), abs=1e-12)  # symmetric in success/failure
    assert wilson_interval(4, 4)[0] > 0.5 > wilson_interval(3, 3)[0]  # why quick mode runs 4 seeds


def test_seeds_rates_per_seed_csv_and_verdict_follow_the_rule(tmp_path):
    rep = run_replication(_Tiny(), tmp_path / "a", "quick", seed=5, seeds=5)
    assert rep.seeds == [5, 6, 7, 8, 9]
    assert sorted(p.name for p in (tmp_path / "a" / "runs").iterdir()) == [f"only-seed{s}" for s in range(5, 10)]
    per_seed = {s: {"finite": True, "odd": s % 2 == 1} for s in range(5, 10)}
    _assert_rule(rep, per_seed)  # odd: 3 of 5, low 0.23 -> NOT REPRODUCED
    assert not rep.reproduced
    text = (tmp_path / "a" / "verdict.txt").read_text()
    assert f"finite: 5/5 seeds = 1.00, 95% interval [{_wilson_low(5, 5):.2f}, 1.00] -> REPRODUCED" in text
    assert "odd: 3/5 seeds = 0.60" in text and "Verdict: NOT REPRODUCED." in text
    rows = _rows(tmp_path / "a" / "results.csv")
    assert [int(r["replication_seed"]) for r in rows] == list(range(5, 10))
    for r in rows:  # each seed's row holds that seed's own run
        f = tmp_path / "a" / "runs" / r["run"]
        assert _seed(f) == int(r["replication_seed"]) and float(r["loss0"]) == _col(f, "loss")[0]
    # Defaults: SEEDS[mode] seeds from 0.
    rep = run_replication(_Tiny(), tmp_path / "b", "default")
    assert rep.seeds == list(range(SEEDS["default"])) and SEEDS["default"] >= 10


@pytest.mark.parametrize("kw, bad", [(dict(seeds=0), "--seeds 0"), (dict(seed=-1), "--seed -1"), (dict(seeds=-3), "--seeds -3"),
                                     (dict(seed=2**32 - 2, seeds=4), "the last seed"), (dict(seed=True), "--seed True")])
def test_bad_seed_values_are_refused_before_anything_is_written(tmp_path, kw, bad):
    with pytest.raises(ReplicationError, match=bad.replace("(", r"\(")):
        run_replication(_Tiny(), tmp_path / "out", "quick", **kw)
    assert not (tmp_path / "out").exists()


def test_pennington2017_depth_axis_labels_only_the_depths_run(tmp_path, monkeypatch):
    """Its log depth axis spans about one decade, where matplotlib labels the
    minor ticks too: the labels overlapped into an unreadable row."""
    from gradsim.replications import framework

    figs = []
    original = framework.write_figure

    def keep(rep, results, outcome, path, reproduced=None):
        original(rep, results, outcome, path, reproduced)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure()
        FigureCanvasAgg(fig)
        rep.draw(fig, results, outcome)
        fig.canvas.draw()
        figs.append(fig)

    monkeypatch.setattr(framework, "write_figure", keep)
    rep = run_replication(REPLICATIONS["pennington2017"], tmp_path, "quick", seeds=1)
    depths = sorted({int(r["depth"]) for r in _rows(rep.csv)})
    ax = figs[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(d) for d in depths]
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
