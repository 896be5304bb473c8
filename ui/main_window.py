"""The main window: docks, menus, actions and the status bar around the live plots.

Why the window keeps a *mirror* Session: plots must read a store that only the
GUI thread writes. The worker's snapshots (copies of new rows) are appended to
the mirror, and a ~30 Hz QTimer redraws from it, so redraw speed never slows
training and the trainer's own session is never read from this thread. Export
asks the worker to write its full session between steps (the engine's exporter).
"""
from __future__ import annotations

import datetime as _dt
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStyle,
    QToolBar,
    QWidget,
)

from gradsim import __version__
from gradsim.commands import Command
from gradsim.config import RunConfig
from gradsim.resources import resource_path
from gradsim.session import Session

from . import settings as st
from .panels.builder import BuilderPanel
from .panels.error_dialog import ErrorDialog
from .panels.event_log import EventLog
from .panels.tips import TIPS
from .panels.toggles import TogglesPanel
from .plots.panel import PlotPanel
from .worker import Snapshot, TrainingWorker, WarmUp

#: Fastest plot redraw period (ms): ~30 Hz, independent of the training speed.
REDRAW_MS = 33


@dataclass(frozen=True)
class RedrawMode:
    """How plots share the machine with training (View > Plot updates while training).

    Python threads share one interpreter lock, and Qt painting from Python holds
    it: every millisecond the GUI thread spends drawing is a millisecond the
    training thread mostly waits. So while a run goes on, the next redraw waits
    until the GUI thread's CPU time since the last one is at most ``budget`` of
    the wall time passed (or ``max_gap_s`` passed): expensive frames are spaced
    out instead of slowing training. Paused or finished, plots redraw at full speed.
    """

    key: str
    label: str
    tip: str
    budget: float  # fraction of the GUI thread's time; 1.0 = no limit
    max_gap_s: float
    snapshot_hz: float


REDRAW_MODES: dict[str, RedrawMode] = {
    m.key: m
    for m in (
        RedrawMode("fast", "Fastest training (plots every few seconds)",
                   "Plots redraw every few seconds while training (and within half a second of each change "
                   "you make), so training runs at nearly its headless speed.",
                   0.05, 4.0, 10.0),
        RedrawMode("balanced", "Balanced (plots a few times a second)",
                   "Plots redraw a few times a second while training; training runs somewhat slower than headless.",
                   0.2, 1.0, 20.0),
        RedrawMode("smooth", "Smoothest plots (up to 30 a second)",
                   "Plots redraw as often as a third of the GUI's time allows (up to 30 a second); "
                   "on a small machine training slows down a lot.",
                   0.45, 0.5, 30.0),
    )
}
DEFAULT_REDRAW_MODE = "fast"
#: After an event (a toggle, a scheduled change, the start) the plots redraw this soon,
#: so its effect shows within a second even when frames are spaced further apart.
EVENT_FRAME_DELAY_S = 0.4
#: The status bar's numbers change at most this often while training (repaints cost GUI time).
STATUS_PERIOD_S = 0.25
#: States of the window's run.
IDLE, RUNNING, PAUSED, FINISHED, FAILED = "idle", "running", "paused", "finished", "failed"

_DIVERGED_STYLE = "QLabel { color: white; background: #d32f2f; font-weight: bold; padding: 0 6px; border-radius: 3px; }"
_STATE_STYLE = "QLabel { font-weight: bold; padding: 0 6px; }"


def app_icon() -> QIcon:
    path = resource_path("icons", "gradsim.svg")
    return QIcon(str(path)) if path.is_file() else QIcon()


