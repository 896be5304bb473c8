"""What each window helper needs from the window, as small typed protocols.

Why: the helpers (fork and compare, the learned-regions dock, the teaching
layer, the saved-session viewer) are built by ``MainWindow`` and cannot import
it (it imports them). Each takes the ``QMainWindow`` it lives in (Qt parent,
toolbars, docks, dialogs) and a host: the window's own parts it uses, listed
here and nothing more (read-only: a helper never replaces them), so the type checker sees every reach into the window
and a helper can be built in a test from a stand-in holding only these.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QWidget

if TYPE_CHECKING:
    from .panels.builder import BuilderPanel
    from .panels.error_dialog import ErrorDialog
    from .panels.event_log import EventLog
    from .panels.toggles import TogglesPanel
    from .run_controller import RunController


class StatusSink(Protocol):
    """Where a one-line message goes for a while (the window's status bar)."""

    def showMessage(self, text: str, /, timeout: Optional[int] = ...) -> None: ...


class DockHost(Protocol):
    """Adds a dock to the window (listed in the View menu unless ``listed=False``)."""

    @property
    def run(self) -> RunController: ...

    def add_dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea,
                 listed: bool = True) -> QDockWidget: ...


class ForkHost(Protocol):
    """What fork and compare uses: the run, the status bar, the event log, the toggles, a redraw."""

    @property
    def run(self) -> RunController: ...
    @property
    def status(self) -> StatusSink: ...
    @property
    def event_log(self) -> EventLog: ...
    @property
    def toggles(self) -> TogglesPanel: ...

    def refresh_plots_now(self) -> None: ...


class TeachingHost(DockHost, Protocol):
    """What the teaching layer uses: docks, the builder (an exercise's start), errors, the export folder,
    and for predictions the live toggles and the event log."""

    @property
    def toggles(self) -> TogglesPanel: ...
    @property
    def event_log(self) -> EventLog: ...

    @property
    def builder(self) -> BuilderPanel: ...
    @property
    def builder_dock(self) -> QDockWidget: ...

    def show_error(self, title: str, text: str, details: str = "") -> ErrorDialog: ...

    def show_metric(self, metric: str) -> None: ...

    @property
    def export_dir(self) -> str: ...


class ViewerHost(Protocol):
    """What the saved-session viewer uses: the run, messages, errors, a redraw, the builder (Re-run)."""

    @property
    def run(self) -> RunController: ...
    @property
    def status(self) -> StatusSink: ...
    @property
    def builder(self) -> BuilderPanel: ...

    def show_error(self, title: str, text: str, details: str = "") -> ErrorDialog: ...

    def refresh_plots_now(self) -> None: ...

    def start_run(self, paused: bool = False) -> bool: ...

    @property
    def export_dir(self) -> str: ...
