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