class MainWindow(QMainWindow):
    """GradSim's window. Public methods are what menus, tests and ``--self-test`` drive."""

    #: The run's state changed (idle, running, paused, finished, failed).
    state_changed = Signal(str)
    #: A snapshot was merged into the mirror session (its generation).
    mirror_updated = Signal(int)
    #: The plots were redrawn from the mirror.
    plots_refreshed = Signal()
    #: The first paint of the window happened.
    first_painted = Signal()

    def __init__(self, parent: Optional[QWidget] = None, persist: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("GradSimMainWindow")
        #: Whether window state and the last config are read from and saved to QSettings.
        self.persist = persist
        self.setWindowTitle(f"GradSim {__version__} — vanishing & exploding gradients, live")
        self.setWindowIcon(app_icon())
        self.state = IDLE
        self.generation = 0
        self.mirror: Optional[Session] = None
        self.run_config: Optional[RunConfig] = None
        self.last_error = ""
        self.last_export = ""
        self.dialogs: list[ErrorDialog] = []
        self._dirty = False
        self.redraw_mode = REDRAW_MODES[DEFAULT_REDRAW_MODE]
        self.frames = 0
        #: GUI-thread CPU seconds between the last two frames (the frame and all else meanwhile).
        self.frame_cost_s = 0.0
        self._frame_wall = 0.0
        self._frame_cpu = 0.0
        self._state_style = ""
        self._status_at = 0.0
        self._event_frame_at = 0.0
        self._painted = False
        self._closing = False
        self._export_dir = str(Path.home())

        # ------------------------------------------------------------ worker
        self.worker = TrainingWorker(self)
        self.worker.snapshot.connect(self._on_snapshot)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.command_failed.connect(self._on_command_failed)
        self.worker.export_finished.connect(self._on_export_finished)
        self.worker.export_failed.connect(self._on_export_failed)
        self.worker.preview_ready.connect(self._on_preview_ready)

        # ------------------------------------------------------------ widgets
        self.plots = PlotPanel()
        self.setCentralWidget(self.plots)
        self.builder = BuilderPanel()
        self.toggles = TogglesPanel()
        self.event_log = EventLog()
        self.builder.setMinimumWidth(250)
        self.builder_dock = self._dock("Network builder", "builderDock", self.builder, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.toggles_dock = self._dock("Live toggles", "togglesDock", self.toggles, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.event_dock = self._dock("Event log", "eventLogDock", self.event_log, Qt.DockWidgetArea.LeftDockWidgetArea)
        # Builder and toggles share a column as tabs: the builder is locked during a run and
        # the toggles are dead outside one, so the window raises the one that matters.
        self.splitDockWidget(self.builder_dock, self.event_dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.builder_dock, self.toggles_dock)
        self.builder_dock.raise_()

        self.builder.validity_changed.connect(self._on_validity_changed)
        self.builder.preview_wanted.connect(self._on_preview_wanted)
        self.toggles.command_requested.connect(self._on_command_requested)
        if self.builder.config() is not None:  # the builder's first request came before this connection
            self.worker.request_preview(self.builder.config())

        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self._make_status_bar()
        self.set_redraw_mode(DEFAULT_REDRAW_MODE)
        # Exercise panel, theory overlay and Jacobian spectrum (before settings restore the docks).
        from ui.teaching import TeachingController

        self.teaching = TeachingController(self)

        self.installEventFilter(self)  # until the first paint (see eventFilter)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._on_redraw_timer)
        self._timer.start()

        # A fixed minimum keeps the layout from re-setting it whenever a panel's content
        # changes (that churns the window manager, and offscreen Qt warns about it).
        self.setMinimumSize(960, 600)
        self.resize(1500, 940)
        self.resizeDocks([self.builder_dock], [310], Qt.Orientation.Horizontal)
        self.resizeDocks([self.builder_dock, self.event_dock], [620, 260], Qt.Orientation.Vertical)
        if persist:
            self._restore_settings()
        self._set_state(IDLE)
        self._on_validity_changed(self.builder.is_valid())

    # ================================================================ layout
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, tip_key: str, slot, shortcut: Optional[str] = None, icon: Optional[QStyle.StandardPixmap] = None) -> QAction:
        a = QAction(text, self)
        if icon is not None:
            a.setIcon(self.style().standardIcon(icon))
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        tip = TIPS[tip_key]
        a.setToolTip(f"{tip} ({shortcut})" if shortcut and f"({shortcut})" not in tip else tip)
        a.setStatusTip(tip)
        a.triggered.connect(slot)
        return a

    def _make_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.run_action = self._action("&Run", "run", self._on_run_pause, "Space", sp.SP_MediaPlay)
        self.step_action = self._action("&Step", "step", self._on_step, "S", sp.SP_MediaSeekForward)
        self.reset_action = self._action("R&eset", "reset", self._on_reset, "R", sp.SP_BrowserReload)
        self.export_action = self._action("&Export session…", "export", self._on_export, "Ctrl+E", sp.SP_DialogSaveButton)
        self.save_png_action = self._action("Save plots as &PNG…", "save_png", self._on_save_png, None, sp.SP_FileIcon)
        self.quit_action = self._action("&Quit", "quit", self.close, "Ctrl+Q")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.about_action = QAction("&About GradSim", self)
        self.about_action.triggered.connect(self._on_about)
        for a in (self.run_action, self.step_action, self.reset_action):
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

    def _make_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addAction(self.export_action)
        file_menu.addAction(self.save_png_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        run_menu = mb.addMenu("&Run")
        run_menu.addAction(self.run_action)
        run_menu.addAction(self.step_action)
        run_menu.addAction(self.reset_action)
        self.view_menu = mb.addMenu("&View")
        for dock in (self.builder_dock, self.toggles_dock, self.event_dock):
            a = dock.toggleViewAction()
            a.setToolTip(f"Show or hide the {dock.windowTitle().lower()} panel.")
            self.view_menu.addAction(a)
        redraw_menu = self.view_menu.addMenu("Plot updates while training")
        redraw_menu.setToolTipsVisible(True)
        self.redraw_group = QActionGroup(self)
        self.redraw_actions: dict[str, QAction] = {}
        for mode in REDRAW_MODES.values():
            a = QAction(mode.label, self, checkable=True)
            a.setToolTip(mode.tip)
            a.setStatusTip(mode.tip)
            a.setData(mode.key)
            a.triggered.connect(self._on_redraw_mode_chosen)
            self.redraw_group.addAction(a)
            redraw_menu.addAction(a)
            self.redraw_actions[mode.key] = a
        self.redraw_actions[DEFAULT_REDRAW_MODE].setChecked(True)
        self.view_menu.addSeparator()
        help_menu = mb.addMenu("&Help")
        help_menu.addAction(self.about_action)

    def _make_toolbar(self) -> None:
        tb = QToolBar("Run controls", self)
        tb.setObjectName("runToolBar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addAction(self.run_action)
        tb.addAction(self.step_action)
        tb.addAction(self.reset_action)
        tb.addSeparator()
        tb.addAction(self.export_action)
        tb.addAction(self.save_png_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb
        self.view_menu.addAction(tb.toggleViewAction())

    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        self.state_label = QLabel()
        self.step_label = QLabel("step –")
        self.rate_label = QLabel("– steps/s")
        self.loss_label = QLabel("loss –")
        self.acc_label = QLabel("accuracy –")
        self.state_label.setToolTip("What the run is doing; turns red when the gradients became non-finite (diverged).")
        self.step_label.setToolTip("Optimizer steps done so far, of the run's maximum.")
        self.rate_label.setToolTip("Training speed in the background thread (plots redraw at ~30 Hz regardless).")
        self.loss_label.setToolTip("Training loss of the latest step's batch.")
        self.acc_label.setToolTip("Training accuracy of the latest step's batch.")
        # Widths fit typical texts, so a changing number does not re-lay out the window.
        fm = self.fontMetrics()
        samples = ("step 100,000 / 100,000", "10,000 steps/s", "loss 0.00001234", "accuracy 100.0%")
        for w, sample in zip((self.step_label, self.rate_label, self.loss_label, self.acc_label), samples):
            w.setMinimumWidth(fm.horizontalAdvance(sample) + 12)
            sb.addPermanentWidget(w)
        sb.addPermanentWidget(self.state_label)

    # ================================================================ settings
    def _restore_settings(self) -> None:
        s = st.settings()
        messages = []
        geometry = st.read_bytes(s, st.KEY_GEOMETRY)
        if geometry is not None and not self.restoreGeometry(geometry):
            messages.append("window geometry")
        state = st.read_bytes(s, st.KEY_STATE)
        if state is not None and not self.restoreState(state, st.STATE_VERSION):
            messages.append("dock layout")
        config, msg = st.load_config(s)
        schedule, msg2 = st.load_schedule(s)
        preset = st.read_str(s, st.KEY_PRESET)
        self.builder.set_config(config)
        if msg is None:
            self.builder.set_schedule(schedule)
            self.builder.restore_preset(preset)
        self._export_dir = st.read_str(s, "export/last_dir", self._export_dir) or self._export_dir
        mode = st.read_str(s, st.KEY_REDRAW, DEFAULT_REDRAW_MODE)
        self.set_redraw_mode(mode if mode in REDRAW_MODES else DEFAULT_REDRAW_MODE)
        notes = [m for m in (msg, msg2) if m]
        if messages:
            notes.append("The saved " + " and ".join(messages) + " could not be restored; using the defaults.")
        if notes:
            self.statusBar().showMessage(" ".join(notes), 15000)

    def save_settings(self) -> None:
        s = st.settings()
        s.setValue(st.KEY_GEOMETRY, self.saveGeometry())
        s.setValue(st.KEY_STATE, self.saveState(st.STATE_VERSION))
        cfg = self.builder.config() or self.run_config
        if cfg is not None:
            st.save_config(s, cfg)
        st.save_schedule(s, self.builder.schedule())
        s.setValue(st.KEY_PRESET, self.builder.preset_name())
        s.setValue("export/last_dir", self._export_dir)
        s.setValue(st.KEY_REDRAW, self.redraw_mode.key)
        s.sync()

    # ================================================================ worker
    def ensure_worker(self) -> None:
        """Start the background thread (and torch's import in it) if it is not running."""
        if not self.worker.isRunning() and not self._closing:
            self.worker.start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        # Start the worker once the window is up, so torch's import never delays the first paint.
        QTimer.singleShot(150, self._start_background)

    @Slot()
    def _start_background(self) -> None:
        if self._closing:
            return
        self.ensure_worker()
        self.worker.send(WarmUp())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        # Installed on this window until its first paint only: a Python paintEvent override
        # would cost the interpreter lock on every repaint for the whole session.
        if watched is self and event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            self.removeEventFilter(self)
            self.first_painted.emit()
        return False

    # ================================================================ run control
    def start_run(self, paused: bool = False) -> bool:
        """Start a new run from the builder's config (and the preset's scheduled events)."""
        config = self.builder.config()
        if config is None:
            self.statusBar().showMessage("Fix the highlighted value first: " + self.builder.error(), 10000)
            return False
        self.generation += 1
        self.run_config = config
        self.mirror = Session(config.n_layers, config.to_dict(), max_memory_mb=config.max_memory_mb)
        self.plots.reset()
        self.event_log.clear()
        self.toggles.sync_config(config)
        self._dirty = True
        self.ensure_worker()
        if self.persist:  # remember the config now, not only at a clean exit
            s = st.settings()
            st.save_config(s, config)
            st.save_schedule(s, self.builder.schedule())
            s.setValue(st.KEY_PRESET, self.builder.preset_name())
        self.worker.reset_run(config, self.builder.schedule(), self.builder.run_label(), self.generation)
        if not paused:
            self.worker.start_run()
        self._set_state(PAUSED if paused else RUNNING)
        self.toggles_dock.raise_()
        self._show_progress(0, config.steps, 0.0, math.nan, math.nan)
        return True

    def send_command(self, command: Command) -> None:
        """Queue a live change for the worker; it applies at the next step boundary."""
        if self.state not in (RUNNING, PAUSED):
            self._on_command_failed(f"{command.text()}: no run is active; press Run first")
            return
        self.worker.send(command)

    @Slot()
    def _on_run_pause(self) -> None:
        self.toggle_run()

    @Slot()
    def _on_step(self) -> None:
        self.step_once()

    @Slot()
    def _on_reset(self) -> None:
        self.reset_run()

    def toggle_run(self) -> None:
        """Run/Pause: pause a running run, resume a paused one, or start a new one."""
        if self.state == RUNNING:
            self.worker.pause_run()
            self._set_state(PAUSED)
        elif self.state == PAUSED:
            self.worker.start_run()
            self._set_state(RUNNING)
        else:
            self.start_run()

    def step_once(self) -> None:
        """One optimizer step, then paused (a new run is started paused if none is active)."""
        if self.state == RUNNING:
            self.worker.pause_run()
            self._set_state(PAUSED)
        elif self.state != PAUSED:
            if not self.start_run(paused=True):
                return
        self.worker.step_run(1)

    def reset_run(self) -> None:
        """Discard the run and its plots; the next Run starts from fresh weights."""
        self.generation += 1
        self.worker.reset_run(None, generation=self.generation)
        self.mirror = None
        self.run_config = None
        self.plots.reset()
        self.event_log.clear()
        self._set_state(IDLE)
        self.builder_dock.raise_()
        self._show_progress(0, None, 0.0, math.nan, math.nan)

    def _set_state(self, state: str) -> None:
        self.state = state
        live = state in (RUNNING, PAUSED)
        has_run = state in (RUNNING, PAUSED, FINISHED, FAILED)
        self.toggles.set_live(live)
        self.builder.set_locked(live)
        self.export_action.setEnabled(has_run)
        self.step_action.setEnabled(live or self.builder.is_valid())
        sp = QStyle.StandardPixmap
        if state == RUNNING:
            self.run_action.setText("&Pause")
            self.run_action.setIcon(self.style().standardIcon(sp.SP_MediaPause))
            self.run_action.setEnabled(True)
        else:
            self.run_action.setText("&Run" if state != PAUSED else "&Resume")
            self.run_action.setIcon(self.style().standardIcon(sp.SP_MediaPlay))
            self.run_action.setEnabled(state == PAUSED or self.builder.is_valid())
        self._show_state_label()
        self.state_changed.emit(state)

    def set_redraw_mode(self, key: str) -> None:
        """Choose how often plots redraw while training (see RedrawMode)."""
        mode = REDRAW_MODES[key]
        self.redraw_mode = mode
        self.redraw_actions[key].setChecked(True)
        self.worker.set_snapshot_hz(mode.snapshot_hz)
        self._frame_wall = 0.0  # the next frame may come at once

    @Slot()
    def _on_redraw_mode_chosen(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.set_redraw_mode(str(action.data()))

    def _show_state_label(self) -> None:
        if self.mirror is not None and self.mirror.diverged_at is not None:
            style, text = _DIVERGED_STYLE, f"diverged at step {self.mirror.diverged_at}"
        else:
            style = _STATE_STYLE
            text = {IDLE: "ready", RUNNING: "running", PAUSED: "paused", FINISHED: "finished", FAILED: "stopped by an error"}[self.state]
        if style != self._state_style:  # restyling costs a re-polish: only on change
            self._state_style = style
            self.state_label.setStyleSheet(style)
        if self.state_label.text() != text:
            self.state_label.setText(text)

    @Slot(bool)
    def _on_validity_changed(self, valid: bool) -> None:
        if self.state not in (RUNNING, PAUSED):
            self.run_action.setEnabled(valid)
            self.step_action.setEnabled(valid)

    # ================================================================ snapshots
    @Slot(object)
    def _on_snapshot(self, snap: Snapshot) -> None:
        if snap.generation != self.generation or self.mirror is None:
            return  # from a run that was reset
        rows = snap.rows
        if len(rows) or rows.events:
            self.mirror.append_rows(rows)
            self._dirty = True
        self.mirror.steps_run = snap.step
        if rows.events:
            # A change to the run (a toggle, a scheduled event): show its effect soon,
            # whatever the redraw pacing says; events are rare, so this costs little.
            if self._event_frame_at == 0.0:
                self._event_frame_at = time.perf_counter() + EVENT_FRAME_DELAY_S
            self.event_log.add_events(rows.events)
            for ev in rows.events:
                self.toggles.sync_event(ev)
        now = time.perf_counter()
        if not snap.running or now - self._status_at >= STATUS_PERIOD_S:
            self._status_at = now
            self._show_progress(snap.step, snap.total_steps, snap.steps_per_s, snap.loss, snap.accuracy)
        if snap.failed and self.state in (RUNNING, PAUSED):
            self._set_state(FAILED)
        elif snap.finished and self.state in (RUNNING, PAUSED):
            self._set_state(FINISHED)
        if snap.diverged_at is not None and self.mirror.diverged_at is None:
            self.mirror.diverged_at = snap.diverged_at
        self._show_state_label()
        self.mirror_updated.emit(snap.generation)

    def _show_progress(self, step: int, total: Optional[int], rate: float, loss: float, acc: float) -> None:
        self.step_label.setText(f"step {step:,}" + (f" / {total:,}" if total else ""))
        self.rate_label.setText(f"{rate:,.0f} steps/s" if rate > 0 else "– steps/s")
        self.loss_label.setText(f"loss {loss:.4g}" if not math.isnan(loss) else "loss –")
        self.acc_label.setText(f"accuracy {acc:.1%}" if math.isfinite(acc) else "accuracy –")

    @Slot()
    def _on_redraw_timer(self) -> None:
        if not self._dirty or self.mirror is None or len(self.mirror) == 0 or not self.isVisible():
            return  # nothing new, or no step recorded yet (plots were reset when the run started)
        now = time.perf_counter()
        cpu = time.thread_time()
        event_due = self._event_frame_at > 0.0 and now >= self._event_frame_at
        if self.state == RUNNING and not event_due:
            # Everything this thread spent since the last frame began (that frame's
            # refresh and paint, snapshots, status, other panels) must be paid for at
            # the mode's budget before the next frame: the GUI's share of the
            # interpreter lock stays under it, whatever a frame happens to cost.
            mode = self.redraw_mode
            spent = cpu - self._frame_cpu
            if now - self._frame_wall < min(mode.max_gap_s, spent / mode.budget):
                return
        self.frame_cost_s = cpu - self._frame_cpu if self._frame_wall else 0.0
        self._event_frame_at = 0.0
        self._dirty = False
        self._frame_wall = now
        self._frame_cpu = cpu
        self.plots.refresh(self.mirror)
        self.frames += 1
        self.plots_refreshed.emit()

    def plots_have_data(self) -> bool:
        """Whether the heatmap, depth profile and loss curve hold data (self-test, tests)."""
        p = self.plots
        x, _ = p.loss_accuracy.loss_curve.getData()
        return bool(p.heatmap.image_data.size > 0 and p.depth_profile.values.size > 0 and x is not None and len(x) > 0)

    def refresh_plots_now(self) -> None:
        """Redraw at once (headless screenshots, tests)."""
        if self.mirror is not None:
            self.plots.refresh(self.mirror, force=True)
            self._dirty = False
            self.plots_refreshed.emit()

    # ================================================================ commands
    @Slot(object)
    def _on_command_requested(self, command: Command) -> None:
        self.send_command(command)

    @Slot(str)
    def _on_command_failed(self, message: str) -> None:
        self.event_log.add_message("refused", message)
        self.toggles.show_error(message)
        self.statusBar().showMessage(message, 10000)

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        if self.state in (RUNNING, PAUSED):
            self._set_state(FAILED)
        first = message.splitlines()[0] if message else "error"
        self.event_log.add_message("error", first)
        self.show_error(
            "Training stopped",
            f"{first}\n\nThe training run stopped. The data recorded so far is kept and can be exported; "
            "press Run to start a new run.",
            message,
        )

    # ================================================================ preview
    @Slot(object)
    def _on_preview_wanted(self, config: RunConfig) -> None:
        self.worker.request_preview(config)  # handled once the worker runs (it starts after the first paint)

    @Slot(object)
    def _on_preview_ready(self, preview: object) -> None:
        self.builder.set_preview(preview)

    # ================================================================ export
    @Slot()
    def _on_export(self) -> None:
        if self.state not in (RUNNING, PAUSED, FINISHED, FAILED):
            self.show_error("Nothing to export", "There is no session yet: press Run first.")
            return
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        suggested = str(Path(self._export_dir) / f"gradsim-session-{stamp}")
        path, chosen = QFileDialog.getSaveFileName(
            self,
            "Export session (a folder of session.json, steps.csv, layers.csv, events.csv)",
            suggested,
            "Session folder (*);;Zip archive (*.zip)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return
        self.export_to(path, zip_file=path.lower().endswith(".zip") or "zip" in (chosen or "").lower())

    def export_to(self, path: str, zip_file: bool = False) -> None:
        """Ask the worker to export its full session to ``path`` between steps."""
        if zip_file and not path.lower().endswith(".zip"):
            path += ".zip"
        self._export_dir = str(Path(path).parent)
        self.statusBar().showMessage(f"Exporting session to {path}…")
        self.worker.export_session(path, zip_file=zip_file)

    @Slot(str)
    def _on_export_finished(self, path: str) -> None:
        self.last_export = path
        self.statusBar().showMessage(f"Session exported to {path}", 10000)
        self.event_log.add_message("export", f"written to {path}", error=False)

    @Slot(str)
    def _on_export_failed(self, message: str) -> None:
        self.statusBar().showMessage("Export failed: " + message, 10000)
        self.show_error("Export failed", message + "\n\nNothing was lost: the session is still in memory; export it again to another folder.")

    @Slot()
    def _on_save_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save plots as PNG", str(Path(self._export_dir) / "gradsim-plots.png"), "PNG image (*.png)")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        try:
            self.refresh_plots_now()
            ok = self.plots.save_png(path)
        except Exception as exc:  # noqa: BLE001 - a failed save is shown, never fatal
            self.show_error("Saving the plots failed", f"cannot save {path!r}: {exc}")
            return
        if ok is False:
            self.show_error("Saving the plots failed", f"cannot save {path!r}: the image could not be written")
            return
        self.statusBar().showMessage(f"Plots saved to {path}", 10000)

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
    def _on_about(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("About GradSim")
        box.setIconPixmap(app_icon().pixmap(64, 64))
        box.setText(
            f"<b>GradSim {__version__}</b><br>Train a deep MLP live and watch its gradients vanish or explode, "
            "layer by layer; switch activation, initialization, batch norm and clipping while it runs."
            "<br><br>MIT licence. Built on PyTorch, Qt (PySide6) and pyqtgraph."
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # ================================================================ closing
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self._closing = True
        self._timer.stop()
        try:
            if self.persist:
                self.save_settings()
        except Exception:  # noqa: BLE001 - never block closing on settings
            pass
        self.stop_worker()
        for box in list(self.dialogs):
            box.close()
        super().closeEvent(event)

    def stop_worker(self) -> bool:
        """Stop the training thread (requestInterruption + wait, never terminate)."""
        return self.worker.stop(timeout_ms=10000)
