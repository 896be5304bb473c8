"""Help > Glossary and Help > Keyboard shortcuts: built from the app's own texts and actions."""
from __future__ import annotations

import pytest
from PySide6.QtGui import QKeySequence

from gradsim.metrics import LAYER_METRICS, STEP_METRICS
from ui.help import GlossaryDialog, ShortcutsDialog, glossary_entries, glossary_html, shortcut_rows
from ui.plots.heatmap import GradientHeatmap
from ui.plots.labels import METRIC_TIPS


def test_every_metric_the_app_records_is_in_the_glossary():
    terms = " ".join(term for _, term, _ in glossary_entries())
    for m in LAYER_METRICS:
        assert m in terms, f"{m} has no glossary entry"
    for m in STEP_METRICS:
        if m not in ("lr", "diverged", "elapsed_s"):  # self-explanatory columns
            assert m in terms, f"{m} has no glossary entry"
    texts = [text for _, _, text in glossary_entries()]
    assert METRIC_TIPS["act_grad_norm"] in texts and GradientHeatmap.TIP in texts  # the tooltips, word for word


def test_the_filter_keeps_matching_entries_only():
    entries = glossary_entries()
    page = glossary_html(entries, "DEAD")
    assert "act_dead" in page and "gradient clipping" not in page
    assert "Nothing in the glossary mentions" in glossary_html(entries, "zzz-not-a-word")


@pytest.mark.qt_log_ignore("does not support propagateSizeHints")  # offscreen platform, any dialog
def test_glossary_and_shortcuts_open_from_the_help_menu(window, qtbot):
    acts = window.window_actions
    help_menu = [m for m in window.menuBar().actions() if m.text() == "&Help"][0].menu()
    assert acts.glossary in help_menu.actions() and acts.shortcuts in help_menu.actions()
    acts.glossary.trigger()
    dlg = window.findChild(GlossaryDialog)
    assert dlg is not None and dlg.isVisible()
    dlg.filter.setText("clipping")
    assert "gradient clipping" in dlg.view.toPlainText() and "batch norm" not in dlg.view.toPlainText()
    dlg.close()
    acts.shortcuts.trigger()
    sd = window.findChild(ShortcutsDialog)
    assert sd is not None and sd.isVisible()
    quit_key = acts.quit.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    assert (quit_key, "Quit") in sd.rows and quit_key in sd.view.toPlainText()
    assert ("Ctrl+/", "Keyboard shortcuts") in sd.rows
    # every action with a key is listed, and only those
    assert len(sd.rows) == len(shortcut_rows(window.findChildren(type(acts.quit))))
    sd.close()
