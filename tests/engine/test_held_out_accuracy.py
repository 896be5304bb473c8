"""Held-out accuracy every stats interval (steps.csv's last column, ``test_accuracy``).

Checked against a plain torch MLP (nn.Sequential) loaded with the trainer's weights after the
step, on the held-out split rebuilt from the config; measuring it changes no other number.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradsim.config import RunConfig
from gradsim.data.datasets import make_dataset
from gradsim.metrics import STEP_INDEX
from gradsim.session.io import STEPS_HEADER, STEPS_HEADER_BEFORE_HELD_OUT, export_session, load_session
from gradsim.train.trainer import Trainer

HELD = STEP_INDEX["test_accuracy"]


def _plain_accuracy(trainer: Trainer, cfg: RunConfig) -> tuple[int, int]:
    """(correct, total) of an independent nn.Sequential with the trainer's current weights."""
    sizes = [lin.weight.shape[1] for lin in trainer.net.linears] + [trainer.net.linears[-1].weight.shape[0]]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    plain = nn.Sequential(*layers).double()
    with torch.no_grad():
        linears = [m for m in plain if isinstance(m, nn.Linear)]
        for mine, theirs in zip(linears, trainer.net.linears):
            mine.weight.copy_(theirs.weight.double())
            mine.bias.copy_(theirs.bias.double())
        data = make_dataset(cfg.dataset, cfg.n_samples, cfg.noise, cfg.seed, cfg.test_fraction)
        pred = plain(torch.from_numpy(np.asarray(data.x_test, np.float64))).argmax(1).numpy()
    return int((pred == np.asarray(data.y_test)).sum()), len(data.y_test)


@pytest.fixture
def cfg() -> RunConfig:
    return RunConfig(dataset="moons", n_samples=300, depth=3, width=16, batch_size=32, steps=83, stats_every=20,
                     activation="tanh", lr=0.5)


def test_held_out_accuracy_is_measured_every_stats_interval_after_the_update(cfg):
    t = Trainer(cfg)
    checked = []
    while not t.finished:
        s = t.step_index
        t.step()
        got = t.session.column("test_accuracy")[-1]
        if s % cfg.stats_every == 0:
            correct, total = _plain_accuracy(t, cfg)
            assert total == 60
            assert round(got * total) == correct and got == pytest.approx(correct / total, abs=1e-7), s
            checked.append((s, correct))
        else:
            assert math.isnan(got), s
    assert [s for s, _ in checked] == [0, 20, 40, 60, 80]
    assert len({c for _, c in checked}) > 1  # it moves as the network learns


@pytest.mark.parametrize("batchnorm", [False, True])
def test_measuring_it_changes_no_other_number(cfg, monkeypatch, batchnorm):
    """Every other column and every layer value equals a run whose held-out measurement is
    skipped (batch norm's running statistics included: eval mode leaves them alone)."""
    cfg = cfg.with_changes(batchnorm=batchnorm, steps=30)
    measured = Trainer(cfg)
    measured.run()
    monkeypatch.setattr(Trainer, "evaluate", lambda self: math.nan)
    skipped = Trainer(cfg)
    skipped.run()
    others = [i for i in range(measured.session.scalars.shape[1]) if i not in (HELD, STEP_INDEX["elapsed_s"])]
    np.testing.assert_array_equal(measured.session.scalars[:, others], skipped.session.scalars[:, others])
    np.testing.assert_array_equal(measured.session.layers, skipped.session.layers)
    assert np.isfinite(measured.session.scalars[::cfg.stats_every, HELD]).all()


def test_it_is_the_last_column_and_round_trips_and_older_files_load(cfg, tmp_path):
    t = Trainer(cfg)
    t.run()
    out = export_session(t.session, tmp_path / "s")
    lines = (out / "steps.csv").read_text().splitlines()
    assert lines[0].split(",")[-1] == "test_accuracy" and tuple(lines[0].split(",")) == STEPS_HEADER
    assert lines[0].rsplit(",", 1)[0] == ",".join(STEPS_HEADER_BEFORE_HELD_OUT)
    row5 = lines[1 + 20].split(",")
    assert float(row5[-1]) == t.session.scalars[20, HELD] and lines[2].endswith(",")  # step 1: empty
    back = load_session(out)
    np.testing.assert_array_equal(back.scalars, t.session.scalars)  # NaN where not measured
    # A file written before the column: the same cells without it; held-out accuracy NaN.
    (out / "steps.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    old = load_session(out)
    assert np.isnan(old.scalars[:, HELD]).all()
    others = [i for i in range(t.session.scalars.shape[1]) if i != HELD]
    np.testing.assert_array_equal(old.scalars[:, others], t.session.scalars[:, others])


def test_a_watched_session_opens_with_no_held_out_accuracy(tmp_path):
    """The watch writer's rows follow the steps.csv header (domain and held-out cells empty)."""
    from gradsim.watch import watch

    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), 0.1)
    gen = torch.Generator().manual_seed(0)
    with watch(model, opt, out=tmp_path / "w") as w:
        for _ in range(3):
            loss = model(torch.randn(5, 3, generator=gen)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.loss(loss)
    header, *rows = (tmp_path / "w" / "steps.csv").read_text().splitlines()
    assert tuple(header.split(",")) == STEPS_HEADER and all(len(r.split(",")) == len(STEPS_HEADER) for r in rows)
    s = load_session(tmp_path / "w")
    assert len(s) == 3 and np.isnan(s.column("test_accuracy")).all()
    assert np.isfinite(s.column("loss")).all()
