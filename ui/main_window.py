"""The main window: composes docks, menus, actions and the status bar around the live plots.

The window holds no run logic. The run (state, mirror session, generation,
worker) lives in ``RunController`` (``ui/run_controller.py``); redraw pacing
in ``ui/redraw.py``; settings in ``ui/settings.py``; export dialogs in
``ui/session_export.py``; the status bar in ``ui/status_bar.py``. The window
builds them, connects the views to the run's signals, and turns user actions
(menu, toolbar, builder) into calls on the controller.
"""
from __future__ import annotations

import logging
from typing import Optional

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication
from PySide6.QtWidgets import QDockWidget, QMainWindow, QStyle, QToolBar, QWidget

from gradsim import __version__
from gradsim.config import RunConfig
from gradsim.session import Session

from . import settings as st
from .about import app_icon, open_log_folder, show_about
from .actions import RunActions, make_action
from .logs import log_dir
from .panels.builder import BuilderPanel
from .panels.error_dialog import ErrorDialog
from .panels.event_log import EventLog
from .panels.toggles import TogglesPanel
from .plots.panel import PlotPanel
from .redraw import DEFAULT_REDRAW_MODE, REDRAW_MODES, RedrawPacer, add_redraw_menu
from .run_controller import RunController, RunState
from .session_export import SessionExporter
from .fork_controls import ForkControls
from .learned_view import LearnedController
from .session_viewer import SessionViewer
from .status_bar import RunStatusBar
from .teaching import TeachingController

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """GradSim's window. Public methods are what menus, tests and ``--self-test`` drive."""

    #: The first paint of the window happened.
    first_painted = Signal()

    def __init__(self, parent: Optional[QWidget] = None, persist: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("GradSimMainWindow")
        #: Whether window state and the last config are read from and saved to QSettings.
        self.persist = persist
        self.setWindowTitle(f"GradSim {__version__} — vanishing & exploding gradients, live")
        self.setWindowIcon(app_icon())
        self.last_error = ""
        self.dialogs: list[ErrorDialog] = []
        self._painted = False

        self.run = RunController(self)
        self.worker = self.run.worker

        self.plots = PlotPanel(build_now=False)  # built just after the first paint (start-up time)
        self.setCentralWidget(self.plots)
        self.builder = BuilderPanel()
        self.toggles = TogglesPanel()
        self.event_log = EventLog()
        self.builder.setMinimumWidth(250)
        self.builder_dock = self.add_dock("Network builder", "builderDock", self.builder, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.toggles_dock = self.add_dock("Live toggles", "togglesDock", self.toggles, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.event_dock = self.add_dock("Event log", "eventLogDock", self.event_log, Qt.DockWidgetArea.LeftDockWidgetArea)
        # Builder and toggles share a column as tabs: the builder is locked during a run and
        # the toggles are dead outside one, so the window raises the one that matters.
        self.splitDockWidget(self.builder_dock, self.event_dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.builder_dock, self.toggles_dock)
        self.builder_dock.raise_()

        self.status = RunStatusBar(self.run, self)
        self.setStatusBar(self.status)
        self.pacer = RedrawPacer(self.run, self._refresh_plots, self.isVisible, self)
        self.exporter = SessionExporter(
            self.run, self, self.status, self.show_error,
            lambda kind, text: self.event_log.add_message(kind, text, error=False), st.default_export_dir(),
        )

        self.viewer = SessionViewer(self)
        self.fork = ForkControls(self)
        self.learned = LearnedController(self)
        # Exercise panel and Jacobian spectrum: docks built on first use (View and Exercises menus).
        self.teaching = TeachingController(self)
        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self._connect_views()
        self.set_redraw_mode(DEFAULT_REDRAW_MODE)
        self.teaching.add_menu(self.menuBar())
        self.installEventFilter(self)  # until the first paint (see eventFilter)

        # A fixed minimum keeps the layout from re-setting it whenever a panel's content
        # changes (that churns the window manager, and offscreen Qt warns about it).
        self.setAcceptDrops(True)  # a session folder or .zip dropped on the window opens it
        self.setMinimumSize(960, 600)
        self.resize(_default_size(self))
        self.resizeDocks([self.builder_dock], [310], Qt.Orientation.Horizontal)
        self.resizeDocks([self.builder_dock, self.event_dock], [620, 260], Qt.Orientation.Vertical)
        if persist:
            self._restore_settings()
        self._on_state_changed(self.run.state)
        if self.builder.config() is not None:  # the builder's first request came before the connection
            self.worker.request_preview(self.builder.config())

    # ================================================================ composition
    def add_dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea, listed: bool = True) -> QDockWidget:
        """A movable, floatable, closable dock; its toggle is listed in the View menu once that exists
        (``listed=False``: the caller lists its own action, e.g. for a dock built on demand)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        if listed and hasattr(self, "view_menu"):
            self._list_in_view_menu(dock)
        self.restoreDockWidget(dock)  # a dock built after the layout was restored takes its saved place
        return dock

    def _list_in_view_menu(self, dock: QDockWidget) -> None:
        a = dock.toggleViewAction()
        a.setToolTip(f"Show or hide the {dock.windowTitle().lower()} panel.")
        self.view_menu.insertAction(self._view_menu_end, a)

    def _make_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.run_actions = RunActions(self, self.run, self.builder.is_valid, self.toggle_run, self.step_once, self.reset_run)
        self.run_action, self.step_action, self.reset_action = self.run_actions.actions()
        self.export_action = make_action(self, "&Export session…", "export", self.exporter.ask_and_export, "Ctrl+E", sp.SP_DialogSaveButton)
        self.save_png_action = make_action(self, "Save plots as &PNG…", "save_png", self._on_save_png, None, sp.SP_FileIcon)
        self.quit_action = make_action(self, "&Quit", "quit", self.close, "Ctrl+Q")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.log_action = QAction("Open &log folder", self)
        self.log_action.setToolTip("Open the folder of GradSim's log file (attach it to a bug report).")
        self.log_action.triggered.connect(self.open_log_folder)
        self.about_action = QAction("&About GradSim", self)
        self.about_action.triggered.connect(self._on_about)
        self.replications_action = QAction("&Replications…", self)
        self.replications_action.setToolTip("Re-run a classic paper's experiment (He 2015, Glorot 2010, ...) and see its figure and verdict.")
        self.replications_action.triggered.connect(self.show_replications)

    def _make_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addAction(self.viewer.open_action)
        file_menu.addSeparator()
        file_menu.addActions([self.export_action, self.save_png_action])
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        run_menu = mb.addMenu("&Run")
        run_menu.addActions([self.run_action, self.step_action, self.reset_action])
        run_menu.addSeparator()
        run_menu.addAction(self.fork.fork_action)
        self.view_menu = mb.addMenu("&View")
        self.view_menu.addActions([self.teaching.exercise_action, self.teaching.jacobian_action, self.learned.action])
        self.view_menu.addSeparator()
        self.redraw_actions = add_redraw_menu(self.view_menu, self.pacer)
        self._view_menu_end = self.view_menu.actions()[-1]  # dock toggles are listed above it
        for dock in (self.builder_dock, self.toggles_dock, self.event_dock):
            self._list_in_view_menu(dock)
        self.view_menu.addSeparator()
        help_menu = mb.addMenu("&Help")
        help_menu.addAction(self.replications_action)
        help_menu.addSeparator()
        help_menu.addActions([self.log_action, self.about_action])

    def _make_toolbar(self) -> None:
        tb = QToolBar("Run controls", self)
        tb.setObjectName("runToolBar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addActions([self.run_action, self.step_action, self.reset_action, self.fork.fork_action])
        tb.addSeparator()
        tb.addActions([self.viewer.open_action, self.export_action, self.save_png_action])
        tb.addSeparator()
        tb.addAction(self.learned.action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb
        self.view_menu.addAction(tb.toggleViewAction())

    def _connect_views(self) -> None:
        """Views follow the run model; user input goes to it."""
        run = self.run
        run.state_changed.connect(self._on_state_changed)
        run.run_started.connect(self._on_run_started)
        run.run_reset.connect(self._on_run_reset)
        run.session_opened.connect(self._on_session_opened)
        run.events_arrived.connect(self._on_events_arrived)
        run.branch_events_arrived.connect(self._on_branch_events_arrived)
        run.command_refused.connect(self._on_command_refused)
        run.run_failed.connect(self._on_run_failed)
        self.toggles.command_requested.connect(run.send_command)
        self.builder.validity_changed.connect(self.run_actions.on_validity_changed)
        self.builder.preview_wanted.connect(self.worker.request_preview)
        self.worker.preview_ready.connect(self.builder.set_preview)

    # ================================================================ settings
    def _restore_settings(self) -> None:
        r = st.restore_window(self)
        self.builder.set_config(r.config)
        if r.config_ok:
            self.builder.set_schedule(r.schedule)
            self.builder.restore_preset(r.preset)
        self.exporter.export_dir = r.export_dir or self.exporter.export_dir
        self.set_redraw_mode(r.redraw_mode if r.redraw_mode in REDRAW_MODES else DEFAULT_REDRAW_MODE)
        if r.notes:
            self.status.showMessage(" ".join(r.notes), 15000)

    def save_settings(self) -> None:
        st.save_window(self, self.builder.config() or self.run.config, self.builder.schedule(), self.builder.preset_name(),
                       self.exporter.export_dir, self.pacer.mode.key)

    @property
    def export_dir(self) -> str:
        """The folder file dialogs open in (the last one used for an export)."""
        return self.exporter.export_dir

    # ================================================================ the run (views of RunController)
    @property
    def state(self) -> RunState:
        return self.run.state

    @property
    def mirror(self) -> Optional[Session]:
        return self.run.mirror

    def start_run(self, paused: bool = False) -> bool:
        """Start a new run from the builder's config (and the preset's scheduled events)."""
        config = self.builder.config()
        if config is None:
            self.status.showMessage("Fix the highlighted value first: " + self.builder.error(), 10000)
            return False
        if self.persist:  # remember the config now, not only at a clean exit
            st.save_builder(st.settings(), config, self.builder.schedule(), self.builder.preset_name())
        self.run.start(config, self.builder.schedule(), self.builder.run_label(), paused=paused)
        return True

    @Slot()
    def toggle_run(self) -> None:
        """Run/Pause: pause a running run, resume a paused one, or start a new one."""
        if not self.run.toggle_pause():
            self.start_run()

    @Slot()
    def step_once(self) -> None:
        """One optimizer step, then paused (a new run is started paused if none is active)."""
        if not self.run.live and not self.start_run(paused=True):
            return
        self.run.step(1)

    @Slot()
    def reset_run(self) -> None:
        """Discard the run and its plots; the next Run starts from fresh weights."""
        self.run.reset()

    def set_redraw_mode(self, key: str) -> None:
        """Choose how often plots redraw while training (see ui/redraw.py); the menu follows."""
        self.pacer.set_mode(key)

    def refresh_plots_now(self) -> None:
        """Redraw at once (headless screenshots, tests)."""
        self.pacer.refresh_now()

    @Slot(object)
    def _on_state_changed(self, state: RunState) -> None:
        self.toggles.set_live(state.live)
        self.builder.set_locked(state.live)
        self.export_action.setEnabled(state.has_run)

    @Slot(object)
    def _on_run_started(self, config: RunConfig) -> None:
        self.plots.reset()
        self.event_log.clear()
        self.toggles.sync_config(config)
        self.toggles_dock.raise_()

    @Slot(object)
    def _on_session_opened(self, session: Session) -> None:
        self.plots.reset()
        self.event_log.clear()
        self.event_log.add_events(list(session.events))
        if self.run.config is not None:
            self.toggles.sync_config(self.run.config)
            # The builder shows what the opened run was (and what Re-run will train).
            from .session_viewer import SessionOpenError, session_schedule

            self.builder.set_config(self.run.config)
            try:
                self.builder.set_schedule(session_schedule(session))
            except SessionOpenError as exc:
                self.status.showMessage(str(exc), 10000)
        self.builder_dock.raise_()

    def open_session(self, path: str) -> None:
        """Open an exported session folder or .zip (in the background); see ui/session_viewer.py."""
        self.viewer.open_path(path)

    # ---------------------------------------------------------------- drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if _dropped_path(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        path = _dropped_path(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_session(path)

    @Slot()
    def _on_run_reset(self) -> None:
        self.plots.reset()
        self.event_log.clear()
        self.builder_dock.raise_()

    @Slot(list)
    def _on_events_arrived(self, events: list) -> None:
        self.event_log.add_events(events)
        if self.run.forked and 0 not in self.run.command_targets:
            return  # the toggles show the branch they change (B)
        for ev in events:
            self.toggles.sync_event(ev)

    @Slot(list)
    def _on_branch_events_arrived(self, events: list) -> None:
        """Branch B's own changes (its copied history is already listed as A's)."""
        step = self.fork.fork_step if self.fork.fork_step is not None else self.run.branch_mirror.steps_run
        for ev in events:
            if ev.step >= step and ev.kind != "start":
                self.event_log.add_message(f"B: {ev.kind}", ev.value, step=ev.step, error=False)
                if 0 not in self.run.command_targets:
                    self.toggles.sync_event(ev)  # the toggles show the branch they change

    def _refresh_plots(self, mirror: Session, force: bool = False) -> bool:
        """The pacer's redraw: the run's mirror, and branch B when the run is forked."""
        return self.plots.refresh(mirror, force, compare=self.run.branch_mirror)

    @Slot(str)
    def _on_command_refused(self, message: str) -> None:
        self.event_log.add_message("refused", message)
        self.toggles.show_error(message)
        self.status.showMessage(message, 10000)

    @Slot(str)
    def _on_run_failed(self, message: str) -> None:
        first = message.splitlines()[0] if message else "error"
        self.event_log.add_message("error", first)
        self.show_error("Training stopped", f"{first}\n\nThe training run stopped. The data recorded so far is kept "
                        "and can be exported; press Run to start a new run.", message)

    @Slot()
    def _on_save_png(self) -> None:
        def save(path: str) -> Optional[bool]:
            self.refresh_plots_now()
            return self.plots.save_png(path)

        self.exporter.ask_and_save_png(save)

    # ================================================================ dialogs
    def show_error(self, title: str, text: str, details: str = "") -> ErrorDialog:
        """A non-blocking error dialog (never a nested event loop: headless runs must not hang)."""
        self.last_error = f"{title}: {text}"
        box = ErrorDialog(title, text, details, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(self._on_dialog_finished)
        self.dialogs.append(box)
        box.open()
        return box

    @Slot(int)
    def _on_dialog_finished(self, _: int) -> None:
        box = self.sender()
        self.dialogs = [d for d in self.dialogs if d is not box]

    @Slot()
    def open_log_folder(self) -> None:
        open_log_folder(self.status)

    @Slot()
    def _on_about(self) -> None:
        show_about(self, str(log_dir()))

    def show_replications(self):
        """Help > Replications...: one dialog, kept (and its last result) for the session.
        Its runs open as sessions when the window can open one (File > Open session)."""
        from .panels.replications import ReplicationsDialog

        dlg = getattr(self, "_replications", None)
        if dlg is None:
            dlg = self._replications = ReplicationsDialog(self.worker, self, getattr(self, "open_session", None))
        if dlg.isVisible():  # already open: bring it forward
            dlg.raise_()
            dlg.activateWindow()
        else:
            dlg.show()
        return dlg

    # ================================================================ life cycle
    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        # Start the worker once the window is up, so torch's import never delays the first paint.
        QTimer.singleShot(150, self.run.warm_up)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        # Installed on this window until its first paint only: a Python paintEvent override
        # would cost the interpreter lock on every repaint for the whole session.
        if watched is self and event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            self.removeEventFilter(self)
            self.first_painted.emit()
            QTimer.singleShot(0, self.plots.ensure_built)
        return False

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self.pacer.stop()
        self.viewer.close()
        try:
            if self.persist:
                self.save_settings()
        except Exception:  # noqa: BLE001 - never block closing on settings, but say why they were not saved
            log.exception("the settings could not be saved at exit")
        self.stop_worker()
        for box in list(self.dialogs):
            box.close()
        super().closeEvent(event)

    def stop_worker(self) -> bool:
        """Stop the training thread (requestInterruption + wait, never terminate)."""
        return self.run.shutdown(timeout_ms=10000)


def _default_size(window: QWidget) -> QSize:
    """1500x940, shrunk to the screen's free area: on a 1280x720 lab laptop the window
    must fit on screen, not hang off its edge. The offscreen platform (tests, headless
    screenshots) has no real screen, so it keeps the full size."""
    size = QSize(1500, 940)
    screen = window.screen()
    if screen is None or QGuiApplication.platformName() == "offscreen":
        return size
    return size.boundedTo(screen.availableGeometry().size())


def _dropped_path(event) -> Optional[str]:
    """The one local file or folder a drag carries, or None (several, or not local)."""
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return None
    urls = [u for u in mime.urls() if u.isLocalFile()]
    if len(urls) != 1:
        return None
    return urls[0].toLocalFile()
