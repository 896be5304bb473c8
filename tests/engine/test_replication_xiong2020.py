"""xiong2020 in quick mode, each seed's outcome per claim recomputed from the raw files
(session.json's units, layers.csv, steps.csv; the csv module and plain least squares), without
the replication's own code; then the rates and the verdict follow the framework's rule."""
from __future__ import annotations

import json
import math
from pathlib import Path

from tests.engine.test_replications import _assert_rule, _by_seed, _rows, quick  # noqa: F401 (quick: the shared fixture)


def _fit(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def _step0_grad(folder: Path) -> dict[str, float]:
    """grad_norm at step 0 by unit name."""
    units = {u["layer"]: u["name"] for u in json.loads((folder / "session.json").read_text())["units"]}
    return {units[int(r["layer"])]: float(r["grad_norm"]) for r in _rows(folder / "layers.csv") if int(r["step"]) == 0 and r["grad_norm"] != ""}


def _profile_decades(folder: Path, depth: int) -> float:
    g = _step0_grad(folder)
    logs = [0.5 * math.log10(g[f"attn {i}"] ** 2 + g[f"mlp {i}"] ** 2) for i in range(1, depth + 1)]
    return _fit(list(range(depth)), logs) * (depth - 1)


def _tail_accuracy(folder: Path) -> float:
    acc = [float(r["accuracy"]) for r in _rows(folder / "steps.csv")]
    n = max(1, round(len(acc) * 0.1))
    return sum(acc[-n:]) / n


def test_xiong2020_per_seed_from_raw_files(quick):  # noqa: F811
    rep = quick("xiong2020")
    per_seed = {}
    for seed, folders in _by_seed(rep).items():
        init: dict[tuple[str, int], Path] = {}
        train: dict[str, Path] = {}
        for f in folders:
            cfg = json.loads((f / "session.json").read_text())["config"]
            if cfg["steps"] == 1:
                init[cfg["norm_position"], cfg["depth"]] = f
            else:
                train["pre" if cfg["norm_position"] == "pre" else ("post-warmup" if cfg["warmup_steps"] else "post")] = f
        depths = sorted({d for _, d in init})
        assert len(depths) >= 3 and len(train) == 3
        rel = [_profile_decades(init["post", d], d) - _profile_decades(init["pre", d], d) for d in depths]
        logs = [math.log(d) for d in depths]
        p = {n: _fit(logs, [math.log(_step0_grad(init[n, d])[f"mlp {d}"]) for d in depths]) for n in ("pre", "post")}
        acc = {arm: _tail_accuracy(f) for arm, f in train.items()}
        per_seed[seed] = {
            "post_rises_relative_to_pre": all(v > 0 for v in rel),
            "pre_output_grad_like_1/sqrt(L)": abs(p["pre"] + 0.5) < 0.25,
            "post_output_grad_independent_of_L": abs(p["post"]) < 0.25,
            "post_without_warmup_fails": not acc["post"] >= 0.9,
            "post_with_warmup_learns": acc["post-warmup"] >= 0.9,
            "pre_without_warmup_learns": acc["pre"] >= 0.9,
        }
    _assert_rule(rep, per_seed)
