"""The depth profile says in words when the theory line no longer applies."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gradsim.teaching.presets import load_preset
from gradsim.train.trainer import Trainer
from ui.plots.depth_profile import DepthProfile


@pytest.fixture(scope="module")
def healthy():
    """healthy-relu-he, 501 steps: in domain at step 0, drifted by step 500."""
    return Trainer(load_preset("healthy-relu-he").config.with_changes(seed=0)).run(501)


def _shown(qtbot, session, step):
    dp = DepthProfile()
    qtbot.addWidget(dp)
    dp.set_metric("act_grad_norm")
    dp.refresh(session)
    dp.show_step(step)
    return dp


def _gain_error(session, step):
    """Independently: geometric mean over the 19 hidden transitions of measured / predicted gain."""
    row = int(np.flatnonzero(session.steps == step)[0])
    g = session.layer_metric("act_grad_norm")[row].astype(np.float64)
    p = session.layer_metric("pred_gain")[row].astype(np.float64)
    return math.exp(float(np.mean(np.log(g[:19] / g[1:20] / p[:19]))))


def test_at_step_zero_the_line_is_drawn_without_a_warning(qtbot, healthy):
    dp = _shown(qtbot, healthy, 0)
    assert dp.prediction is not None and dp.domain is not None and dp.domain.in_domain
    assert "no longer applies" not in dp.note.text()
    assert "no longer applies" not in dp.legend.text()


def test_after_training_the_overlay_says_the_theory_no_longer_applies(qtbot, healthy):
    dp = _shown(qtbot, healthy, 500)
    assert dp.prediction is not None  # the line stays, to compare with
    assert dp.domain is not None and not dp.domain.in_domain
    note = dp.note.text()
    err = _gain_error(healthy, 500)
    assert err > 1.12
    assert "theory no longer applies" in note and "drifted from the i.i.d." in note
    assert f"x{err:.3g} the predicted" in note and "width 64" in note
    assert "prediction (no longer applies)" in dp.legend.text()
    # a step between records reads the verdict of the prediction it draws
    dp.show_step(505 if healthy.steps[-1] >= 505 else 499)
    assert dp.prediction_step in (490, 500)
    assert (dp.domain is None) == (dp.prediction_step is None)
    # back at step 0: the words go
    dp.show_step(0)
    assert "no longer applies" not in dp.note.text() and dp.domain.in_domain


def test_other_metrics_carry_no_verdict(qtbot, healthy):
    dp = _shown(qtbot, healthy, 500)
    dp.set_metric("grad_norm")
    assert dp.domain is None and "no longer applies" not in dp.note.text()
