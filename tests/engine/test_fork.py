"""Forking a run: bit-identical without a change, and after a toggle different only through it.

The reference for "only through it" is an independent computation: a fresh
run from the config with the same events scheduled, which never forked.
"""
from __future__ import annotations

import numpy as np
import pytest

from gradsim.commands import Scheduled, SetActivation, SetBatchNorm, SetLR
from gradsim.config import RunConfig
from gradsim.train.fork import copy_session, fork_trainer
from gradsim.metrics import STEP_INDEX
from gradsim.train.trainer import Trainer

FORK_AT = 13  # mid-epoch: 120 * 0.8 training samples / batch 16 = 6 batches an epoch
MORE = 9


def _config(**changes) -> RunConfig:
    base = dict(dataset="moons", n_samples=120, depth=4, width=8, batch_size=16, steps=60, stats_every=3,
                activation="tanh", optimizer="adam", lr=0.01)
    base.update(changes)
    return RunConfig(**base)


def _rows(trainer: Trainer, from_step: int):
    """The recorded rows from ``from_step`` on, without the wall-clock column."""
    s = trainer.session
    keep = s.steps >= from_step
    scalars = s.scalars[keep].copy()
    scalars[:, STEP_INDEX["elapsed_s"]] = 0.0
    return s.steps[keep], scalars, s.layers[keep], s.has_stats[keep]


def _assert_same(a, b) -> None:
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _schedule():
    return (Scheduled(5, SetActivation("relu")), Scheduled(8, SetLR(0.02)), Scheduled(30, SetActivation("tanh")))


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_an_unchanged_fork_stays_bit_identical(optimizer):
    a = Trainer(_config(optimizer=optimizer), _schedule())
    a.run(FORK_AT)
    b = fork_trainer(a, note="branch B")
    assert b.step_index == a.step_index == FORK_AT
    a.run(MORE + 20)  # past the pending scheduled change at step 30
    b.run(MORE + 20)
    _assert_same(_rows(a, 0), _rows(b, 0))
    # The history before the fork is in both, and the branch is a separate object.
    assert b.session is not a.session and b.net is not a.net
    assert [e for e in b.session.events if e.kind != "note"] == a.session.events
    assert any(e.kind == "note" and e.step == FORK_AT for e in b.session.events)


def test_a_toggle_on_one_branch_is_the_only_difference():
    a = Trainer(_config(), _schedule())
    a.run(FORK_AT)
    b = fork_trainer(a)
    b.apply(SetBatchNorm(True))
    a.run(MORE)
    b.run(MORE)
    # The branch that kept going equals a run that never forked...
    plain = Trainer(_config(), _schedule())
    plain.run(FORK_AT + MORE)
    _assert_same(_rows(a, 0), _rows(plain, 0))
    # ...and the toggled branch equals a fresh run with the toggle scheduled at the fork step.
    replay = Trainer(_config(), _schedule() + (Scheduled(FORK_AT, SetBatchNorm(True)),))
    replay.run(FORK_AT + MORE)
    _assert_same(_rows(b, 0), _rows(replay, 0))
    # Identical up to the toggle, different after it.
    _assert_same(_rows(a, 0)[1][:FORK_AT], _rows(b, 0)[1][:FORK_AT])
    assert not np.array_equal(_rows(a, FORK_AT)[1], _rows(b, FORK_AT)[1])


def test_branches_never_share_state():
    """Stepping one branch alone leaves the other where it was (nothing is shared)."""
    a = Trainer(_config(optimizer="momentum"))
    a.run(FORK_AT)
    b = fork_trainer(a)
    before = [w.detach().clone() for w in b.net.weights()]
    a.run(MORE)  # only branch A moves
    for w0, w in zip(before, b.net.weights()):
        np.testing.assert_array_equal(w0.numpy(), w.detach().numpy())
    b.run(MORE)
    _assert_same(_rows(a, 0), _rows(b, 0))


def test_fork_after_batchnorm_keeps_its_running_statistics():
    a = Trainer(_config(), (Scheduled(2, SetBatchNorm(True)),))
    a.run(FORK_AT)
    b = fork_trainer(a)
    assert b.net.has_batchnorm
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    a.run(MORE)
    b.run(MORE)
    _assert_same(_rows(a, 0), _rows(b, 0))


def test_copy_session_is_independent():
    a = Trainer(_config())
    a.run(4)
    c = copy_session(a.session)
    a.run(2)
    assert len(c) == 4 and c.steps_run == 4 and len(a.session) == 6
