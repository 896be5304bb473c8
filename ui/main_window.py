"""The main window: composes docks, menus, actions and the status bar around the live plots.

The window holds no run logic. The run (state, mirror session, generation,
worker) lives in ``RunController`` (``ui/run_controller.py``); redraw pacing
in ``ui/redraw.py``; settings in ``ui/settings.py``; export dialogs in
``ui/session_export.py``; the status bar in ``ui/status_bar.py``; menus and
the toolbar in ``ui/menus.py``; opening a saved session (File > Open, drag and
drop) in ``ui/session_viewer.py``; fork and compare in ``ui/fork_controls.py``;
open error dialogs in ``ui/panels/error_dialog.py``. The window builds them,
connects the views to the run's signals, and turns user actions (menu,
toolbar, builder) into calls on the controller.
"""
from __future__ import annotations

import logging
from typing import Optional

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from gradsim import __version__
from gradsim.config import RunConfig
from gradsim.session.store import Session
from gradsim.teaching.presets import Preset

from . import menus
from . import settings as st
from .about import app_icon
from .panels.builder import BuilderPanel
from .panels.diagnosis import DiagnosisController
from .panels.error_dialog import ErrorDialog, OpenErrorDialogs
from .panels.event_log import EventLog
from .panels.toggles import TogglesPanel
from .pace_controls import PaceControls
from .plots.panel import PlotPanel
from .redraw import DEFAULT_REDRAW_MODE, REDRAW_MODES, RedrawPacer
from .run_controller import RunController, RunState
from .session_export import SessionExporter
from .fork_controls import ForkControls
from .learned_view import LearnedController
from .follow import FollowController
from .session_viewer import SessionViewer
from .presentation import PresentationMode
from .scroll import scrolled
from .status_bar import RunStatusBar
from .teaching import TeachingController
from .unsaved import UnsavedGuard
from .autosave import AutoSaver
from .history import HistoryScrubber
from .exercise_pace import ExercisePace
from .welcome import WelcomeController

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
        self.errors = OpenErrorDialogs(self)
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
        self.toggles_dock = self.add_dock("Live toggles", "togglesDock", scrolled(self.toggles), Qt.DockWidgetArea.LeftDockWidgetArea)
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

        self.viewer = SessionViewer(self, host=self)
        #: Speed, pause at step N, pause on divergence (enforced in the engine; ui/pace_controls.py).
        self.pace = PaceControls(self, self.run, self.status)
        #: Step back through the recorded history while paused (ui/history.py).
        self.history = HistoryScrubber(self, self.run, self.status, lambda: self.refresh_plots_now())
        self.fork = ForkControls(self, host=self)
        self.learned = LearnedController(self, host=self)
        #: File > Follow running session (a gradsim.watch folder that grows; ui/follow.py).
        self.follow = FollowController(self, host=self)
        # Exercise panel and Jacobian spectrum: docks built on first use (View and Exercises menus).
        self.teaching = TeachingController(self, host=self)
        #: Asks Save / Discard / Cancel before unsaved work is replaced (ui/unsaved.py).
        self.guard = UnsavedGuard(self, self.run, self.exporter, self.teaching)
        #: An open exercise's "change it during the run" pauses the run at that step (ui/exercise_pace.py).
        self.exercise_pace = ExercisePace(self, self.run, self.pace, self.status, self.teaching.active_exercise)
        self._close_confirmed = False
        #: A copy of the live run every few seconds, offered back after a crash (ui/autosave.py).
        self.autosave = AutoSaver(self, self.run)
        self._keep_autosave = False
        if persist:
            self.first_painted.connect(self._offer_restore)
        #: Every action, the View menu and the run toolbar (ui/menus.py).
        self.window_actions = menus.make_window_actions(self)
        #: View > Diagnosis: what gradsim diagnose says about the session on screen (ui/panels/diagnosis.py).
        self.diagnosis = DiagnosisController(self)
        self._connect_views()
        self.set_redraw_mode(DEFAULT_REDRAW_MODE)
        self.teaching.add_menu(self.menuBar())
        #: View > Presentation mode (F11) and the first-start welcome with its lessons (ui/presentation.py, ui/welcome.py).
        self.presentation = PresentationMode(self)
        self.presentation.add_to_menu(self.window_actions.view_menu)
        self.welcome = WelcomeController(self)
        self.installEventFilter(self)  # until the first paint (see eventFilter)

        # A fixed minimum keeps the layout from re-setting it whenever a panel's content
        # changes (that churns the window manager, and offscreen Qt warns about it).
        self.setMinimumSize(960, 600)
        self.resize(st.default_size(self))
        self.resizeDocks([self.builder_dock], [310], Qt.Orientation.Horizontal)
        self.resizeDocks([self.builder_dock, self.event_dock], [700, 150], Qt.Orientation.Vertical)
        if persist:
            self._restore_settings()
        self._on_state_changed(self.run.state)
        config = self.builder.config()
        if config is not None:  # the builder's first request came before the connection
            self.worker.request_preview(config)

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
        acts: Optional[menus.WindowActions] = getattr(self, "window_actions", None)  # None while the window is built
        if listed and acts is not None:
            acts.list_in_view_menu(dock)
        self.restoreDockWidget(dock)  # a dock built after the layout was restored takes its saved place
        return dock

    def _connect_views(self) -> None:
        """Views follow the run model; user input goes to it."""
        run = self.run
        run.state_changed.connect(self._on_state_changed)
        run.run_started.connect(self._on_run_started)
        run.run_reset.connect(self._on_run_reset)
        run.session_opened.connect(self._on_session_opened)
        run.run_restored.connect(self._on_run_restored)
        run.events_arrived.connect(self._on_events_arrived)
        run.command_refused.connect(self._on_command_refused)
        run.run_failed.connect(self._on_run_failed)
        self.toggles.command_requested.connect(run.send_command)
        run.readouts_changed.connect(self.toggles.show_readouts)
        self.builder.validity_changed.connect(self.window_actions.run_actions.on_validity_changed)
        self.builder.preview_wanted.connect(self.worker.request_preview)
        self.builder.preset_applied.connect(self._on_preset_applied)
        self.worker.preview_ready.connect(self.builder.set_preview)
        self.worker.engine_notice.connect(self._on_engine_notice)

    def show_metric(self, metric: str) -> None:
        """Open the heatmap, depth profile and curves on ``metric`` (an exercise's or a preset's view)."""
        self.plots.set_metric(metric)

    @Slot(object)
    def _on_preset_applied(self, preset: Preset) -> None:
        """Open the plots on the metric that shows the preset's story (its ``view``)."""
        if preset.view_metric:
            self.plots.set_metric(preset.view_metric)

    # ================================================================ settings
    def _restore_settings(self) -> None:
        r = st.restore_window(self)
        # The saved layout holds the saved-session toolbar as it was at quit; no session is open
        # at start, so an empty bar would come back (--open shows it again once loaded).
        self.viewer.bar.setVisible(False)
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
        """Start a new run from the builder's config (and the preset's scheduled events).

        A finished run that was not exported is not replaced without asking (ui/unsaved.py).
        """
        config = self.builder.config()
        if config is None:
            self.status.showMessage("Fix the highlighted value first: " + self.builder.error(), 10000)
            return False
        if self.run.live_parts() is not None and not self.guard.confirm(
                "Starting a new run", lambda: self.start_run(paused)):
            return False
        self.pace.send()  # before the run: an engine started after a crash knows no pace yet
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
        """Discard the run and its plots (after asking, if it was not exported); the next Run starts from fresh weights."""
        if self.guard.confirm("Reset", self.run.reset):
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
        self.window_actions.export.setEnabled(state.has_run)
        self.plots.set_growing(state == RunState.RUNNING)

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
        self.viewer.sync_builder(session)  # a watched session has no RunConfig: the builder says what it is
        self.builder_dock.raise_()

    @Slot(object)
    def _on_run_restored(self, config: Optional[RunConfig]) -> None:
        """A saved session was closed: the run it was opened over is drawn again, as it was."""
        self.plots.reset()
        self.event_log.clear()
        mirror = self.run.mirror
        if mirror is not None:
            self.event_log.add_events(list(mirror.events))
        if config is not None:
            self.toggles.sync_config(config)
            for ev in mirror.events if mirror is not None else ():
                self.toggles.sync_event(ev)
        self.toggles_dock.raise_()
        self.refresh_plots_now()

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

    def _refresh_plots(self, mirror: Session, force: bool = False) -> bool:
        """The pacer's redraw: the run's mirror, and branch B when the run is forked."""
        shown, compare = self.history.apply(mirror, self.run.branch_mirror)
        return self.plots.refresh(shown, force, compare=compare)

    @Slot(str)
    def _on_command_refused(self, message: str) -> None:
        self.event_log.add_message("refused", message)
        self.toggles.show_error(message)
        self.status.showMessage(message, 10000)

    @Slot(str)
    def _on_engine_notice(self, message: str) -> None:
        """Where training runs changed (the in-process fallback): the event log and status bar say so."""
        self.event_log.add_message("engine", message, error=False)
        self.status.showMessage(message, 15000)

    @Slot(str)
    def _on_run_failed(self, message: str) -> None:
        first = message.splitlines()[0] if message else "error"
        self.event_log.add_message("error", first)
        self.show_error("Training stopped", f"{first}\n\nThe training run stopped. The data recorded so far is kept "
                        "and can be exported; press Run to start a new run.", message)

    # ================================================================ saved sessions (ui/session_viewer.py)
    def open_session(self, path: str) -> None:
        """Open an exported session folder or .zip (in the background); see ui/session_viewer.py."""
        self.viewer.open_path(path)

    # A session folder or .zip dropped on the window opens it.
    def dragEnterEvent(self, event) -> None:  # Qt API
        self.viewer.drag_enter(event)

    def dropEvent(self, event) -> None:  # Qt API
        self.viewer.drop(event)

    # ================================================================ dialogs
    def show_error(self, title: str, text: str, details: str = "") -> ErrorDialog:
        """A non-blocking error dialog (never a nested event loop: headless runs must not hang)."""
        return self.errors.show(title, text, details)

    @property
    def dialogs(self) -> list[ErrorDialog]:
        """The error dialogs still open."""
        return self.errors.dialogs

    @property
    def last_error(self) -> str:
        """The last error shown ("title: text"; ``--self-test`` reports it)."""
        return self.errors.last_error

    @last_error.setter
    def last_error(self, text: str) -> None:
        self.errors.last_error = text

    def show_replications(self):
        """Help > Replications... (one dialog, kept); its runs open as sessions (File > Open session)."""
        from .panels.replications import show_replications  # matplotlib figures: imported on first use

        return show_replications(self, self.worker, self.open_session)

    # ================================================================ life cycle
    def showEvent(self, event) -> None:  # Qt API
        super().showEvent(event)
        # Start the worker once the window is up, so torch's import never delays the first paint.
        QTimer.singleShot(150, self.run.warm_up)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt API
        # Installed on this window until its first paint only: a Python paintEvent override
        # would cost the interpreter lock on every repaint for the whole session.
        if watched is self and event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            self.removeEventFilter(self)
            self.first_painted.emit()
            QTimer.singleShot(0, self.plots.ensure_built)
        return False

    @Slot()
    def _offer_restore(self) -> None:
        QTimer.singleShot(0, lambda: self.autosave.offer_restore(self.open_session))

    def close_now(self) -> None:
        """Close without asking about unsaved work (a terminal's Ctrl+C or SIGTERM); the crash copy
        of the run is kept, so the next start offers it back."""
        self._close_confirmed = True
        self._keep_autosave = self._keep_autosave or self.isVisible()
        self.close()

    def _close_after_save(self) -> None:
        self._close_confirmed = True
        QTimer.singleShot(0, self.close)

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt API
        if not self._close_confirmed and not self.guard.confirm("Quitting", self._close_after_save):
            event.ignore()  # cancelled, or saving first (the window closes once it is written)
            return
        self._close_confirmed = True
        if not self._keep_autosave:
            self.autosave.remove()  # a clean quit: nothing to restore next time
        self.pacer.stop()
        self.viewer.close()
        self.follow.close()
        try:
            if self.persist:
                self.save_settings()
        except Exception:  # never block closing on settings, but say why they were not saved
            log.exception("the settings could not be saved at exit")
        self.stop_worker()
        self.errors.close_all()
        super().closeEvent(event)

    def stop_worker(self) -> bool:
        """Stop the training thread (requestInterruption + wait, never terminate)."""
        return self.run.shutdown(timeout_ms=10000)

