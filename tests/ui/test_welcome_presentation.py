"""The first-start welcome and its lessons; presentation mode changes fonts and pens and toggles back."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gradsim.metrics import LAYER_METRICS, STEP_METRICS
from gradsim.session.store import Session, StepRecord
from gradsim.teaching.presets import load_preset
from ui.presentation import FONT_SCALE, MIN_LINE_PX
from ui.welcome import KEY_WELCOME_SHOWN, LESSONS
from ui.settings import settings

#: The offscreen platform warns for any dialog shown.
pytestmark = pytest.mark.qt_log_ignore("does not support propagateSizeHints", "does not support raise")


def test_the_welcome_is_shown_once(window):
    assert window.welcome.maybe_show_first_start()
    assert window.welcome.dialog.isVisible()
    assert len(window.welcome.dialog.lesson_buttons) == 3
    window.welcome.dialog.close()
    assert settings().value(KEY_WELCOME_SHOWN, False, type=bool)
    assert not window.welcome.maybe_show_first_start()  # the next start: not again
    assert not window.welcome.dialog.isVisible()
    # Help lists it, so it can be brought back
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Help")
    assert window.welcome.action in help_menu.actions()


def test_each_lesson_loads_its_preset_metric_pause_and_guide(window, qtbot):
    assert [les.key for les in LESSONS] == ["vanishing", "exploding", "fix"]
    dialog = window.welcome.show_welcome()
    for lesson, button in zip(LESSONS, dialog.lesson_buttons):
        window.welcome.show_welcome()
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert window.builder.preset_name() == lesson.preset
        assert window.builder.config() == load_preset(lesson.preset).config
        assert window.plots.metric_name == lesson.metric == "act_grad_norm"
        assert window.pace.pause_at.value() == lesson.pause_at
        text = window.welcome.guide.toPlainText()
        assert "Look" in text and "Toggle" in text and "Live toggles" in text
        assert window.welcome.dock.isVisible() and not dialog.isVisible()
    assert LESSONS[2].pause_at > 0  # the fix lesson stops the run where the student acts


def _store() -> Session:
    store = Session(3, {"depth": 2, "steps": 30})
    for i in range(30):
        store.append(StepRecord(i, np.ones(len(STEP_METRICS)), np.full((3, len(LAYER_METRICS)), 0.5, np.float32), True))
    return store


def test_presentation_mode_enlarges_fonts_and_lines_and_toggles_back(window, qtbot):
    app = QApplication.instance()
    window.plots.ensure_built()
    window.plots.refresh(_store())
    font_before = app.font().pointSizeF()
    palette_before = app.palette().color(app.palette().ColorRole.Window).name()
    curve = window.plots.depth_profile.curve
    loss = window.plots.loss_accuracy.loss_curve
    widths_before = (curve.opts["pen"].widthF(), loss.opts["pen"].widthF())
    tick_before = window.plots.heatmap.plot.getAxis("left").style.get("tickFont")

    toggles_area = window.toggles_dock.widget()
    window.presentation.action.trigger()  # F11's action
    assert window.presentation.on and window.isFullScreen()
    # the live toggles' dock grows with the font: no "Apply" button cut off at its right edge
    qtbot.waitUntil(lambda: toggles_area.minimumWidth() >= window.toggles.minimumSizeHint().width())
    # check boxes visible on black, and the notes under the plots on the black background
    assert app.palette().color(app.palette().ColorRole.Base).lightness() > 40  # boxes not black on black
    qtbot.waitUntil(lambda: window.toggles.batchnorm.font().pointSizeF() == app.font().pointSizeF())  # the big font
    note = window.plots.depth_profile.note
    assert note.palette().color(note.backgroundRole()).name() == "#000000"
    assert abs(app.font().pointSizeF() - font_before * FONT_SCALE) < 0.01
    assert curve.opts["pen"].widthF() >= MIN_LINE_PX and loss.opts["pen"].widthF() >= MIN_LINE_PX
    assert window.plots.heatmap.plot.getAxis("left").style["tickFont"].pointSizeF() == app.font().pointSizeF()
    assert app.palette().color(app.palette().ColorRole.Window).name() == "#000000"

    window.presentation.action.trigger()
    assert not window.presentation.on and not window.isFullScreen()
    assert app.font().pointSizeF() == font_before
    assert (curve.opts["pen"].widthF(), loss.opts["pen"].widthF()) == widths_before
    assert window.plots.heatmap.plot.getAxis("left").style.get("tickFont") == tick_before
    assert app.palette().color(app.palette().ColorRole.Window).name() == palette_before


def test_presentation_mode_is_in_the_view_menu_on_f11(window):
    assert window.presentation.action in window.window_actions.view_menu.actions()
    assert window.presentation.action.shortcut().toString() == "F11"
