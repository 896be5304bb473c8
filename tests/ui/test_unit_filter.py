"""The heatmap of a watched model with 200+ units: rows grouped by module path, filterable by a text box.

The session is written with SessionWriter (no torch); the expected rows are
read back from layers.csv with the csv module.
"""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from gradsim.metrics import LAYER_METRICS, STEP_METRICS
from gradsim.models.family import Unit
from gradsim.watch.writer import SessionWriter
from ui.plots.unit_filter import MOST_TICKS, group_of, groups, matches, row_ticks, separators, short_label

BLOCKS = 30
PARTS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2", "norm1", "norm2")
NAMES = ["embed"] + [f"encoder.layers.{b}.{p}" for b in range(BLOCKS) for p in PARTS] + ["head"]
STEPS = 6


def test_group_of_cuts_at_the_last_numbered_part():
    assert group_of("encoder.layers.3.self_attn.q_proj") == "encoder.layers.3.*"
    assert group_of("blocks.0.conv1") == "blocks.0.*"
    assert group_of("head.fc") == "head.*"
    assert group_of("fc") == "fc"
    assert group_of("rnn") == "rnn"
    assert groups(["a", "b.0.x", "b.0.y", "b.1.x", "c"]) == [(0, 1, "a"), (1, 3, "b.0.*"), (3, 4, "b.1.*"), (4, 5, "c")]


def test_filter_terms_are_substrings_or_globs_any_of_which_matches():
    names = ["enc.0.attn.q", "enc.0.mlp.fc1", "enc.1.attn.q", "head"]
    assert matches(names, "") == [0, 1, 2, 3]
    assert matches(names, "  ") == [0, 1, 2, 3]
    assert matches(names, "ATTN") == [0, 2]
    assert matches(names, "enc.1, head") == [2, 3]
    assert matches(names, "*.q") == [0, 2]
    assert matches(names, "enc.?.mlp*") == [1]
    assert matches(names, "nothing") == []


def test_ticks_name_rows_when_they_fit_and_groups_when_they_do_not():
    few = NAMES[:10]
    assert row_ticks(few) == [(float(i + 1), short_label(n)) for i, n in enumerate(few)]
    many = row_ticks(NAMES)
    assert len(many) <= MOST_TICKS
    labels = [t for _, t in many]
    assert labels[0] == "embed" and all(t == "head" or t.endswith(".*") for t in labels[1:])
    # every tick sits on the first row of its group
    for y, label in many:
        assert NAMES[int(y) - 1] == label or group_of(NAMES[int(y) - 1]) == label
    assert short_label("x" * 40) == "…" + "x" * 27 and len(short_label("x" * 40)) == 28
    # a separator where each ticked group begins: every group when they fit
    assert separators(NAMES[:17]) == [1.5, 9.5]
    assert separators(NAMES) == [y - 0.5 for y, _ in many if y > 1]


@pytest.fixture
def big_session(tmp_path):
    units = [Unit(j, n, "linear", (f"{n}.weight",)) for j, n in enumerate(NAMES, 1)]
    w = SessionWriter(tmp_path / "big", units, {"model": "watched"})
    rng = np.random.default_rng(1)
    for s in range(STEPS):
        scal = [0.0] * len(STEP_METRICS)
        scal[STEP_METRICS.index("loss")] = 1.0 / (s + 1)
        layers = 10.0 ** rng.uniform(-6, 1, (len(units), len(LAYER_METRICS)))
        w.write_step(s, scal, layers.tolist(), has_stats=False)
    w.close()
    return tmp_path / "big"


def _grad(folder) -> np.ndarray:
    rows = list(csv.DictReader((folder / "layers.csv").read_text().splitlines()))
    return np.array([float(r["grad_norm"]) for r in rows], np.float32).reshape(STEPS, len(NAMES))


def test_a_200_unit_heatmap_is_grouped_and_the_box_filters_its_rows(qtbot, window, big_session):
    assert len(NAMES) > 200
    with qtbot.waitSignal(window.viewer.opened, timeout=20000):
        window.open_session(str(big_session))
    hm = window.plots.heatmap
    window.refresh_plots_now()
    grad = _grad(big_session)
    np.testing.assert_allclose(hm.image_data, np.log10(grad).T, rtol=1e-6)
    assert hm._ticks == row_ticks(NAMES) and len(hm._ticks) <= MOST_TICKS
    shown = [line for line in hm._separators if line.isVisible()]
    assert [line.value() for line in shown] == separators(NAMES)

    hm.unit_filter.setText("layers.3.")
    rows = matches(NAMES, "layers.3.")
    assert [NAMES[r] for r in rows] == [f"encoder.layers.3.{p}" for p in PARTS]
    np.testing.assert_allclose(hm.image_data, np.log10(grad[:, rows]).T, rtol=1e-6)
    assert [t for _, t in hm._ticks] == [short_label(NAMES[r]) for r in rows]
    assert "8 of 242 units match the filter" in hm.note.text()
    # the hover readout names the filtered row's unit
    assert "encoder.layers.3.self_attn.q_proj" in hm.readout_at(0, 0.0, 1.0)

    hm.unit_filter.setText("*q_proj")
    assert hm.image_data.shape[0] == BLOCKS
    hm.unit_filter.setText("no-such-unit")
    assert hm.image_data.shape[0] == len(NAMES) and "no unit matches 'no-such-unit'" in hm.note.text()
    hm.unit_filter.clear()
    np.testing.assert_allclose(hm.image_data, np.log10(grad).T, rtol=1e-6)
    assert not math.isnan(float(hm.image_data[0, 0]))
