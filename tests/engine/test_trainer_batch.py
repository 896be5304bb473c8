"""Trainer.batch(step): the batch a future step will train on, read without
changing the run."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from gradsim.commands import Scheduled, SetBatchNorm, SetLR
from gradsim.config import RunConfig
from gradsim.train.trainer import Trainer


def _config(**changes: Any) -> RunConfig:
    base: dict[str, Any] = dict(dataset="moons", n_samples=100, depth=2, width=6, batch_size=16, steps=30, stats_every=4,
                activation="tanh", optimizer="adam", lr=0.01, seed=9)
    base.update(changes)
    return RunConfig(**base)


def _recording(t: Trainer) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Wrap the trainer's batch draw so every batch a step trains on is kept."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    draw = t._batch

    def wrapped() -> tuple[torch.Tensor, torch.Tensor]:
        x, y = draw()
        seen.append((x.clone(), y.clone()))
        return x, y

    t._batch = wrapped  # type: ignore[method-assign]
    return seen


def _scalars(t: Trainer) -> np.ndarray:
    s = t.session.scalars.copy()
    from gradsim.metrics import STEP_INDEX

    s[:, STEP_INDEX["elapsed_s"]] = 0.0  # wall clock
    return s


@pytest.mark.parametrize("batch_size", [16, 30])  # 80 training samples: 5 batches an epoch, or 2 with a remainder
def test_batch_is_what_the_step_trains_on(batch_size):
    twin = Trainer(_config(batch_size=batch_size))
    seen = _recording(twin)
    twin.run()
    t = Trainer(_config(batch_size=batch_size))
    t.run(3)
    # every future step, across several epoch boundaries (new permutations)
    for step in range(3, 30):
        x, y = t.batch(step)
        np.testing.assert_array_equal(x.numpy(), seen[step][0].numpy())
        np.testing.assert_array_equal(y.numpy(), seen[step][1].numpy())
    # and the step now due, read again after training on
    t.run(7)
    x, y = t.batch(10)
    np.testing.assert_array_equal(x.numpy(), seen[10][0].numpy())
    np.testing.assert_array_equal(y.numpy(), seen[10][1].numpy())


def test_batch_changes_nothing():
    schedule = [Scheduled(6, SetBatchNorm(True)), Scheduled(12, SetLR(0.05))]
    plain = Trainer(_config(), schedule)
    plain.run()
    t = Trainer(_config(), schedule)
    for s in range(30):
        for ahead in (s, s + 1, s + 7, s + 40):  # past the run's end too: the order is defined there
            x, y = t.batch(ahead)
            x.add_(1.0)  # a copy: writing into it leaves the training data alone
            y.zero_()
        t.step()
    for a, b in zip((_scalars(plain), plain.session.layers, plain.session.steps), (_scalars(t), t.session.layers, t.session.steps)):
        np.testing.assert_array_equal(a, b)


def test_batch_refuses_a_past_step():
    t = Trainer(_config())
    t.run(5)
    before = t.state()
    with pytest.raises(ValueError, match="step 4 is in the past: this run is at step 5"):
        t.batch(4)
    with pytest.raises(ValueError, match="must be an integer"):
        t.batch(5.0)
    after = t.state()
    assert after["pos"] == before["pos"] and torch.equal(after["perm"], before["perm"])
    assert torch.equal(after["batch_gen"], before["batch_gen"])
