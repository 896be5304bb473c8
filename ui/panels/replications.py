"""Help > Replications...: run a classic paper's experiment and see its figure and verdict.

The replication runs in the one training thread (``TrainingWorker.replicate``):
the dialog only sends the request, follows the progress signals and shows the
PNG and the verdict paragraph the engine wrote. Every run behind the figure is
a standard session folder; the dialog lists them so they can be opened.
``show_replications`` is the Help menu's hook: one dialog per window, kept.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from PySide6.QtCore import QStandardPaths, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gradsim.replications import REPLICATIONS

if TYPE_CHECKING:
    from gradsim.service.protocol import ReplicationResult

MODES = (
    ("default", "Default (a few minutes at most)"),
    ("quick", "Quick (reduced: fewer steps and seeds)"),
    ("full", "Full (more seeds and depths; slower)"),
)


def default_output_folder(name: str) -> Path:
    """A fresh folder under Documents/GradSim/replications, named for the run and the time."""
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(docs) / "GradSim" / "replications" / f"{name}-{stamp}"


def show_replications(parent: QWidget, worker, open_session: Optional[Callable[[str], None]] = None) -> "ReplicationsDialog":
    """Help > Replications...: one dialog per window, kept (with its last result) for the session;
    brought forward when it is already open. Its runs open as sessions through ``open_session``."""
    dlg = parent.findChild(ReplicationsDialog)
    if dlg is None:
        dlg = ReplicationsDialog(worker, parent, open_session)
    if dlg.isVisible():
        dlg.raise_()
        dlg.activateWindow()
    else:
        dlg.show()
    return dlg


class ReplicationsDialog(QDialog):
    """Lists the replications, runs one in the worker with progress, shows figure and verdict."""

    def __init__(self, worker, parent: Optional[QWidget] = None, open_session: Optional[Callable[[str], None]] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Replications of classic results")
        self.resize(1100, 720)
        self.worker = worker
        self._open_session = open_session
        self._running = False
        self._out_edited = False
        # Not ``self.result``: that would shadow QDialog.result(), the dialog's exit code.
        self.last_result: Optional[ReplicationResult] = None

        self.list = QListWidget()
        self.list.setToolTip("The paper results GradSim can re-run; select one to read what it shows.")
        for name, rep in REPLICATIONS.items():
            item = QListWidgetItem(f"{name}\n{rep.title}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(rep.citation)
            self.list.addItem(item)
        self.list.setWordWrap(True)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setTextFormat(Qt.TextFormat.RichText)
        self.description.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.mode = QComboBox()
        for key, text in MODES:
            self.mode.addItem(text, key)
        self.mode.setToolTip("Default repeats the experiment on 10 seeds (minutes on 2 cores); quick on 4 with fewer steps (what CI runs); full on 20 with more depths.")
        self.out = QLineEdit()
        self.out.setToolTip("Folder for figure.png, results.csv, verdict.txt and one session folder per run (runs/).")
        self.out.textEdited.connect(self._on_out_edited)
        self.browse = QPushButton("Browse…")
        self.browse.setToolTip("Choose the output folder.")
        self.browse.clicked.connect(self._on_browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(self.browse)
        form = QFormLayout()
        form.addRow("Size", self.mode)
        form.addRow("Output folder", out_row)
        self.run_button = QPushButton("&Run replication")
        self.run_button.setToolTip("Run the selected replication in the training thread (a live run is paused meanwhile).")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.setToolTip("Stop the replication at its next step; nothing half-written is left.")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setToolTip("Training steps of all the replication's runs together.")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("Choose a replication and press Run.")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)

        self.figure = QLabel("The figure appears here when the replication has run.")
        self.figure.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.figure.setMinimumHeight(120)
        self.figure.setToolTip("figure.png of the replication (the same file the command line writes).")
        self._pixmap = QPixmap()
        fig_scroll = QScrollArea()
        fig_scroll.setWidgetResizable(True)
        fig_scroll.setWidget(self.figure)
        self.fig_scroll = fig_scroll
        fig_scroll.setMinimumHeight(240)
        self.verdict = QPlainTextEdit()
        self.verdict.setReadOnly(True)
        self.verdict.setToolTip("The verdict paragraph: what the paper reports, what was measured, the criterion.")
        self.sessions = QListWidget()
        self.sessions.setToolTip("Each run behind the figure is a standard session folder; it replays with gradsim run --config.")
        self.sessions.itemDoubleClicked.connect(self._on_session_activated)
        self.open_folder = QPushButton("Show output &folder")
        self.open_folder.setToolTip("Open the output folder in the file manager.")
        self.open_folder.clicked.connect(self._on_open_folder)
        self.open_folder.setEnabled(False)
        self.open_run = QPushButton("Open selected &session" if open_session else "Show selected &session folder")
        self.open_run.setToolTip("Open the selected run as a session in the window." if open_session else "Show the selected run's session folder in the file manager.")
        self.open_run.clicked.connect(self._on_open_selected)
        self.open_run.setEnabled(False)
        res_buttons = QHBoxLayout()
        res_buttons.addWidget(self.open_folder)
        res_buttons.addWidget(self.open_run)
        res_buttons.addStretch(1)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.list)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.description)
        rl.addLayout(form)
        rl.addLayout(buttons)
        rl.addWidget(self.status)
        rl.addWidget(fig_scroll, 3)
        rl.addWidget(self.verdict, 2)
        rl.addWidget(QLabel("Runs (session folders):"))
        rl.addWidget(self.sessions, 1)
        rl.addLayout(res_buttons)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 3)
        outer = QVBoxLayout(self)
        outer.addWidget(split)

        self.list.currentRowChanged.connect(self._on_selected)
        worker.replication_progress.connect(self._on_progress)
        worker.replication_finished.connect(self._on_finished)
        worker.replication_failed.connect(self._on_failed)
        self.list.setCurrentRow(0)

    # ------------------------------------------------------------ public
    def selected(self) -> str:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else ""

    def select(self, name: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.list.setCurrentRow(i)
                return

    def set_mode(self, mode: str) -> None:
        self.mode.setCurrentIndex(max(0, self.mode.findData(mode)))

    def is_running(self) -> bool:
        return self._running

    @Slot()
    def start(self) -> None:
        name = self.selected()
        if not name or self._running:
            return
        out = self.out.text().strip()
        if not out:
            self.status.setText("Choose an output folder first.")
            return
        self._running = True
        self.last_result = None
        self._set_busy(True)
        self.progress.setRange(0, 0)  # busy until the first progress report
        self.status.setText(f"Starting {name}…")
        self.sessions.clear()
        self.verdict.clear()
        self._pixmap = QPixmap()
        self.figure.setPixmap(QPixmap())
        self.figure.setText("Running…")
        self.worker.replicate(name, out, self.mode.currentData())

    @Slot()
    def cancel(self) -> None:
        if self._running:
            self.status.setText("Cancelling at the next step…")
            self.worker.cancel_replication()

    # ------------------------------------------------------------ slots
    @Slot(int)
    def _on_selected(self, row: int) -> None:
        name = self.selected()
        if not name:
            return
        rep = REPLICATIONS[name]
        self.description.setText(
            f"<b>{rep.title}</b><br><i>{rep.citation}</i><br><br><b>The paper reports:</b> {rep.claim}"
            f"<br><b>Here:</b> {rep.setup}"
        )
        if not self._out_edited:
            self.out.setText(str(default_output_folder(name)))

    @Slot(str)
    def _on_out_edited(self, _text: str) -> None:
        self._out_edited = True

    @Slot()
    def _on_browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder for the replication", self.out.text())
        if folder:
            self.out.setText(str(Path(folder) / default_output_folder(self.selected() or "replication").name))
            self._out_edited = True

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, text: str) -> None:
        if not self._running:
            return
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(done, total))
        self.status.setText(f"{self.selected()}: {text} ({done:,} of {total:,} steps)")

    @Slot(object)
    def _on_finished(self, result) -> None:
        self._running = False
        self._set_busy(False)
        self.last_result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        word = "REPRODUCED" if result.reproduced else "NOT REPRODUCED"
        self.status.setText(f"{result.name}: {word}. Files in {result.out}")
        self.verdict.setPlainText(result.verdict)
        self._pixmap = QPixmap(result.figure)
        if self._pixmap.isNull():
            self.figure.setText(f"The figure could not be read: {result.figure}")
        else:
            self._fit_figure()
        for folder in result.sessions:
            item = QListWidgetItem(Path(folder).name)
            item.setData(Qt.ItemDataRole.UserRole, folder)
            item.setToolTip(folder)
            self.sessions.addItem(item)
        if self.sessions.count():
            self.sessions.setCurrentRow(0)
        self.open_folder.setEnabled(True)
        self.open_run.setEnabled(self.sessions.count() > 0)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._running = False
        self._set_busy(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.figure.setText("")
        self.status.setText("Cancelled." if message == "cancelled" else f"The replication failed: {message}")

    @Slot()
    def _on_open_folder(self) -> None:
        if self.last_result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.last_result.out))

    @Slot()
    def _on_open_selected(self) -> None:
        item = self.sessions.currentItem()
        if item is not None:
            self._on_session_activated(item)

    @Slot(QListWidgetItem)
    def _on_session_activated(self, item: QListWidgetItem) -> None:
        folder = item.data(Qt.ItemDataRole.UserRole)
        if self._open_session is not None:
            self._open_session(folder)
        else:
            QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def _fit_figure(self) -> None:
        """The whole figure in the space the dialog gives it (never enlarged past its pixels)."""
        if self._pixmap.isNull():
            return
        room = self.fig_scroll.viewport().size()
        w = min(self._pixmap.width(), max(200, room.width() - 4))
        h = min(self._pixmap.height(), max(120, room.height() - 4))
        self.figure.setPixmap(self._pixmap.scaled(w, h, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:  # Qt API
        super().resizeEvent(event)
        self._fit_figure()

    def _set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.list.setEnabled(not busy)
        self.mode.setEnabled(not busy)
        self.out.setEnabled(not busy)
        self.browse.setEnabled(not busy)

    def closeEvent(self, event) -> None:  # Qt API
        if self._running:
            answer = QMessageBox.question(self, "Replication running", "Cancel the running replication?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.cancel()
        super().closeEvent(event)
