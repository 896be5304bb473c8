"""Trainer.state()/load_state(): a fresh Trainer loaded with another run's state
continues it bit for bit, and the state is a copy (the run going on does not
change it)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from gradsim.commands import Scheduled, SetActivation, SetBatchNorm, SetClip, SetLayerNorm, SetLR, SetOptimizer, SetResidual
from gradsim.config import RunConfig
from gradsim.metrics import STEP_INDEX
from gradsim.train.trainer import Trainer


def _config(**changes: Any) -> RunConfig:
    base: dict[str, Any] = dict(dataset="moons", n_samples=100, depth=3, width=8, batch_size=16, steps=50, stats_every=3,
                activation="tanh", optimizer="adam", lr=0.01, seed=5)
    base.update(changes)
    return RunConfig(**base)


def _flat(x):
    if isinstance(x, torch.Tensor):
        return (str(x.dtype), tuple(x.shape), x.detach().contiguous().numpy().tobytes())
    if isinstance(x, dict):
        return {k: _flat(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_flat(v) for v in x]
    return x


def _rows(t: Trainer, from_step: int):
    s = t.session
    keep = s.steps >= from_step
    scalars = s.scalars[keep].copy()
    scalars[:, STEP_INDEX["elapsed_s"]] = 0.0  # wall clock
    return [s.steps[keep], scalars, s.layers[keep], s.has_stats[keep]]


@pytest.mark.parametrize(
    "optimizer, changes",
    [
        ("adam", [SetBatchNorm(True), SetActivation("relu", 2), SetClip("norm", 0.5)]),
        ("momentum", [SetLayerNorm(True), SetResidual(True, 0.5), SetLR(0.03)]),
        ("sgd", [SetOptimizer("momentum"), SetBatchNorm(True), SetBatchNorm(False)]),
    ],
)
def test_load_state_continues_bit_for_bit(optimizer, changes):
    a = Trainer(_config(optimizer=optimizer), [Scheduled(20, SetActivation("elu"))])
    a.run(3)
    for cmd in changes:
        a.apply(cmd)
        a.run(2)
    at = a.step_index  # 9: mid-epoch (80 training samples / 16 = 5 batches an epoch)
    saved = a.state()
    frozen = _flat(saved)
    b = Trainer(_config(optimizer=optimizer))
    b.load_state(saved)
    assert _flat(b.state()) == frozen
    a.run(15)  # past the pending scheduled change at step 20
    b.run(15)
    assert _flat(saved) == frozen  # the state was a copy: running on did not touch it
    for x, y in zip(_rows(a, at), _rows(b, at)):
        np.testing.assert_array_equal(x, y)
    assert b.step_index == a.step_index == at + 15
    assert [e for e in b.session.events if e.step >= at] == [e for e in a.session.events if e.step >= at]
    assert b.net.activations == a.net.activations == ["elu"] * 3


def test_load_state_refuses_another_depth():
    with pytest.raises(ValueError, match="3 hidden layers, this run 2"):
        Trainer(_config(depth=2)).load_state(Trainer(_config()).state())


@pytest.mark.parametrize(
    "other, match",
    [
        (dict(width=6), r"linears\.0\.weight has shape \(6, 2\), this run's \(8, 2\)"),
        (dict(dataset="circles"), "another dataset"),
        (dict(n_samples=120), "covers 96 training samples, this run's dataset has 80"),
        (dict(depth=2), "2 hidden layers, this run 3"),
    ],
)
def test_load_state_refuses_another_run_unchanged(other, match):
    t = Trainer(_config(), [Scheduled(20, SetActivation("elu"))])
    t.run(7)
    t.apply(SetBatchNorm(True))
    before = _flat(t.state(grads=True))
    foreign = Trainer(_config(**other, optimizer="sgd", activation="relu"))
    foreign.run(3)
    with pytest.raises(ValueError, match=match):
        t.load_state(foreign.state())
    assert _flat(t.state(grads=True)) == before


def test_load_state_puts_back_a_state_that_fails_midway():
    t = Trainer(_config())
    t.run(4)
    before = _flat(t.state(grads=True))
    bad = Trainer(_config()).state()
    bad["structure"]["activations"] = ["relu", "relu", "relu"]
    bad["structure"]["batchnorm"] = True
    bad["net"] = {k: v for k, v in list(bad["net"].items())[1:]}  # a key lost: load_state_dict fails after the toggles
    with pytest.raises(RuntimeError):
        t.load_state(bad)
    assert _flat(t.state(grads=True)) == before
    assert t.net.activations == ["tanh"] * 3 and not t.net.has_batchnorm
    with pytest.raises(ValueError, match="lacks perm"):
        t.load_state({k: v for k, v in Trainer(_config()).state().items() if k != "perm"})
    assert _flat(t.state(grads=True)) == before
