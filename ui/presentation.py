"""Presentation mode for lectures: large fonts, thick lines, high contrast, full screen (F11).

Why a mode and not settings: a lecturer switches in front of a class and back
after it; everything changed here is remembered and put back exactly as it
was when the mode is switched off (fonts, pens, palette, window state).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction, QColor, QFont, QKeySequence, QPalette, QPen
from PySide6.QtWidgets import QApplication

if TYPE_CHECKING:  # pyqtgraph loads after the first paint (ui/plots), not with the window's module
    import pyqtgraph as pg

#: How much larger the fonts get.
FONT_SCALE = 1.6
#: Curves are drawn at least this many pixels wide (or their own width times LINE_SCALE).
MIN_LINE_PX = 3.0
LINE_SCALE = 2.5


def _high_contrast() -> QPalette:
    """White on black, yellow highlights: readable from the back of a lecture hall."""
    p = QPalette()
    black, white = QColor(0, 0, 0), QColor(255, 255, 255)
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Button, QPalette.ColorRole.ToolTipBase):
        p.setColor(role, black)
    # Entry fields, check boxes and radio buttons fill with Base: a dark grey, not black, because
    # the style outlines them in the window colour darkened, which on black is black (the boxes
    # of "Batch norm on" were invisible). White text on it is still high contrast. (A style
    # sheet for the indicators instead reset every widget's enlarged font.)
    for role in (QPalette.ColorRole.Base, QPalette.ColorRole.AlternateBase):
        p.setColor(role, QColor(64, 64, 64))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.ToolTipText, QPalette.ColorRole.BrightText):
        p.setColor(role, white)
    p.setColor(QPalette.ColorRole.Highlight, QColor(255, 214, 0))
    p.setColor(QPalette.ColorRole.HighlightedText, black)
    return p


class PresentationMode(QObject):
    """View > Presentation mode (F11): on and off, everything restored when off."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self._window = window
        self.on = False
        self._font: Optional[QFont] = None
        self._palette: Optional[QPalette] = None
        self._was_maximized = False
        #: item -> its own pen, for the items this mode widened (put back when off).
        self._pens: list[tuple[Any, QPen]] = []
        self._tick_fonts: list[tuple[Any, Optional[QFont]]] = []
        self.action = QAction("&Presentation mode", window, checkable=True)
        self.action.setShortcut(QKeySequence(Qt.Key.Key_F11))
        self.action.setToolTip("Large fonts, thick lines, high contrast and full screen, for a lecture (F11 again: back).")
        self.action.toggled.connect(self.set_on)
        window.addAction(self.action)  # F11 works with the menu bar hidden too

    def add_to_menu(self, menu: Any) -> None:
        menu.addSeparator()
        menu.addAction(self.action)

    @Slot(bool)
    def set_on(self, on: bool) -> None:
        """Switch the mode on (larger, thicker, high contrast, full screen) or back off."""
        if on == self.on:
            return
        self.on = on
        if self.action.isChecked() != on:
            self.action.blockSignals(True)
            self.action.setChecked(on)
            self.action.blockSignals(False)
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        w = self._window
        if on:
            self._font = QFont(app.font())
            self._palette = QPalette(app.palette())
            big = QFont(self._font)
            size = self._font.pointSizeF() if self._font.pointSizeF() > 0 else 9.0
            big.setPointSizeF(size * FONT_SCALE)
            app.setFont(big)
            app.setPalette(_high_contrast())
            self._widen_lines(big)
            self._was_maximized = w.isMaximized()
            w.showFullScreen()
        else:
            self._restore_lines()
            if self._font is not None:
                app.setFont(self._font)
            if self._palette is not None:
                app.setPalette(self._palette)
            if self._was_maximized:
                w.showMaximized()
            else:
                w.showNormal()

    def _plot_items(self) -> "list[pg.PlotItem]":
        import pyqtgraph as pg

        out: list[pg.PlotItem] = []
        for view in self._window.findChildren(pg.GraphicsView):
            scene = view.scene()
            if scene is None:
                continue
            out.extend(i for i in scene.items() if isinstance(i, pg.PlotItem))
        return list(dict.fromkeys(out))

    def _widen_lines(self, font: QFont) -> None:
        self._pens.clear()
        self._tick_fonts.clear()
        for plot in self._plot_items():
            for item in plot.getViewBox().addedItems:
                opts = getattr(item, "opts", None)
                pen = opts.get("pen") if isinstance(opts, dict) else None
                if not isinstance(pen, QPen) or pen.style() == Qt.PenStyle.NoPen:
                    continue
                self._pens.append((item, QPen(pen)))
                wide = QPen(pen)
                wide.setWidthF(max(MIN_LINE_PX, pen.widthF() * LINE_SCALE))
                self._set_pen(item, wide)
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                self._tick_fonts.append((axis, getattr(axis, "style", {}).get("tickFont")))
                axis.setTickFont(font)

    def _restore_lines(self) -> None:
        for item, pen in self._pens:
            self._set_pen(item, pen)
        for axis, font in self._tick_fonts:
            axis.setTickFont(font)
        self._pens.clear()
        self._tick_fonts.clear()

    @staticmethod
    def _set_pen(item: Any, pen: QPen) -> None:
        import pyqtgraph as pg

        if isinstance(item, (pg.PlotDataItem, pg.PlotCurveItem)):
            item.setPen(pen)
        else:  # the panel's own line items draw with opts["pen"]
            item.prepareGeometryChange()
            item.opts["pen"] = pen
            item.update()
