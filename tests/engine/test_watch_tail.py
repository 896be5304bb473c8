"""gradsim.watch.tail: a growing watched folder is read incrementally, and only what was appended.

The rows are written with SessionWriter (no torch) and compared with the whole
folder parsed afresh by read_growing, and the bytes each poll reads with the
bytes the writer appended (file sizes on disk).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gradsim.metrics import LAYER_METRICS, PRED_METRICS, STATS_METRICS, STEP_METRICS
from gradsim.models.family import Unit
from gradsim.session.io import export_session
from gradsim.session.store import Session
from gradsim.watch.tail import NotWatchedError, SessionTail, watched_meta
from gradsim.watch.writer import SessionWriter, read_growing

N_UNITS = 3


def _writer(path) -> SessionWriter:
    units = [Unit(j, f"enc.{j}", "linear", (f"enc.{j}.weight",)) for j in range(1, N_UNITS + 1)]
    return SessionWriter(path, units, {"model": "watched"})


def _write(w: SessionWriter, start: int, n: int) -> None:
    rng = np.random.default_rng(start)
    for s in range(start, start + n):
        scal = [float(v) for v in rng.random(len(STEP_METRICS))]
        scal[STEP_METRICS.index("clipped")] = scal[STEP_METRICS.index("diverged")] = 0.0
        scal[STEP_METRICS.index("loss")] = math.inf if s == start + n - 1 and start > 0 else scal[0]
        layers = [[float(v) for v in rng.random(len(LAYER_METRICS))] for _ in range(N_UNITS)]
        w.write_step(s, scal, layers, has_stats=s % 2 == 0)
    w.flush()
    w.write_json()


def _data_bytes(folder) -> int:
    return sum((folder / n).stat().st_size - len((folder / n).read_text().splitlines()[0]) - 1
               for n in ("steps.csv", "layers.csv", "events.csv"))


def _same(a: Session, b: Session) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.scalars, b.scalars)
    np.testing.assert_array_equal(a.layers, b.layers)
    np.testing.assert_array_equal(a.has_stats, b.has_stats)
    assert [(e.step, e.kind, e.value) for e in a.events] == [(e.step, e.kind, e.value) for e in b.events]


def test_polls_read_only_the_appended_bytes_and_equal_a_fresh_read(tmp_path):
    folder = tmp_path / "run"
    w = _writer(folder)
    tail = SessionTail(folder)
    session = tail.open()
    assert len(session) == 0 and [u.name for u in session.units] == ["enc.1", "enc.2", "enc.3"]
    up = tail.poll()
    assert len(up.rows) == 0 and up.running and tail.bytes_read == 0

    w.add_event(0, "start", "watched, a, comma")  # quoted in the CSV
    _write(w, 0, 4)
    up = tail.poll()
    session.append_rows(up.rows)
    _same(session, read_growing(folder))
    assert tail.bytes_read == _data_bytes(folder)

    on_disk = _data_bytes(folder)
    _write(w, 4, 5)
    before = tail.bytes_read
    up = tail.poll()
    assert len(up.rows) == 5 and int(up.rows.steps[0]) == 4
    session.append_rows(up.rows)
    _same(session, read_growing(folder))
    assert tail.bytes_read - before == _data_bytes(folder) - on_disk  # the second poll read the new bytes only

    w.close()
    up = tail.poll()
    assert not up.running and len(up.rows) == 0 and up.steps_run == 9


def test_a_line_still_being_written_waits_for_the_next_poll(tmp_path):
    folder = tmp_path / "run"
    w = _writer(folder)
    _write(w, 0, 2)
    tail = SessionTail(folder)
    session = tail.open()
    full = (folder / "steps.csv").read_bytes()
    # a third step's layers are on disk, its steps.csv row only half written
    _write(w, 2, 1)
    grown = (folder / "steps.csv").read_bytes()
    (folder / "steps.csv").write_bytes(grown[: len(full) + 5])
    up = tail.poll()
    assert len(up.rows) == 2
    session.append_rows(up.rows)
    (folder / "steps.csv").write_bytes(grown)
    session.append_rows(tail.poll().rows)
    _same(session, read_growing(folder))
    w.close()


def test_folders_that_are_not_watched_runs_say_what_they_are(tmp_path):
    with pytest.raises(NotWatchedError, match="no such folder"):
        watched_meta(tmp_path / "missing")
    with pytest.raises(NotWatchedError, match="holds no session.json"):
        watched_meta(tmp_path)
    (tmp_path / "f.zip").write_bytes(b"PK")
    with pytest.raises(NotWatchedError, match="a file, not a folder"):
        watched_meta(tmp_path / "f.zip")
    s = Session(2, {"depth": 1})
    mlp = export_session(s, tmp_path / "mlp")
    with pytest.raises(NotWatchedError, match="model 'mlp', not a watched run"):
        watched_meta(mlp)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "session.json").write_text("{not json")
    with pytest.raises(NotWatchedError, match="cannot be read as JSON"):
        watched_meta(tmp_path / "bad")
    w = _writer(tmp_path / "ok")
    assert watched_meta(tmp_path / "ok")["running"] is True
    w.close()
    assert json.loads((tmp_path / "ok" / "session.json").read_text())["running"] is False


@pytest.mark.parametrize("has_stats", [False, True])
def test_a_block_of_columns_writes_the_same_bytes_as_rows(tmp_path, has_stats):
    """write_columns (what the recorder uses: one block per step, column by column) and
    write_step (one row per unit in LAYER_METRICS order) must give the same files."""
    rng = np.random.default_rng(7)
    given = [m for m in LAYER_METRICS if m not in PRED_METRICS and (has_stats or m not in STATS_METRICS)
             and (has_stats or m != "act_grad_norm")]
    a, b = _writer(tmp_path / "rows"), _writer(tmp_path / "cols")
    for s in range(4):
        scal = [float(v) for v in rng.random(len(STEP_METRICS))]
        block = rng.standard_normal((len(given), N_UNITS)).astype(np.float32).astype(float)
        block[0, 1], block[-1, 0], block[1, 2] = math.nan, math.inf, -math.inf
        rows = [[math.nan] * len(LAYER_METRICS) for _ in range(N_UNITS)]
        for k, m in enumerate(given):
            for u in range(N_UNITS):
                rows[u][LAYER_METRICS.index(m)] = float(block[k, u])
        a.write_step(s, scal, rows, has_stats=has_stats)
        b.write_columns(s, scal, tuple(given), block.reshape(-1).tolist())
    for w in (a, b):
        w.close()
    for name in ("steps.csv", "layers.csv"):
        assert (tmp_path / "rows" / name).read_bytes() == (tmp_path / "cols" / name).read_bytes()
    with pytest.raises(ValueError, match="LAYER_METRICS names in their order"):
        _writer(tmp_path / "bad").write_columns(0, scal, ("weight_norm", "grad_norm"), [0.0] * 2 * N_UNITS)
