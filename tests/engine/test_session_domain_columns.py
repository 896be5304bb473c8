"""steps.csv ends with the theory-domain verdict; files written before it still load."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from gradsim.config import RunConfig
from gradsim.session.io import SessionFormatError, export_session, load_session
from gradsim.theory_verdicts import verdict_at
from gradsim.train.trainer import Trainer


@pytest.fixture(scope="module")
def run():
    t = Trainer(RunConfig(depth=4, width=32, steps=25, stats_every=10))
    t.run()
    return t.session


def _read(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_verdict_columns_hold_each_rows_verdict(run, tmp_path):
    out = export_session(run, tmp_path / "s")
    rows = _read(out / "steps.csv")
    assert list(rows[0])[-3:] == ["theory_in_domain", "theory_gain_error", "test_accuracy"]
    tested = 0
    for i, r in enumerate(rows):
        v = verdict_at(run, i)
        if v is None:  # no prediction recorded on this row: empty cells
            assert r["theory_in_domain"] == r["theory_gain_error"] == ""
            continue
        tested += 1
        assert r["theory_in_domain"] == ("1" if v.in_domain else "0")
        # independently: the geometric mean of measured / predicted over the hidden transitions
        g = run.layer_metric("act_grad_norm")[i].astype(np.float64)
        p = run.layer_metric("pred_gain")[i].astype(np.float64)
        ratio = math.exp(float(np.mean(np.log(g[:3] / g[1:4] / p[:3]))))
        assert float(r["theory_gain_error"]) == pytest.approx(ratio, rel=1e-12)
    assert tested == 3  # steps 0, 10, 20 (stats_every)


def test_other_columns_are_what_they_were(run, tmp_path):
    """The columns before the verdict are the same cells as before it existed."""
    out = export_session(run, tmp_path / "s")
    lines = (out / "steps.csv").read_text().splitlines()
    first = lines[1].split(",")
    row0 = run.scalars[0].tolist()
    assert first[0] == "0" and first[1] == repr(row0[0]) and first[8] == repr(row0[7]) and len(first) == 12


def test_a_file_without_the_verdict_columns_loads(run, tmp_path):
    out = export_session(run, tmp_path / "s")
    text = (out / "steps.csv").read_text().splitlines()
    (out / "steps.csv").write_text("\n".join(",".join(line.split(",")[:9]) for line in text) + "\n")
    back = load_session(out)
    from gradsim.metrics import STEP_INDEX

    held = STEP_INDEX["test_accuracy"]
    first = [i for i in range(run.scalars.shape[1]) if i != held]
    np.testing.assert_array_equal(back.scalars[:, first], run.scalars[:, first])
    assert np.isnan(back.scalars[:, held]).all()  # no held-out column in the file: not measured
    again = export_session(back, tmp_path / "again")  # and the verdict is written back from layers.csv
    assert [line.rsplit(",", 1)[0] for line in (again / "steps.csv").read_text().splitlines()] == \
        [line.rsplit(",", 1)[0] for line in text]


def test_a_bad_verdict_cell_is_named(run, tmp_path):
    out = export_session(run, tmp_path / "s")
    lines = (out / "steps.csv").read_text().splitlines()
    cells = lines[1].split(",")
    cells[-2] = "lots"
    lines[1] = ",".join(cells)
    (out / "steps.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SessionFormatError, match="steps.csv line 2: theory_gain_error = 'lots' is not a number"):
        load_session(out)
