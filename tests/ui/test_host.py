"""Window helpers built from a stand-in host: what ui/host.py lists is all they need of the window."""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDockWidget, QMainWindow

from ui.learned_view import LearnedController
from ui.run_controller import RunState
from ui.session_viewer import SessionViewer


class _Run(QObject):
    """The run model's signals and the state a helper reads, with no worker behind them."""

    state_changed = Signal(object)
    run_started = Signal(object)
    run_reset = Signal()
    session_opened = Signal(object)
    mirror_updated = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.mirror = None
        self.state = RunState.IDLE
        self.generation = 0
        self.viewed = []

    def view(self, session) -> None:  # a viewer that opened nothing must never call this
        self.viewed.append(session)


class _Status:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def showMessage(self, text: str, timeout: int = 0) -> None:
        self.messages.append(text)


def test_learned_controller_needs_only_the_run_and_add_dock(qtbot):
    window = QMainWindow()
    qtbot.addWidget(window)
    calls = []

    class Host:
        run = _Run()

        def add_dock(self, title, name, widget, area, listed=True) -> QDockWidget:
            calls.append((title, name, widget, area, listed))
            dock = QDockWidget(title, window)
            dock.setWidget(widget)
            window.addDockWidget(area, dock)
            return dock

    learned = LearnedController(window, Host())
    window.setMinimumSize(800, 600)  # a fixed size: offscreen Qt warns when a dock makes the layout resize the window
    window.show()
    learned.action.trigger()
    assert [c[:2] + c[3:] for c in calls] == [("What the network learns", "learnedDock", Qt.DockWidgetArea.RightDockWidgetArea, False)]
    assert calls[0][2] is learned.panel and learned.dock.isVisible()
    assert learned.requests == 0  # no run: nothing asked of a worker
    learned.action.trigger()
    learned.action.trigger()
    assert len(calls) == 1 and learned.dock.isVisible()  # the dock is built once


def test_session_viewer_reports_a_bad_path_through_its_host(qtbot, tmp_path):
    window = QMainWindow()
    qtbot.addWidget(window)
    errors = []

    class Host:
        run = _Run()
        status = _Status()
        builder = None
        export_dir = str(tmp_path)

        def show_error(self, title, text, details=""):
            errors.append((title, text))

        def refresh_plots_now(self) -> None:
            raise AssertionError("nothing opened: nothing to redraw")

        def start_run(self, paused=False) -> bool:
            raise AssertionError("nothing opened: nothing to re-run")

    host = Host()
    viewer = SessionViewer(window, host)
    bad = tmp_path / "not-a-session"
    bad.mkdir()
    with qtbot.waitSignal(viewer.open_failed, timeout=20000) as blocker:
        viewer.open_path(bad)
    assert str(bad) in blocker.args[0]
    assert host.status.messages == [f"Opening {bad}…", "Not opened: " + blocker.args[0]]
    assert [t for t, _ in errors] == ["Cannot open session"] and blocker.args[0] in errors[0][1]
    assert host.run.viewed == [] and viewer.path == ""
    viewer.close()
