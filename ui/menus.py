"""The window's menu bar and run toolbar: which action sits in which menu, in what order.

Why a module of its own: the menus are a table of the app's commands that
changes on its own (a new action is added here, next to its neighbours), while
``MainWindow`` only composes the parts. ``make_window_actions`` returns every
action, the View menu and the toolbar in one frozen ``WindowActions`` that the
window keeps as one attribute (menus, tests and the teaching layer reach them
there), instead of setting each as an attribute of the window. ``window`` is
the MainWindow, typed loosely: it imports this module.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMenu, QStyle, QToolBar

from gradsim.service import tasks as engine_tasks

from . import help as help_dialogs
from .about import open_log_folder, show_about
from .actions import RunActions, make_action
from .logs import log_dir
from .redraw import add_redraw_menu


@dataclass(frozen=True)
class WindowActions:
    """The window's commands, its View menu and its run toolbar (made once, never replaced)."""

    #: Run/Step/Reset, kept in step with the run and the builder's validity.
    run_actions: RunActions
    run: QAction
    step: QAction
    reset: QAction
    export: QAction
    save_png: QAction
    #: File > Save checkpoint: the live run's whole state, resumable headless.
    checkpoint: QAction
    quit: QAction
    log: QAction
    about: QAction
    replications: QAction
    #: Help > Glossary (F1) and Help > Keyboard shortcuts.
    glossary: QAction
    shortcuts: QAction
    view_menu: QMenu
    #: The View menu's entry that dock toggles are listed above.
    view_menu_end: QAction
    #: View > Plot updates while training: one action per redraw mode key.
    redraw: dict[str, QAction]
    toolbar: QToolBar

    def list_in_view_menu(self, dock: QDockWidget) -> None:
        """A dock's show/hide toggle, listed with the other panels in the View menu."""
        a = dock.toggleViewAction()
        a.setToolTip(f"Show or hide the {dock.windowTitle().lower()} panel.")
        self.view_menu.insertAction(self.view_menu_end, a)


def make_window_actions(window: Any) -> WindowActions:
    """Run/Step/Reset (following the run), File and Help actions, the menus and the toolbar."""
    sp = QStyle.StandardPixmap
    w = window
    run_actions = RunActions(w, w.run, w.builder.is_valid, w.toggle_run, w.step_once, w.reset_run)
    run, step, reset = run_actions.actions()
    export = make_action(w, "&Export session…", "export", lambda: w.exporter.ask_and_export(), "Ctrl+E", sp.SP_DialogSaveButton)
    save_png = make_action(w, "Save plots as &PNG…", "save_png", lambda: _save_png(w), None, sp.SP_FileIcon)
    checkpoint = QAction("Save &checkpoint…", w)
    checkpoint.setToolTip("Save the run's whole state to a file; `gradsim run --resume FILE` continues it bit for bit.")
    checkpoint.triggered.connect(lambda: _ask_and_save_checkpoint(w))
    quit_action = make_action(w, "&Quit", "quit", w.close, "Ctrl+Q")
    quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    log_action = QAction("Open &log folder", w)
    log_action.setToolTip("Open the folder of GradSim's log file (attach it to a bug report).")
    log_action.triggered.connect(lambda: open_log_folder(w.status))
    about = QAction("&About GradSim", w)
    about.triggered.connect(lambda: show_about(w, str(log_dir())))
    replications = QAction("&Replications…", w)
    replications.setToolTip("Re-run a classic paper's experiment (He 2015, Glorot 2010, ...) and see its figure and verdict.")
    replications.triggered.connect(w.show_replications)

    glossary = QAction("&Glossary…", w)
    glossary.setShortcut(QKeySequence(QKeySequence.StandardKey.HelpContents))
    glossary.setToolTip("What every metric, plot and idea means (vanishing, exploding, the fixes).")
    glossary.triggered.connect(lambda: help_dialogs.open_dialog(help_dialogs.GlossaryDialog(w)))
    shortcuts = QAction("&Keyboard shortcuts…", w)
    shortcuts.setShortcut(QKeySequence("Ctrl+/"))
    shortcuts.setToolTip("Every key the window answers to.")
    shortcuts.triggered.connect(lambda: help_dialogs.open_dialog(help_dialogs.ShortcutsDialog(w)))

    view_menu, view_end, redraw = make_menus(
        w,
        file_groups=[[w.viewer.open_action, w.follow.follow_action], [export, save_png, checkpoint], [quit_action]],
        run_groups=[[run, step, reset], [w.fork.fork_action], [w.pace.divergence_action, w.pace.toggle_action], w.history.actions],
        help_groups=[[glossary, shortcuts], [replications], [log_action, about]],
    )
    toolbar = make_toolbar(w, [[run, step, reset, w.fork.fork_action], [w.viewer.open_action, export, save_png],
                               [w.learned.action]])
    w.pace.add_to_toolbar(toolbar)
    acts = WindowActions(run_actions, run, step, reset, export, save_png, checkpoint, quit_action, log_action, about, replications,
                         glossary, shortcuts, view_menu, view_end, redraw, toolbar)
    for dock in (w.builder_dock, w.toggles_dock, w.event_dock):
        acts.list_in_view_menu(dock)
    view_menu.addSeparator()
    view_menu.addAction(toolbar.toggleViewAction())  # the toolbar's toggle goes at the end of the View menu
    return acts


def _add_groups(menu: QMenu, groups: Sequence[Sequence[QAction]]) -> None:
    for i, group in enumerate(groups):
        if i:
            menu.addSeparator()
        menu.addActions(list(group))


def make_menus(window: Any, file_groups: Sequence[Sequence[QAction]], run_groups: Sequence[Sequence[QAction]],
               help_groups: Sequence[Sequence[QAction]]) -> tuple[QMenu, QAction, dict[str, QAction]]:
    """File, Run, View (panels, redraw pacing; dock toggles are listed later) and Help.

    Returns the View menu, the entry dock toggles go above, and the redraw actions.
    """
    w = window
    mb = w.menuBar()
    _add_groups(mb.addMenu("&File"), file_groups)
    _add_groups(mb.addMenu("&Run"), run_groups)
    view_menu = mb.addMenu("&View")
    view_menu.addActions([w.teaching.exercise_action, w.teaching.jacobian_action, w.learned.action])
    view_menu.addSeparator()
    redraw = add_redraw_menu(view_menu, w.pacer)
    view_end = view_menu.actions()[-1]  # dock toggles are listed above it
    _add_groups(mb.addMenu("&Help"), help_groups)
    return view_menu, view_end, redraw


def make_toolbar(window: Any, groups: Sequence[Sequence[QAction]]) -> QToolBar:
    """The run toolbar, added to the window's top area."""
    tb = QToolBar("Run controls", window)
    tb.setObjectName("runToolBar")
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for i, group in enumerate(groups):
        if i:
            tb.addSeparator()
        tb.addActions(list(group))
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
    return tb


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
