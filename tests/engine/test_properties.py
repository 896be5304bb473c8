"""Property-based tests: random valid configs and command schedules never break the engine."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradsim.commands import CommandError, Reinit, Scheduled, SetActivation, SetBatchNorm, SetClip, SetLR, SetOptimizer
from gradsim.config import ACTIVATIONS, INITS, OPTIMIZERS, RunConfig
from gradsim.session.io import export_session, load_session
from gradsim.train.trainer import Trainer

configs = st.builds(
    RunConfig,
    dataset=st.sampled_from(["spiral", "moons", "circles", "xor", "blobs"]),
    n_samples=st.integers(40, 200),
    depth=st.integers(1, 6),
    width=st.integers(1, 12),
    activation=st.sampled_from(ACTIVATIONS),
    init=st.sampled_from(INITS),
    init_std=st.floats(1e-3, 3.0),
    batchnorm=st.booleans(),
    clip_mode=st.sampled_from(["none", "norm", "value"]),
    clip_threshold=st.floats(1e-3, 10.0),
    optimizer=st.sampled_from(OPTIMIZERS),
    lr=st.floats(1e-4, 1e3),
    batch_size=st.integers(2, 32),
    steps=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    stats_every=st.integers(1, 5),
    max_memory_mb=st.sampled_from([0.002, 0.01, 256.0]),
)

commands = st.one_of(
    st.builds(SetActivation, st.sampled_from(ACTIVATIONS)),
    st.builds(SetActivation, st.sampled_from(ACTIVATIONS), st.integers(1, 6)),
    st.builds(Reinit, st.sampled_from(INITS)),
    st.builds(Reinit, st.sampled_from(["normal", "uniform"]), st.floats(1e-3, 5.0)),
    st.builds(SetBatchNorm, st.booleans()),
    st.builds(SetClip, st.sampled_from(["norm", "value"]), st.floats(1e-3, 10.0)),
    st.just(SetClip("none")),
    st.builds(SetLR, st.floats(1e-5, 1e4)),
    st.builds(SetOptimizer, st.sampled_from(OPTIMIZERS)),
)
schedules = st.lists(st.builds(Scheduled, st.integers(0, 12), commands), max_size=25)


def _check_consistent(t: Trainer) -> None:
    live = list(t.net.parameters())
    opt = t.optimizer.params()
    assert {id(p) for p in opt} == {id(p) for p in live} and len(opt) == len(live)
    assert set(t.optimizer.state) <= set(t.arenas) and t.optimizer.arenas == t.arenas
    assert all(a.owns_storage() for a in t.arenas.values())  # every parameter lives in its arena
    assert sum(p.numel() for p in live) == t.config.with_changes(batchnorm=t.net.has_batchnorm).param_count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs, schedules)
def test_random_runs_never_raise_and_round_trip(tmp_path_factory, cfg, schedule):
    cfg = cfg.with_changes(batch_size=min(cfg.batch_size, cfg.n_train))
    layer_ok = [s for s in schedule if not (isinstance(s.command, SetActivation) and s.command.layer and s.command.layer > cfg.depth)]
    if len(layer_ok) < len(schedule):  # an impossible command is refused before anything runs
        with pytest.raises(CommandError, match="has no activation"):
            Trainer(cfg, schedule)
    t = Trainer(cfg, layer_ok)
    t.run()
    _check_consistent(t)
    s = t.session
    assert s.steps_run == t.step_index and len(s) >= 1
    assert t.finished
    if t.diverged_at is not None:
        assert s.diverged_at == t.diverged_at and s.column("diverged")[-1] == 1.0
    assert s.nbytes <= max(s.capacity, 16) * s.row_nbytes
    out = export_session(s, tmp_path_factory.mktemp("x") / "run")
    back = load_session(out)
    assert np.array_equal(back.steps, s.steps)
    assert np.array_equal(back.scalars, s.scalars, equal_nan=True)
    assert np.array_equal(back.layers, s.layers, equal_nan=True)
    assert back.events == s.events
