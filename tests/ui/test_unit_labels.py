"""The plots name rows by their session's units, and the window's mirror takes the engine's units."""
from __future__ import annotations

import numpy as np

from gradsim.metrics import LAYER_METRICS, STEP_METRICS
from gradsim.models.family import Unit
from gradsim.service.protocol import Snapshot
from gradsim.session.store import Session, StepRecord
from ui.plots.layer_choice import default_layers, parse_layers
from ui.plots.labels import unit_ticks
from ui.plots.panel import PlotPanel
from ui.run_controller import RunController

NAMES = ("embed", "mixer", "head")


def _units() -> tuple[Unit, ...]:
    return tuple(Unit(j, name, "linear", (f"p{j}.weight",)) for j, name in enumerate(NAMES, 1))


def _store(units=None) -> Session:
    n = len(units) if units is not None else 3
    store = Session(n, {"depth": n - 1}, units=list(units) if units is not None else None)
    rng = np.random.default_rng(3)
    for i in range(20):
        layers = (10.0 ** rng.uniform(-6, 2, size=(n, len(LAYER_METRICS)))).astype(np.float32)
        store.append(StepRecord(i, np.zeros(len(STEP_METRICS)), layers, True))
    return store


def _ticks(axis) -> list[str]:
    return [text for level in axis._tickLevels for _, text in level]


def test_plots_label_rows_by_unit_name(qtbot):
    store = _store(_units())
    panel = PlotPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.refresh(store)
    assert _ticks(panel.heatmap.plot.getAxis("left")) == list(NAMES)
    assert _ticks(panel.depth_profile.plot.getAxis("bottom")) == list(NAMES)
    assert panel.layer_curves.legend.texts() == [NAMES[j - 1] for j in default_layers(3)]
    v = float(store.layer_metric("grad_norm")[5, 1])
    assert panel.heatmap.readout_at(0, 5.0, 2.0).startswith(f"step 5, mixer: ||dL/dW|| = {v:.4g}")
    assert "head: ||dL/dW||" in panel.depth_profile.readout_at(0, 3.0, 0.0)
    # the curve picker takes names as well as numbers
    panel.layer_curves.layer_edit.setText("head, embed")
    panel.layer_curves.layer_edit.editingFinished.emit()
    assert panel.layer_curves.layers == [3, 1]
    assert panel.layer_curves.legend.texts() == ["head", "embed"]


def test_parse_layers_reads_numbers_and_unit_names():
    names = {"linear 1": 1, "linear 2": 2, "output": 3}
    assert parse_layers("1, Linear 2, output", names) == [1, 2, 3]
    assert parse_layers("output 1", names) == [3, 1]
    assert parse_layers("3 1") == [3, 1]
    assert parse_layers("linear 2", names) == [2]  # one entry that is a whole name
    assert parse_layers("2, 1 3", names) == [2, 1, 3]  # numbers between commas split at spaces
    for junk in ("linear 2 output", "1, nope"):  # a two-word name among others needs commas; an unknown name is junk
        try:
            parse_layers(junk, names)
        except ValueError:
            continue
        raise AssertionError(f"{junk!r} was accepted")


def test_many_units_get_a_spread_of_ticks_keeping_both_ends():
    store = Session(101, {"depth": 100})
    ticks = unit_ticks(store, 101)
    assert ticks[0] == (1.0, "linear 1") and ticks[-1] == (101.0, "output")
    assert len(ticks) <= 13 and all(name == store.units[int(pos) - 1].name for pos, name in ticks)


def test_the_mirror_takes_the_units_the_engine_sends(qtbot):
    run = RunController()
    run.generation = 4
    run.mirror = Session(3, {"depth": 2})
    assert [u.name for u in run.mirror.units] == ["linear 1", "linear 2", "output"]
    empty = _store().rows_after(10**9)
    snap = Snapshot(generation=4, rows=empty, step=0, total_steps=10, steps_per_s=0.0, loss=float("nan"),
                    accuracy=float("nan"), running=False, finished=False, diverged_at=None, units=_units())
    run._on_snapshot(snap)
    assert run.mirror.units == list(_units())
    later = Snapshot(generation=4, rows=empty, step=1, total_steps=10, steps_per_s=0.0, loss=float("nan"),
                     accuracy=float("nan"), running=False, finished=False, diverged_at=None)
    run._on_snapshot(later)  # later snapshots carry no units and keep the ones received
    assert run.mirror.units == list(_units())


def _recurrent_store() -> Session:
    """Three time steps (a signal, no parameters) and one weight group (parameters, no signal)."""
    units = [Unit(t, f"time {t}", "time") for t in (1, 2, 3)] + [Unit(4, "rnn.weight_hh_l0", "param", ("rnn.weight_hh_l0",))]
    return _store(units)


def test_heatmap_draws_only_the_units_a_metric_is_defined_for(qtbot):
    store = _recurrent_store()
    panel = PlotPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    hm = panel.heatmap
    hm.set_metric("act_grad_norm")
    panel.refresh(store)
    assert hm.image_data.shape[0] == 3 and _ticks(hm.plot.getAxis("left")) == ["time 1", "time 2", "time 3"]
    v = float(store.layer_metric("act_grad_norm")[7, 2])
    assert hm.readout_at(0, 7.0, 3.0).startswith(f"step 7, time 3: ||dL/dz|| = {v:.4g}")
    np.testing.assert_allclose(hm.image_data[:, 7], np.log10(store.layer_metric("act_grad_norm")[7, :3]), rtol=1e-6)
    hm.set_metric("grad_norm")
    panel.refresh(store)
    assert hm.image_data.shape[0] == 1 and _ticks(hm.plot.getAxis("left")) == ["rnn.weight_hh_l0"]
    w = float(store.layer_metric("grad_norm")[4, 3])
    assert hm.readout_at(0, 4.0, 1.0).startswith(f"step 4, rnn.weight_hh_l0: ||dL/dW|| = {w:.4g}")


def test_depth_profile_draws_only_the_units_a_metric_is_defined_for(qtbot):
    store = _recurrent_store()
    panel = PlotPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    dp = panel.depth_profile
    dp.set_metric("act_grad_norm")
    panel.refresh(store)
    np.testing.assert_array_equal(dp.values, store.layer_metric("act_grad_norm")[-1, :3].astype(np.float64))
    assert _ticks(dp.plot.getAxis("bottom")) == ["time 1", "time 2", "time 3"]
    assert dp.readout_at(0, 2.0, 0.0).startswith("step 19, time 2: ||dL/dz||")


def test_an_mlp_store_shows_every_row():
    from gradsim.models.family import unit_rows

    store = Session(4, {"depth": 3})
    for metric in ("grad_norm", "act_grad_norm", "update_ratio", "act_saturation"):
        assert unit_rows(store.units, metric) == [0, 1, 2, 3]


def test_a_transformers_parameter_rows_are_called_sublayers():
    """||dL/dW|| of a transformer draws attn/mlp rows with the embedding and head beside them: "sublayer",
    not the MLP's "layer"; a recurrent run's weight groups alone stay "parameter group"."""
    from gradsim.models.family import recurrent_units, transformer_units
    from gradsim.models.family import unit_rows
    from ui.plots.unit_axis import BLOCK_TITLE, PARAM_TITLE, unit_axis_title

    class S:
        units = transformer_units(3)

    assert unit_axis_title(S, unit_rows(S.units, "grad_norm")) == BLOCK_TITLE

    class R:
        units = recurrent_units(5, 1)

    assert unit_axis_title(R, unit_rows(R.units, "grad_norm")) == PARAM_TITLE
