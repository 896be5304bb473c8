"""Trainer.apply is all or nothing: a refused command leaves the run bit for bit
as it was (parameters, buffers, gradients, optimizer state, lr, clipping,
events), an accepted one is recorded, and the run goes on exactly as a twin
that never saw the refused commands."""
from __future__ import annotations

import pickle
from dataclasses import fields
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradsim.commands import (
    Command, CommandError, Reinit, SetActivation, SetBatchNorm, SetClip, SetLayerNorm, SetLR, SetOptimizer, SetResidual,
)
from gradsim.config import RunConfig
from gradsim.metrics import STEP_INDEX
from gradsim.train.trainer import Trainer


def _config(depth: int, optimizer: str) -> RunConfig:
    return RunConfig(dataset="moons", n_samples=80, depth=depth, width=8, batch_size=8, steps=40, stats_every=2,
                     activation="tanh", optimizer=optimizer, lr=0.02, seed=3)


def _unchecked(cls: type, **values: Any) -> Command:
    """A command whose fields were never checked, as unpickling makes one."""
    cmd: Command = object.__new__(cls)
    for f in fields(cls):
        object.__setattr__(cmd, f.name, values.get(f.name, f.default))
    return cmd


class _FailsHalfway(Command):
    """Applies ``inner`` for real, then fails: the run must be put back anyway."""

    key = "halfway"

    def __init__(self, inner: Command, exc: BaseException) -> None:
        self.inner, self.exc = inner, exc

    def value(self) -> str:
        return self.inner.value()

    def apply_to(self, trainer: Any) -> None:
        self.inner.apply_to(trainer)
        raise self.exc


def _bytes(t: torch.Tensor) -> tuple:
    t = t.detach()
    return (str(t.dtype), tuple(t.shape), t.contiguous().numpy().tobytes())


