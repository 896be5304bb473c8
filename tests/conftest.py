"""Test configuration shared by engine, CLI and GUI tests.

Qt aborts without a display unless QT_QPA_PLATFORM is set (docs/architecture.md#pitfalls-measured-here),
so it is set here, before anything can import Qt.
"""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

# One thread: matmul results are then bit-identical run to run (determinism tests)
# and a second thread brings nothing on this 2-core machine.
torch.set_num_threads(1)


@pytest.fixture
def tiny_config():
    from gradsim.config import RunConfig

    return RunConfig(dataset="moons", n_samples=200, depth=3, width=8, batch_size=32, steps=20, stats_every=5)
