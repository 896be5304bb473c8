"""The window's menu bar and run toolbar: which action sits in which menu, in what order.

Why a module of its own: the menus are a table of the app's commands that
changes on its own (a new action is added here, next to its neighbours), while
``MainWindow`` only composes the parts. The functions set the actions and menus
as attributes of the window (``window.export_action``, ``window.view_menu``,
``window.toolbar``, ...) because menus, tests and the teaching layer reach
them there. ``window`` is the MainWindow, typed loosely: it imports this module.
"""
from __future__ import annotations

import functools
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFileDialog, QStyle, QToolBar

from gradsim.service import tasks as engine_tasks

from .about import open_log_folder, show_about
from .actions import RunActions, make_action
from .logs import log_dir
from .redraw import add_redraw_menu


def make_actions(window: Any) -> None:
    """Run/Step/Reset (following the run), File and Help actions."""
    sp = QStyle.StandardPixmap
    w = window
    w.run_actions = RunActions(w, w.run, w.builder.is_valid, w.toggle_run, w.step_once, w.reset_run)
    w.run_action, w.step_action, w.reset_action = w.run_actions.actions()
    w.export_action = make_action(w, "&Export session…", "export", w.exporter.ask_and_export, "Ctrl+E", sp.SP_DialogSaveButton)
    w.save_png_action = make_action(w, "Save plots as &PNG…", "save_png", lambda: _save_png(w), None, sp.SP_FileIcon)
    w.checkpoint_action = QAction("Save &checkpoint…", w)
    w.checkpoint_action.setToolTip("Save the run's whole state to a file; `gradsim run --resume FILE` continues it bit for bit.")
    w.checkpoint_action.triggered.connect(lambda: _ask_and_save_checkpoint(w))
    w.quit_action = make_action(w, "&Quit", "quit", w.close, "Ctrl+Q")
    w.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    w.log_action = QAction("Open &log folder", w)
    w.log_action.setToolTip("Open the folder of GradSim's log file (attach it to a bug report).")
    w.log_action.triggered.connect(lambda: open_log_folder(w.status))
    w.about_action = QAction("&About GradSim", w)
    w.about_action.triggered.connect(lambda: show_about(w, str(log_dir())))
    w.replications_action = QAction("&Replications…", w)
    w.replications_action.setToolTip("Re-run a classic paper's experiment (He 2015, Glorot 2010, ...) and see its figure and verdict.")
    w.replications_action.triggered.connect(w.show_replications)


def make_menus(window: Any) -> None:
    """File, Run, View (panels, redraw pacing, dock toggles) and Help."""
    w = window
    mb = w.menuBar()
    file_menu = mb.addMenu("&File")
    file_menu.addAction(w.viewer.open_action)
    file_menu.addSeparator()
    file_menu.addActions([w.export_action, w.save_png_action, w.checkpoint_action])
    file_menu.addSeparator()
    file_menu.addAction(w.quit_action)
    run_menu = mb.addMenu("&Run")
    run_menu.addActions([w.run_action, w.step_action, w.reset_action])
    run_menu.addSeparator()
    run_menu.addAction(w.fork.fork_action)
    w.view_menu = mb.addMenu("&View")
    w.view_menu.addActions([w.teaching.exercise_action, w.teaching.jacobian_action, w.learned.action])
    w.view_menu.addSeparator()
    w.redraw_actions = add_redraw_menu(w.view_menu, w.pacer)
    w._view_menu_end = w.view_menu.actions()[-1]  # dock toggles are listed above it
    for dock in (w.builder_dock, w.toggles_dock, w.event_dock):
        list_in_view_menu(w, dock)
    w.view_menu.addSeparator()
    help_menu = mb.addMenu("&Help")
    help_menu.addAction(w.replications_action)
    help_menu.addSeparator()
    help_menu.addActions([w.log_action, w.about_action])


def make_toolbar(window: Any) -> None:
    """The run toolbar (its toggle goes at the end of the View menu)."""
    w = window
    tb = QToolBar("Run controls", w)
    tb.setObjectName("runToolBar")
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    tb.addActions([w.run_action, w.step_action, w.reset_action, w.fork.fork_action])
    tb.addSeparator()
    tb.addActions([w.viewer.open_action, w.export_action, w.save_png_action])
    tb.addSeparator()
    tb.addAction(w.learned.action)
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
    w.toolbar = tb
    w.view_menu.addAction(tb.toggleViewAction())


def list_in_view_menu(window: Any, dock: QDockWidget) -> None:
    """A dock's show/hide toggle, listed with the other panels in the View menu."""
    a = dock.toggleViewAction()
    a.setToolTip(f"Show or hide the {dock.windowTitle().lower()} panel.")
    window.view_menu.insertAction(window._view_menu_end, a)


def _save_png(window: Any) -> None:
    """File > Save plots as PNG: redraw at once, so the file shows the latest step."""
    def save(path: str):
        window.refresh_plots_now()
        return window.plots.save_png(path)

    window.exporter.ask_and_save_png(save)


def _ask_and_save_checkpoint(window: Any) -> None:
    """File > Save checkpoint: ask for a file, then save between steps in the engine process."""
    if window.mirror is None:
        window.statusBar().showMessage("No run to checkpoint: start one first.", 10000)
        return
    path, _ = QFileDialog.getSaveFileName(window, "Save checkpoint", "run.ckpt", "GradSim checkpoints (*.ckpt);;All files (*)")
    if path:
        save_checkpoint_to(window, path)


def save_checkpoint_to(window: Any, path: str) -> None:
    """Save the live run's checkpoint to ``path`` (a partial of a gradsim task: it is pickled to the engine)."""
    window.run.worker.submit(
        functools.partial(engine_tasks.checkpoint_task, path=path),
        lambda written: window.statusBar().showMessage(f"Checkpoint written to {written}", 10000),
        lambda exc: window.show_error("Checkpoint not written", f"{exc}\n\nThe run goes on unchanged."),
        on_trainer=True,
    )
