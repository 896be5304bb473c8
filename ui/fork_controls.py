"""Fork and compare: the Fork action, the compare bar and where live toggles go.

Why: "batch norm helps" convinces when two branches start from one state. At
a paused step, Fork asks the worker for branch B (an exact copy of the run:
weights, optimizer state, batch order, random generators; see gradsim/train/fork.py);
from then on the one worker steps A and B alternately, the plots draw B dashed
on the same axes, and the heatmap can show A, B or log10 B/A. The toggles go
to the branch chosen here (B by default: change one branch, keep the other),
and B's own changes are listed in the event log (marked "B:").
"""
from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QMainWindow, QToolBar

from gradsim.commands import Command
from gradsim.session.store import Session

from .host import ForkHost
from .run_controller import RunState
from .worker import BranchCommand

_TARGETS = (("branch B", (1,)), ("branch A", (0,)), ("both branches", (0, 1)))


class ForkControls(QObject):
    """Fork action (Run menu, toolbar, Ctrl+K) and the compare bar shown while forked.

    ``window`` holds the compare bar; ``host`` is what of the window this uses (see ui/host.py).
    """

    def __init__(self, window: QMainWindow, host: ForkHost) -> None:
        super().__init__(window)
        self.host = host
        self.run = host.run
        self.fork_action = QAction("&Fork", window)
        self.fork_action.setShortcut(QKeySequence("Ctrl+K"))
        tip = ("Pause, then Fork: a second branch B continues from exactly this state (weights, optimizer state, "
               "batch order, random numbers). Change a toggle on one branch and watch both on the same axes. (Ctrl+K)")
        self.fork_action.setToolTip(tip)
        self.fork_action.setStatusTip(tip)
        self.fork_action.setEnabled(False)
        self.fork_action.triggered.connect(self.fork)

        self.bar = QToolBar("Compare branches", window)
        self.bar.setObjectName("compareToolBar")
        self.info = QLabel("")
        self.info.setToolTip("Branch A is drawn solid, branch B dashed, on the same axes; both train in turn in one thread.")
        self.target = QComboBox()
        for text, targets in _TARGETS:
            self.target.addItem(text, targets)
        self.target.setToolTip("Which branch the live toggles change (the other keeps going unchanged).")
        self.target.currentIndexChanged.connect(self._on_target_changed)
        self.bar.addWidget(self.info)
        self.bar.addSeparator()
        self.bar.addWidget(QLabel(" Toggles change: "))
        self.bar.addWidget(self.target)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.bar)
        self.bar.setVisible(False)
        self.fork_step: Optional[int] = None

        self.run.state_changed.connect(self._on_state_changed)
        self.run.branch_events_arrived.connect(self._on_branch_events)
        self.run.run_forked.connect(self._on_forked)
        self.run.run_started.connect(self._on_unforked)
        self.run.run_reset.connect(self._on_unforked)
        self.run.session_opened.connect(self._on_session_opened)
        self.run.run_restored.connect(self._on_run_restored)
        #: The fork step of a forked run kept behind an opened session.
        self._hidden_fork_step: Optional[int] = None

    # ------------------------------------------------------------ public
    @property
    def forked(self) -> bool:
        return self.run.forked and self.fork_step is not None

    def fork(self) -> bool:
        """Fork the paused run (refused, with a message, when not paused or already forked)."""
        return self.run.fork()

    def mirrors(self) -> list[Session]:
        """[branch A's mirror, branch B's mirror] (only A before a fork)."""
        out = [m for m in (self.run.mirror, self.run.branch_mirror) if m is not None]
        return out

    def send_to_branch(self, branch: int, command: Command) -> None:
        """A command for one branch only (0 = A, 1 = B), whatever the toggles' target."""
        if not self.run.live:
            self.run.command_refused.emit(f"{command.text()}: no run is active")
            return
        self.run.worker.send(BranchCommand(branch, command))

    # ------------------------------------------------------------ slots
    @Slot(object)
    def _on_state_changed(self, state: RunState) -> None:
        self.fork_action.setEnabled(state is RunState.PAUSED and not self.run.forked)

    @Slot(int)
    def _on_forked(self, step: int) -> None:
        self.fork_step = step
        self.info.setText(f"<b>Forked at step {step}</b>: A solid, B dashed")
        self.bar.setVisible(True)
        self.fork_action.setEnabled(False)
        self.run.set_command_targets(self.target.currentData())
        self.host.status.showMessage(f"Forked at step {step}: change a toggle on branch B, then Resume; A keeps going unchanged.", 10000)
        self.host.refresh_plots_now()

    @Slot()
    def _on_unforked(self, *_: object) -> None:
        self._hidden_fork_step = None  # a new run or a reset: nothing is kept behind
        self.fork_step = None
        self.bar.setVisible(False)

    @Slot(object)
    def _on_session_opened(self, _session: object) -> None:
        if self.fork_step is not None:
            self._hidden_fork_step = self.fork_step  # the forked run is kept behind the session
        self.fork_step = None
        self.bar.setVisible(False)

    @Slot(object)
    def _on_run_restored(self, _config: object) -> None:
        step, self._hidden_fork_step = self._hidden_fork_step, None
        if self.run.forked and step is not None:
            self._on_forked(step)

    @Slot(list)
    def _on_branch_events(self, events: list) -> None:
        """Branch B's own changes go to the event log (its copied history is already listed as A's)."""
        b = self.run.branch_mirror
        step = self.fork_step if self.fork_step is not None else b.steps_run if b is not None else 0
        for ev in events:
            if ev.step >= step and ev.kind != "start":
                self.host.event_log.add_message(f"B: {ev.kind}", ev.value, step=ev.step, error=False)
                if 0 not in self.run.command_targets:
                    self.host.toggles.sync_event(ev)  # the toggles show the branch they change

    @Slot(int)
    def _on_target_changed(self, _index: int) -> None:
        self.run.set_command_targets(self.target.currentData())
