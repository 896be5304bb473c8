"""Read-outs under the plots never cut a number: at 1280x720 they drop whole parts (and say "…"),
and the full text is in the tooltip."""
from __future__ import annotations

import re

import pytest

from ui.plots.labels import MORE, ReadoutLabel, readout_variants
from ui.run_controller import RunState

NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:e[-+]?\d+)?|nan|-?inf")


def _check_whole(label: ReadoutLabel, full: str) -> None:
    """What is shown fits, is the full text or a prefix of it cut between parts, and every
    number shown is one of the full text's numbers, whole."""
    shown = label.text()
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    assert full in label.toolTip()
    if shown == full:
        return
    if shown == MORE.strip():
        return
    kept = shown[: -len(MORE)] if shown.endswith(MORE) else shown
    assert full.startswith(kept) or full.endswith(kept) or kept in full
    numbers_full = NUMBER.findall(full)
    numbers_shown = NUMBER.findall(kept)
    start = len(NUMBER.findall(full[: full.index(kept)]))  # numbers of a "step N" left out
    assert numbers_shown == numbers_full[start:start + len(numbers_shown)]


def test_variants_drop_whole_parts_only():
    text = "step 899: update_ratio linear 1 = 2e-15, linear 5 = 3.1e-12 | B linear 1 = 4e-3 (diverged)"
    v = readout_variants(text)
    assert v[0] == text
    assert v[1:] == (
        "update_ratio linear 1 = 2e-15, linear 5 = 3.1e-12 | B linear 1 = 4e-3 (diverged)",
        "step 899: update_ratio linear 1 = 2e-15, linear 5 = 3.1e-12 | B linear 1 = 4e-3 …",
        "update_ratio linear 1 = 2e-15, linear 5 = 3.1e-12 | B linear 1 = 4e-3 …",
        "step 899: update_ratio linear 1 = 2e-15, linear 5 = 3.1e-12 …",
        "update_ratio linear 1 = 2e-15, linear 5 = 3.1e-12 …",
        "step 899: update_ratio linear 1 = 2e-15 …",
        "update_ratio linear 1 = 2e-15 …",
        "…",
    )


@pytest.fixture
def window_1280(window):
    window.resize(1280, 720)
    window.refresh_plots_now()
    return window


def test_update_ratio_readout_at_1280x720_keeps_2e_15_whole(qtbot, window_1280):
    label = window_1280.plots.update_ratio.readout
    assert isinstance(label, ReadoutLabel) and 100 < label.width() < 1280
    full = ("step 899: update_ratio linear 1 = 2e-15, linear 2 = 3.142e-12, linear 3 = 1.5e-09, "
            "linear 4 = 7.25e-07, output = 0.0001234 | B linear 1 = 2.5e-15, linear 2 = 3e-12")
    label.setText(full)
    shown = label.text()
    assert shown != full  # too long for the pane at this size: it was shortened ...
    assert "linear 1 = 2e-15," in shown and "linear 2 = 3.142e-12" in shown  # ... by whole parts: values whole
    _check_whole(label, full)


def test_every_plot_readout_of_a_real_run_is_whole_at_1280x720(qtbot, window_1280):
    w = window_1280
    w.start_run()
    qtbot.waitUntil(lambda: w.state is RunState.FINISHED, timeout=60_000)
    w.refresh_plots_now()
    last = float(w.mirror.steps[-1])
    p = w.plots
    probes = [(p.layer_curves, 0, last, 0.0), (p.update_ratio, 0, last, 0.0), (p.heatmap, 0, last, 1.0),
              (p.depth_profile, 0, 1.0, 0.0), (p.loss_accuracy, 0, last, 0.5), (p.activations, 0, last, 0.5)]
    checked = 0
    for plot, i, x, y in probes:
        full = plot.readout_at(i, x, y)
        if not full:
            continue
        plot.readout.setText(full)
        _check_whole(plot.readout, full)
        checked += 1
    assert checked >= 4


def test_a_narrow_note_keeps_its_lead_and_a_narrow_legend_its_names(qtbot):
    """Under a narrow depth profile "no theory line: <why>" reads "no theory line: …", not "…";
    a legend too wide for its plot drops its parentheses ("prediction (no longer applies)")."""
    from ui.plots.labels import LegendLabel, NoteLabel

    note = NoteLabel()
    qtbot.addWidget(note)
    note.show()
    text = ("no theory line: the mean-field gain through time assumes W_hh is an i.i.d. random draw, and it was "
            "drawn as the identity (identity)")
    note.setText(text)
    note.resize(note.fontMetrics().horizontalAdvance("no theory line: …") + 8, 20)
    assert note.text() == text  # callers read the full note
    assert note._shown == "no theory line: …" and text in note.toolTip()
    note.resize(2000, 20)
    assert note._shown == text

    legend = LegendLabel()
    qtbot.addWidget(legend)
    legend.show()
    legend.set_entries([("#fff", "measured", False), ("#e69f00", "prediction (no longer applies)", True)])
    legend.resize(legend.fontMetrics().horizontalAdvance("measured prediction") + 40, 20)
    assert "prediction" in legend.text() and "no longer applies" not in legend.text()
    assert "prediction (no longer applies)" in legend.toolTip()
    legend.resize(2000, 20)
    assert "no longer applies" in legend.text()
