"""The application icon and the About box."""
from __future__ import annotations

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget

from gradsim import __version__
from gradsim.resources import resource_path

from .logs import log_dir


def app_icon() -> QIcon:
    path = resource_path("icons", "gradsim.svg")
    return QIcon(str(path)) if path.is_file() else QIcon()


def show_about(parent: QWidget, log_folder: str) -> QMessageBox:
    """A non-blocking About box (``open()``, never ``exec()``: headless runs must not hang)."""
    box = QMessageBox(parent)
    box.setWindowTitle("About GradSim")
    box.setIconPixmap(app_icon().pixmap(64, 64))
    box.setText(
        f"<b>GradSim {__version__}</b><br>Train a deep MLP live and watch its gradients vanish or explode, "
        "layer by layer; switch activation, initialization, batch norm and clipping while it runs."
        "<br><br>MIT licence. Built on PyTorch, Qt (PySide6) and pyqtgraph."
        f"<br><br>Log files: {log_folder}"
    )
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def open_log_folder(status: QStatusBar) -> None:
    """Help > Open log folder: the file manager, or at least the folder's path in the status bar."""
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
        status.showMessage(f"The log folder is {folder}", 15000)
