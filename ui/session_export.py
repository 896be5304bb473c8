"""File > Export session and Save plots as PNG: dialogs, the worker's export, messages.

Kept out of the window so the window only composes. The export itself runs in
the training thread between steps (the engine's exporter writes the full
session; the GUI only holds a mirror), so a long run never blocks the window.
"""
from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QFileDialog, QStatusBar, QWidget

from .run_controller import RunController

log = logging.getLogger(__name__)


class SessionExporter(QObject):
    """Asks where, then has the worker write the session; remembers the last folder."""

    def __init__(
        self,
        run: RunController,
        dialog_parent: QWidget,
        status: QStatusBar,
        show_error: Callable[..., object],
        note: Callable[[str, str], None],
        export_dir: str,
    ) -> None:
        super().__init__(dialog_parent)
        self.run = run
        self._parent = dialog_parent
        self._status = status
        self._show_error = show_error
        self._note = note
        #: The folder the next file dialog opens in (the last one used).
        self.export_dir = export_dir
        #: The path of the last successful export ("" until one).
        self.last_export = ""
        #: Called with True/False when the export asked for with a callback ends.
        self._on_done: Optional[Callable[[bool], None]] = None
        run.worker.export_finished.connect(self._on_export_finished)
        run.worker.export_failed.connect(self._on_export_failed)

    def ask_and_export(self, on_done: Optional[Callable[[bool], None]] = None) -> bool:
        """Ask where, then export; ``on_done(written)`` when the engine has finished (or failed).

        False: nothing was started (no run, or the dialog was cancelled).
        """
        if self.run.live_parts() is None:
            self._show_error("Nothing to export", "There is no session yet: press Run first.")
            return False
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path, chosen = QFileDialog.getSaveFileName(
            self._parent,
            "Export session (a folder of session.json, steps.csv, layers.csv, events.csv)",
            str(Path(self.export_dir) / f"gradsim-session-{stamp}"),
            "Session folder (*);;Zip archive (*.zip)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return False
        self._on_done = on_done
        self.export_to(path, zip_file=path.lower().endswith(".zip") or "zip" in (chosen or "").lower())
        return True

    def export_to(self, path: str, zip_file: bool = False) -> None:
        """Ask the worker to export its full session to ``path`` between steps."""
        if zip_file and not path.lower().endswith(".zip"):
            path += ".zip"
        self.export_dir = str(Path(path).parent)
        self._status.showMessage(f"Exporting session to {path}…")
        self.run.export(path, zip_file=zip_file)

    @Slot(str)
    def _on_export_finished(self, path: str) -> None:
        self.last_export = path
        self._status.showMessage(f"Session exported to {path}", 10000)
        self._note("export", f"written to {path}")
        self._finish(True)

    def _finish(self, ok: bool) -> None:
        done, self._on_done = self._on_done, None
        if done is not None:
            done(ok)

    @Slot(str)
    def _on_export_failed(self, message: str) -> None:
        self._status.showMessage("Export failed: " + message, 10000)
        self._show_error("Export failed", message + "\n\nNothing was lost: the session is still in memory; export it again to another folder.")
        self._finish(False)

    def ask_and_save_png(self, save: Callable[[str], Optional[bool]]) -> None:
        """Ask for a file name, then ``save(path)`` (False or an exception: shown, never fatal)."""
        path, _ = QFileDialog.getSaveFileName(self._parent, "Save plots as PNG", str(Path(self.export_dir) / "gradsim-plots.png"), "PNG image (*.png)")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        try:
            ok = save(path)
        except Exception as exc:  # a failed save is shown, never fatal
            log.exception("saving the plots to %r failed", path)
            self._show_error("Saving the plots failed", f"cannot save {path!r}: {exc}")
            return
        if ok is False:
            self._show_error("Saving the plots failed", f"cannot save {path!r}: the image could not be written")
            return
        self._status.showMessage(f"Plots saved to {path}", 10000)
