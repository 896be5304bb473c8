"""Export streams rows to disk in chunks: its memory does not grow with the store.

Measured with tracemalloc (allocations, not time): the old exporter built each
CSV as one string, so its peak was the size of the file.
"""
import tracemalloc
import zipfile

import numpy as np
import pytest

from gradsim.metrics import STEP_METRICS
from gradsim.session import io as session_io
from gradsim.session.store import Session, StepRecord


def _big_session(n_steps=10000, n_layers=6):
    s = Session(n_layers, {"depth": n_layers - 1}, max_memory_mb=64)
    rng = np.random.default_rng(0)
    layers = rng.standard_normal((n_layers, 11)).astype(np.float32)
    layers[-1, -1] = np.nan  # the output layer has no pred_gain
    scalars = rng.standard_normal(len(STEP_METRICS))
    unsampled = layers.copy()
    unsampled[:, 6:10] = np.nan  # activation statistics only on sampled rows, as the trainer records them
    for step in range(n_steps):
        row = layers if step % 3 == 0 else unsampled
        row[0, 0] = step  # rows differ
        s.append(StepRecord(step, scalars, row, step % 3 == 0))
    return s


def test_chunked_rendering_is_byte_identical_to_whole_file_rendering():
    s = _big_session(50, 4)
    whole = session_io.render(s)
    for chunk in (1, 3, 10, 10_000):
        assert "".join(session_io.iter_steps_csv(s, chunk)) == whole["steps.csv"]
        assert "".join(session_io.iter_layers_csv(s, chunk)) == whole["layers.csv"]


@pytest.mark.parametrize("name", ["out", "out.zip"])
def test_export_peak_memory_is_a_chunk_not_the_file(tmp_path, monkeypatch, name):
    s = _big_session()
    monkeypatch.setattr(session_io, "CHUNK_LINES", 1000)
    tracemalloc.start()
    try:
        path = session_io.export_session(s, tmp_path / name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            size = zf.getinfo("layers.csv").file_size
    else:
        size = (path / "layers.csv").stat().st_size
    assert size > 6_000_000  # 60,000 lines of ~107 bytes
    # One chunk: 1000 lines of text (~100 kB), Python's per-string overhead
    # while it is assembled, the chunk's numbers as Python floats and, for a
    # .zip, the compressor's buffers: ~0.7-1.2 MB,
    # a fraction of the file (the old exporter's peak was the whole file, twice).
    assert peak < size / 4, f"export peaked at {peak:,} bytes for a {size:,} byte layers.csv"
    back = session_io.load_session(path)
    assert len(back) == len(s) and np.array_equal(back.layers, s.layers, equal_nan=True)


def test_a_failure_mid_stream_leaves_no_file(tmp_path, monkeypatch):
    s = _big_session(300, 3)
    real = session_io.iter_layers_csv

    def broken(session, chunk_lines=None):
        it = real(session, 10)
        yield next(it)
        yield next(it)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(session_io, "iter_layers_csv", broken)
    for target in (tmp_path / "new", tmp_path / "new.zip"):
        with pytest.raises(session_io.ExportError, match="No space left"):
            session_io.export_session(s, target)
        assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
