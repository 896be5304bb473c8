"""A recurrent run with many time units keeps its store inside the byte budget and holds no
other growing history: bytes are counted (the store's arrays, tracemalloc), never time."""
import tracemalloc

import numpy as np
import pytest

from gradsim.config import RunConfig
from gradsim.metrics import LAYER_METRICS, STEP_METRICS
from gradsim.train.trainer import Trainer

T, DEPTH, BUDGET_MB = 400, 1, 0.5


def _trainer() -> Trainer:
    return Trainer(RunConfig(model="rnn", dataset="adding", seq_len=T, depth=DEPTH, width=16, batch_size=8, n_samples=200,
                             steps=10**6, stats_every=10, lr=1e-3, max_memory_mb=BUDGET_MB))


def test_the_store_of_a_long_sequence_run_stays_inside_its_budget():
    t = _trainer()
    s = t.session
    # One row per step holds every unit: seq_len time units and 2 * depth + 1 parameter groups,
    # float32 per layer metric, plus the step, its float64 scalars and the stats flag.
    n_units = T + 2 * DEPTH + 1
    row = 8 + 1 + 8 * len(STEP_METRICS) + 4 * n_units * len(LAYER_METRICS)
    assert len(s.units) == n_units and s.layers.shape[1] == n_units
    assert s.capacity == int(BUDGET_MB * 1e6 // row) and s.capacity > 16  # the budget, not the 16-row floor, sizes it
    peak = 0
    for _ in range(4 * s.capacity):
        t.step()
        peak = max(peak, sum(a.nbytes for a in (s._steps, s._scalars, s._layers, s._has_stats)))
        assert len(s) <= s.capacity
    assert s.record_every >= 4  # the store filled and thinned at least twice
    assert peak <= BUDGET_MB * 1e6
    assert s.nbytes == peak
    # the rows it kept are whole rows of the run: every time unit's signal recorded
    assert np.isfinite(s.layer_metric("act_grad_norm")[:, :T]).all()
    assert np.array_equal(s.steps, np.arange(0, len(s) * s.record_every, s.record_every))


def test_a_long_sequence_run_grows_no_python_memory_once_its_store_is_full():
    t = _trainer()
    s = t.session
    while s.record_every < 2:  # fill the store once: its arrays are allocated and touched
        t.step()
    tracemalloc.start()
    try:
        for _ in range(20):  # warm-up of the traced allocations (caches of the first traced steps)
            t.step()
        before = tracemalloc.get_traced_memory()[0]
        steps = 2 * s.capacity
        for _ in range(steps):
            t.step()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Anything kept per step (a history list, a copy of a row, a retained graph's numpy side)
    # would grow by at least a row's worth over these steps; numpy arrays are traced.
    assert grown < s.row_nbytes, f"{grown} bytes grew over {steps} steps; one row is {s.row_nbytes}"


@pytest.mark.parametrize("block_rows", [1, 3, 10**6])
def test_thinning_block_by_block_keeps_exactly_the_rows_on_the_coarser_grid(monkeypatch, block_rows):
    from gradsim.session import store
    from gradsim.session.store import Session, StepRecord

    n_layers = 5
    s = Session(n_layers, max_memory_mb=40 * (8 + 1 + 8 * len(STEP_METRICS) + 4 * n_layers * len(LAYER_METRICS)) / 1e6)
    monkeypatch.setattr(store, "_THIN_BLOCK_BYTES", block_rows * s.row_nbytes)
    rng = np.random.default_rng(1)
    fed = []
    for step in range(s.capacity + 1):  # one row past full: thins once, to every second step
        scalars = rng.standard_normal(len(STEP_METRICS))
        scalars[STEP_METRICS.index("diverged")] = 0.0
        layers = rng.standard_normal((n_layers, len(LAYER_METRICS))).astype(np.float32)
        fed.append((step, scalars, layers, bool(step % 3 == 0)))
        s.append(StepRecord(step, scalars.copy(), layers.copy(), step % 3 == 0))
    want = [r for r in fed if r[0] % 2 == 0]
    assert s.record_every == 2 and len(s) == len(want)
    assert np.array_equal(s.steps, [r[0] for r in want])
    assert np.array_equal(s.scalars, np.stack([r[1] for r in want]))
    assert np.array_equal(s.layers, np.stack([r[2] for r in want]))
    assert np.array_equal(s.has_stats, [r[3] for r in want])