def _walk(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return _bytes(x)
    if isinstance(x, dict):
        return {k: _walk(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_walk(v) for v in x]
    return x


def _snapshot(t: Trainer) -> dict[str, Any]:
    """Everything a refused command must leave alone, read straight off the objects."""
    net = t.net
    return {
        "params": [(n, _bytes(p), None if p.grad is None else _bytes(p.grad)) for n, p in net.named_parameters()],
        "buffers": [(n, _bytes(b)) for n, b in net.named_buffers()],
        "arenas": {k: (_bytes(a.data), _bytes(a.grad)) for k, a in t.arenas.items()},
        "structure": (list(net.activations), net.has_batchnorm, net.has_layernorm, net.residual, net.residual_alpha,
                      net.training),
        "optimizer": (type(t.optimizer).__name__, t.optimizer.lr, _walk(t.optimizer.state),
                      sorted(t.optimizer.arenas), len(t.optimizer.params()), t.optimizer_name),
        "run": (t.lr, t.clip_mode, t.clip_threshold, t.step_index, t._pos, _bytes(t._perm), _bytes(t.init_gen.get_state()),
                _bytes(t.batch_gen.get_state()), t.diverged_at, t._pred_due),
        "events": list(t.session.events),
        "rows": t.session.n_rows if hasattr(t.session, "n_rows") else len(t.session.steps),
    }


def _refused(depth: int) -> list[Command]:
    """Commands this run refuses: bad fields that slipped past the constructor, impossible layers,
    and good commands that fail after they changed the run."""
    return [
        _unchecked(SetOptimizer, name="bogus"),
        _unchecked(SetClip, mode="norm", threshold=-1.0),
        _unchecked(SetClip, mode="bogus", threshold=1.0),
        _unchecked(SetLR, lr=float("nan")),
        _unchecked(SetActivation, name="swish", layer=None),
        _unchecked(Reinit, scheme="bogus", scale=None),
        _unchecked(SetResidual, on=True, alpha=50.0),
        SetActivation("relu", depth + 1),
        _FailsHalfway(SetBatchNorm(True), RuntimeError("boom")),
        _FailsHalfway(SetLayerNorm(True), ValueError("boom")),
        _FailsHalfway(SetBatchNorm(False), RuntimeError("boom")),
        _FailsHalfway(SetOptimizer("adam"), RuntimeError("boom")),
        _FailsHalfway(SetOptimizer("momentum"), RuntimeError("boom")),
        _FailsHalfway(Reinit("normal", 0.3), RuntimeError("boom")),
        _FailsHalfway(SetLR(0.5), RuntimeError("boom")),
        _FailsHalfway(SetClip("value", 0.01), RuntimeError("boom")),
        _FailsHalfway(SetResidual(True, 0.5), RuntimeError("boom")),
        _FailsHalfway(SetActivation("relu", 1), RuntimeError("boom")),
    ]


_ACCEPTED = [
    SetBatchNorm(True), SetBatchNorm(False), SetLayerNorm(True), SetLayerNorm(False), SetOptimizer("sgd"),
    SetOptimizer("momentum"), SetOptimizer("adam"), SetLR(0.01), SetLR(0.05), SetClip("norm", 0.5), SetClip("value", 0.1),
    SetClip("none"), SetActivation("relu"), SetActivation("elu", 2), Reinit("he_normal"), Reinit("uniform", 0.2),
    SetResidual(True), SetResidual(False),
]

# An op: ("step", n), ("ok", index into _ACCEPTED) or ("bad", index into _refused(depth)).
_OPS = st.one_of(
    st.tuples(st.just("step"), st.integers(1, 3)),
    st.tuples(st.just("ok"), st.integers(0, len(_ACCEPTED) - 1)),
    st.tuples(st.just("bad"), st.integers(0, len(_refused(2)) - 1)),
)


def _rows(t: Trainer) -> list[np.ndarray]:
    s = t.session
    scalars = s.scalars.copy()
    scalars[:, STEP_INDEX["elapsed_s"]] = 0.0  # wall clock
    return [s.steps, scalars, s.layers, s.has_stats]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(2, 3), optimizer=st.sampled_from(["sgd", "momentum", "adam"]),
       ops=st.lists(_OPS, min_size=1, max_size=12))
def test_refused_commands_change_nothing(depth, optimizer, ops):
    t = Trainer(_config(depth, optimizer))
    twin = Trainer(_config(depth, optimizer))  # sees only the accepted commands
    t.step()
    twin.step()
    refused = _refused(depth)
    for kind, arg in ops:
        if kind == "step":
            for _ in range(arg):
                t.step()
                twin.step()
        elif kind == "ok":
            cmd = _ACCEPTED[arg]
            n = len(t.session.events)
            t.apply(cmd)
            twin.apply(cmd)
            assert len(t.session.events) == n + 1
            ev = t.session.events[-1]
            assert (ev.step, ev.kind, ev.value) == (t.step_index, cmd.key, cmd.value())
        else:
            before = _snapshot(t)
            with pytest.raises((CommandError, RuntimeError, ValueError)):
                t.apply(refused[arg])
            assert _snapshot(t) == before
    t.run(4)
    twin.run(4)
    for a, b in zip(_rows(t), _rows(twin)):
        np.testing.assert_array_equal(a, b)
    assert t.session.events == twin.session.events


def test_bogus_optimizer_then_batchnorm():
    """The reported sequence: a refused optimizer used to stay named and break the next toggle."""
    t = Trainer(_config(3, "adam"))
    t.step()
    with pytest.raises(CommandError, match="optimizer=bogus: allowed sgd, momentum, adam"):
        t.apply(pickle.loads(pickle.dumps(_unchecked(SetOptimizer, name="bogus"))))
    assert t.optimizer_name == "adam"
    t.apply(SetBatchNorm(True))
    assert t.net.has_batchnorm and t.session.events[-1].kind == "batchnorm"
    assert len(t.optimizer.params()) == len(list(t.net.parameters())) == 4 * 2 + 3 * 2  # 4 Linears (weight, bias), 3 batch norms (weight, bias)


def test_refused_clip_does_not_flip_gradients():
    t = Trainer(_config(2, "sgd"))
    t.step()
    with pytest.raises(CommandError, match="X > 0"):
        t.apply(_unchecked(SetClip, mode="norm", threshold=-1.0))
    assert (t.clip_mode, t.clip_threshold) == ("none", 1.0)
