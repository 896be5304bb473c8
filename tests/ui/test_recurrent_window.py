"""The window with a recurrent family: the builder offers its fields and only its datasets,
the live toggles re-draw W_hh and set the forget bias (and grey out what the family lacks),
the readouts show W_hh's spectral radius, and the plots run over time steps."""
from __future__ import annotations

import numpy as np
import pytest

from gradsim.config import MODEL_DATASETS, RunConfig
from gradsim.session.store import Session, StepRecord
from gradsim.metrics import LAYER_METRICS, STEP_METRICS
from gradsim.models.family import recurrent_units

WAIT_MS = 60_000


def _datasets(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_the_builder_lists_each_familys_datasets_and_fields(qtbot):
    from ui.panels.builder import BuilderPanel

    b = BuilderPanel()
    qtbot.addWidget(b)
    assert _datasets(b.dataset) == list(MODEL_DATASETS["mlp"])
    assert not b.seq_len.isEnabled() and not b.recurrent_init.isEnabled() and not b.forget_bias.isEnabled()
    b.batchnorm.setChecked(True)
    b.model.setCurrentText("lstm")  # as a student picks it
    assert _datasets(b.dataset) == list(MODEL_DATASETS["lstm"])
    cfg = b.config()
    assert cfg is not None, b.error()
    assert cfg.model == "lstm" and cfg.dataset in MODEL_DATASETS["lstm"] and cfg.depth == 1 and not cfg.batchnorm
    assert b.seq_len.isEnabled() and b.recurrent_init.isEnabled() and b.forget_bias.isEnabled()
    assert not b.batchnorm.isEnabled() and not b.residual.isEnabled()
    b.recurrent_init.setText("normal:1.3")
    b.forget_bias.setText("2")
    b.seq_len.setValue(17)
    cfg = b.config()
    assert (cfg.recurrent_init, cfg.forget_bias, cfg.seq_len) == ("normal:1.3", 2.0, 17)
    b.recurrent_init.setText("normal:-1")  # the engine's own rule, shown inline
    assert b.config() is None and "recurrent_init" in b.error()
    b.recurrent_init.setText("identity")
    b.model.setCurrentText("rnn")
    assert not b.forget_bias.isEnabled() and b.config() is not None
    b.model.setCurrentText("mlp")
    assert _datasets(b.dataset) == list(MODEL_DATASETS["mlp"]) and b.config().dataset in MODEL_DATASETS["mlp"]


def test_a_recurrent_config_round_trips_and_its_preset_loads(qtbot):
    from ui.panels.builder import BuilderPanel

    b = BuilderPanel()
    qtbot.addWidget(b)
    cfg = RunConfig(model="gru", dataset="recall-first", seq_len=33, depth=2, width=20, recurrent_init="identity",
                    optimizer="adam", lr=0.003, steps=77)
    b.set_config(cfg)
    assert b.config() == cfg
    p = b.apply_preset("lstm-remembers")
    assert b.config() == p.config and "sequences of 40 steps" in b.preview.note.text()


def _recurrent_store(T=6, model="rnn"):
    units = recurrent_units(T, 1)
    s = Session(len(units), {"model": model, "depth": 1, "width": 8, "seq_len": T}, units=units)
    rng = np.random.default_rng(0)
    for i in range(10):
        layers = (10.0 ** rng.uniform(-4, 1, (len(units), len(LAYER_METRICS)))).astype(np.float32)
        layers[:, LAYER_METRICS.index("pred_gain")] = np.nan  # no theory recorded (an LSTM has none)
        s.append(StepRecord(i, np.zeros(len(STEP_METRICS)), layers, True))
    return s


def test_the_plots_of_a_recurrent_run_are_over_time_steps(qtbot):
    from ui.plots.panel import PlotPanel

    store = _recurrent_store()
    panel = PlotPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.set_metric("act_grad_norm")
    panel.refresh(store)
    assert panel.heatmap.plot.getAxis("left").labelText == "time step t (1 = first input)"
    assert panel.depth_profile.plot.getAxis("bottom").labelText == "time step t (1 = first input)"
    assert panel.layer_curves.legend.texts() == ["t 1", "t 3", "t 6"]  # first, middle, last time step
    panel.set_metric("grad_norm")
    panel.refresh(store, force=True)
    assert panel.heatmap.plot.getAxis("left").labelText == "parameter group"
    assert panel.layer_curves.legend.texts() == ["input 1", "head"]  # default_layers(3): the middle is 1


def test_the_depth_profile_says_why_an_lstm_has_no_theory_line(qtbot):
    from ui.plots.depth_profile import DepthProfile

    store = _recurrent_store(model="lstm")
    p = DepthProfile()
    qtbot.addWidget(p)
    p.set_metric("act_grad_norm")
    p.refresh(store)
    assert p.prediction is None and "LSTM's gates" in p.note.text()


@pytest.fixture
def rnn_config() -> RunConfig:
    return RunConfig(model="lstm", dataset="adding", seq_len=8, width=12, depth=1, n_samples=200, batch_size=16,
                     steps=100_000, stats_every=5, optimizer="adam", lr=0.01)


def test_recurrent_toggles_reach_the_engine_and_the_readouts_follow(window, qtbot, rnn_config):
    from tests.ui.engine_probes import recurrent_facts

    window.builder.set_config(rnn_config)
    readouts: list = []
    window.run.readouts_changed.connect(readouts.append)
    assert window.start_run(paused=True)
    window.step_once()
    qtbot.waitUntil(lambda: window.mirror is not None and window.mirror.steps_run == 1, timeout=WAIT_MS)
    t = window.toggles
    assert t.recurrent_init_apply.isEnabled() and t.forget_bias_apply.isEnabled() and t.lr_apply.isEnabled()
    assert not t.batchnorm.isEnabled() and not t.activation_apply.isEnabled() and not t.reinit.isEnabled()
    t.recurrent_init.setText("normal:1.5")
    t.recurrent_init_apply.click()
    t.forget_bias.setText("3")
    t.forget_bias_apply.click()
    qtbot.waitUntil(lambda: [e.kind for e in window.mirror.events][1:] == ["recurrent_init", "forget_bias"], timeout=WAIT_MS)
    got: list = []
    window.worker.submit(recurrent_facts, got.append, got.append, on_trainer=True)
    qtbot.waitUntil(lambda: bool(got), timeout=WAIT_MS)
    facts = got[0]
    assert [e[2] for e in facts["events"]][1:] == ["normal:1.5", "3.0"]
    assert facts["forget_bias"] == [3.0] * rnn_config.width
    # the readouts the window shows are the live W_hh's (numpy on the engine's weights)
    qtbot.waitUntil(lambda: bool(readouts) and readouts[-1].spectral_radius == pytest.approx(facts["spectral_radius"], rel=1e-9), timeout=WAIT_MS)
    assert f"W_hh spectral radius {facts['spectral_radius']:.3g}" in t.readouts.text()
    assert "clipped steps 0%" in t.readouts.text()
    # a bad scheme is refused in the panel, nothing sent
    t.recurrent_init.setText("normal:-1")
    t.recurrent_init_apply.click()
    assert t.error_label.isVisible() and "normal:-1" in t.error_label.text()


def test_the_profile_over_time_says_in_words_when_the_rnn_theory_does_not_apply(qtbot):
    import dataclasses

    from gradsim.teaching.presets import load_preset
    from gradsim.train.trainer import Trainer
    from ui.plots.depth_profile import DepthProfile

    def profile_of(cfg):
        t = Trainer(cfg)
        t.step()
        p = DepthProfile()
        qtbot.addWidget(p)
        p.set_metric("act_grad_norm")
        p.refresh(t.session)
        return p

    inside = profile_of(RunConfig(model="rnn", dataset="adding", seq_len=20, depth=1, width=64, steps=1, recurrent_init="normal:1"))
    assert inside.prediction is not None and np.isfinite(inside.prediction).any() and "no theory line" not in inside.note.text()
    outside = profile_of(dataclasses.replace(load_preset("irnn").config, steps=1))
    assert outside.prediction is None and outside.domain is not None and not outside.domain.in_domain
    assert "identity" in outside.note.text() and "no theory line" in outside.note.text()


def test_long_sequences_get_few_round_time_ticks_that_fit_the_profile(qtbot):
    from ui.plots.depth_profile import DepthProfile
    from ui.plots.labels import unit_ticks

    store = _recurrent_store(T=200)
    pos = [int(p) for p, _ in unit_ticks(store, 200)]
    assert pos[0] == 1 and pos[-1] == 200 and len(pos) <= 13
    inner = pos[1:-1]
    step = inner[0]
    assert inner == list(range(step, step * (len(inner) + 1), step)) and str(step)[0] in "125" and set(str(step)[1:]) <= {"0"}
    assert min(np.diff(pos)) > step / 2  # no two labels closer than half a step
    p = DepthProfile()
    qtbot.addWidget(p)
    p.resize(220, 300)
    p.set_metric("act_grad_norm")
    p.refresh(store)
    names = [name for _, name in p._ticks]
    assert 3 <= len(names) <= max(3, int(p.plot.getViewBox().width() // 55)) + 2 and names[0] == "t 1" and names[-1] == "t 200"
