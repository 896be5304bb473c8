"""The mouse wheel over the builder scrolls the form; it changes a spin box or a combo box only
once the user has clicked or tabbed into it (a width of 64 never silently becomes 56)."""
from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QComboBox, QSpinBox


def _wheel(widget, notches: int) -> bool:
    """Turn the wheel over ``widget``; True when the widget took the event (else Qt hands a
    real wheel event on to the parents: the scroll area scrolls)."""
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def test_wheel_over_unfocused_fields_changes_nothing_and_scrolls_the_form(window, qtbot):
    b = window.builder
    window.resize(1280, 720)
    qtbot.wait(10)
    width_box, activation, preset = b._fields["width"], b._fields["activation"], b.preset
    assert isinstance(width_box, QSpinBox) and isinstance(activation, QComboBox)
    before = (width_box.value(), activation.currentIndex(), preset.currentIndex(), b.config())
    window.activateWindow()
    b.scroll_area.setFocus()
    for w in (width_box, activation, preset):
        assert not w.hasFocus() and w.focusPolicy() == Qt.FocusPolicy.StrongFocus
        assert not _wheel(w, -2)  # left to the scroll area
    assert (width_box.value(), activation.currentIndex(), preset.currentIndex(), b.config()) == before


def test_wheel_over_a_focused_spin_box_still_steps_it(window, qtbot):
    width_box = window.builder._fields["width"]
    window.activateWindow()
    width_box.setFocus()
    qtbot.waitUntil(width_box.hasFocus, timeout=5000)
    value = width_box.value()
    assert _wheel(width_box, 1)
    assert width_box.value() == value + width_box.singleStep()
