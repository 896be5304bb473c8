"""The network builder: every RunConfig field a student needs, validated as it is typed.

Why validate through ``RunConfig.validate()`` instead of re-implementing the
rules: the form then can never accept a value the engine refuses, and the
message shown inline is the engine's own, naming the field and what is allowed.
Ranges the widgets can enforce (spin boxes) are enforced; the rest is shown
inline and Run stays disabled until it is fixed.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Optional

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gradsim.commands import Scheduled
from gradsim.config import ACTIVATIONS, CLIP_MODES, DATASETS, INITS, OPTIMIZERS, ConfigError, RunConfig
from gradsim.presets import Preset, load_preset, preset_names

from .dataset_preview import DatasetPreview
from .tips import TIPS

CUSTOM = "(custom)"
_ERROR_STYLE = "QLineEdit, QSpinBox, QComboBox { border: 1px solid #d32f2f; }"
_INT_MAX = 2**31 - 1


def format_float(x: float) -> str:
    """Short text for a float field (1e-05 rather than 0.00001, 0.05 rather than 5e-02)."""
    return f"{x:g}"


class BuilderPanel(QWidget):
    """Form for a RunConfig plus a preset picker; emits the config (or None) on every edit."""

    #: The current config when valid, None when not.
    config_changed = Signal(object)
    #: True when the form holds a valid config (Run may start).
    validity_changed = Signal(bool)
    #: The data set (or its size, noise, seed) changed: a new preview is wanted.
    preview_wanted = Signal(object)
    #: A preset was applied (its name).
    preset_applied = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._base = RunConfig()
        self._preset: Optional[Preset] = None
        self._schedule: tuple[Scheduled, ...] = ()
        self._config: Optional[RunConfig] = self._base
        self._error = ""
        self._valid = True
        self._loading = False
        self._preview_key: Optional[tuple] = None

        # The form scrolls; the error line stays in view under it, whatever is scrolled.
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(2)
        self.form = QWidget()
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.form)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.locked_label = QLabel("A run is active: change it with the live toggles, or Reset (R) to edit the network.")
        self.locked_label.setWordWrap(True)
        self.locked_label.setContentsMargins(6, 4, 6, 2)
        self.locked_label.setStyleSheet("color: #1565c0;")
        self.locked_label.hide()
        root.addWidget(self.locked_label)
        root.addWidget(self.scroll, 1)
        outer = QVBoxLayout(self.form)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(6)

        # ---------------------------------------------------------- preset
        preset_box = QGroupBox("Preset")
        pl = QVBoxLayout(preset_box)
        self.preset = QComboBox()
        self.preset.addItem(CUSTOM)
        for name in preset_names():
            self.preset.addItem(name)
        self.preset.setToolTip(TIPS["preset"])
        self.preset_description = QLabel("")
        self.preset_description.setWordWrap(True)
        self.preset_description.setStyleSheet("color: palette(mid);")
        srow = QHBoxLayout()
        self.schedule_label = QLabel("No scheduled events")
        self.schedule_label.setWordWrap(True)
        self.schedule_label.setToolTip(TIPS["schedule"])
        self.clear_schedule = QPushButton("Clear")
        self.clear_schedule.setToolTip(TIPS["clear_schedule"])
        self.clear_schedule.setEnabled(False)
        srow.addWidget(self.schedule_label, 1)
        srow.addWidget(self.clear_schedule)
        pl.addWidget(self.preset)
        pl.addWidget(self.preset_description)
        pl.addLayout(srow)
        outer.addWidget(preset_box)

        # ---------------------------------------------------------- data
        data_box = QGroupBox("Data")
        dl = QFormLayout(data_box)
        self.dataset = self._combo(DATASETS, "dataset")
        self.preview = DatasetPreview()
        dl.addRow("Dataset", self.dataset)
        dl.addRow(self.preview)
        outer.addWidget(data_box)

        # ---------------------------------------------------------- network
        net_box = QGroupBox("Network")
        nl = QFormLayout(net_box)
        self.depth = self._spin(1, 200, "depth")
        self.width = self._spin(1, 2048, "width")
        self.activation = self._combo(ACTIVATIONS, "activation")
        self.init = self._combo(INITS, "init")
        self.init_std = self._line("init_std")
        self.init_scale = self._line("init_scale")
        self.batchnorm = QCheckBox("Batch norm after each hidden layer")
        self.batchnorm.setToolTip(TIPS["batchnorm"])
        nl.addRow("Hidden layers", self.depth)
        nl.addRow("Width", self.width)
        nl.addRow("Activation", self.activation)
        nl.addRow("Init", self.init)
        nl.addRow("Init std", self.init_std)
        nl.addRow("Init scale", self.init_scale)
        nl.addRow(self.batchnorm)
        self._init_std_label = nl.labelForField(self.init_std)
        self._init_scale_label = nl.labelForField(self.init_scale)
        outer.addWidget(net_box)

        # ---------------------------------------------------------- training
        train_box = QGroupBox("Training")
        tl = QFormLayout(train_box)
        self.optimizer = self._combo(OPTIMIZERS, "optimizer")
        self.lr = self._line("lr")
        self.batch_size = self._spin(1, 1_000_000, "batch_size")
        self.clip_mode = self._combo(CLIP_MODES, "clip_mode")
        self.clip_threshold = self._line("clip_threshold")
        self.steps = self._spin(1, 100_000_000, "steps")
        self.seed = self._spin(0, _INT_MAX, "seed")
        self.stats_every = self._spin(1, 1_000_000, "stats_every")
        tl.addRow("Optimizer", self.optimizer)
        tl.addRow("Learning rate", self.lr)
        tl.addRow("Batch size", self.batch_size)
        tl.addRow("Clipping", self.clip_mode)
        tl.addRow("Clip threshold", self.clip_threshold)
        tl.addRow("Max steps", self.steps)
        tl.addRow("Seed", self.seed)
        tl.addRow("Stats every", self.stats_every)
        self._clip_threshold_label = tl.labelForField(self.clip_threshold)
        outer.addWidget(train_box)

        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d32f2f; font-weight: bold;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setContentsMargins(6, 2, 6, 4)
        self.error_label.hide()
        outer.addStretch(1)
        root.addWidget(self.error_label)

        self._fields: dict[str, QWidget] = {
            "dataset": self.dataset,
            "depth": self.depth,
            "width": self.width,
            "activation": self.activation,
            "init": self.init,
            "init_std": self.init_std,
            "init_scale": self.init_scale,
            "batchnorm": self.batchnorm,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "clip_mode": self.clip_mode,
            "clip_threshold": self.clip_threshold,
            "steps": self.steps,
            "seed": self.seed,
            "stats_every": self.stats_every,
        }

        self.preset.activated.connect(self._on_preset_activated)
        self.clear_schedule.clicked.connect(self._on_clear_schedule)
        for w in self._fields.values():
            if isinstance(w, QComboBox):
                w.currentIndexChanged.connect(self._on_edited)
            elif isinstance(w, QSpinBox):
                w.valueChanged.connect(self._on_edited)
            elif isinstance(w, QLineEdit):
                w.textChanged.connect(self._on_edited)
            elif isinstance(w, QCheckBox):
                w.toggled.connect(self._on_edited)
        self.set_config(self._base)

    # ------------------------------------------------------------ widgets
    def _combo(self, items: tuple[str, ...], key: str) -> QComboBox:
        w = QComboBox()
        w.addItems(list(items))
        w.setToolTip(TIPS[key])
        w.setObjectName(key)
        return w

    def _spin(self, lo: int, hi: int, key: str) -> QSpinBox:
        w = QSpinBox()
        w.setRange(lo, hi)
        w.setToolTip(TIPS[key])
        w.setObjectName(key)
        w.setKeyboardTracking(True)
        return w

    def _line(self, key: str) -> QLineEdit:
        w = QLineEdit()
        w.setToolTip(TIPS[key])
        w.setObjectName(key)
        return w

    # ------------------------------------------------------------ public API
    def config(self) -> Optional[RunConfig]:
        """The validated config, or None while the form is invalid (see ``error()``)."""
        return self._config

    def error(self) -> str:
        return self._error

    def is_valid(self) -> bool:
        return self._valid

    def schedule(self) -> tuple[Scheduled, ...]:
        """Scheduled mid-run events of the applied preset (empty after Clear)."""
        return self._schedule

    def preset_name(self) -> str:
        return self._preset.name if self._preset is not None else ""

    def run_label(self) -> str:
        """What the run's ``start`` event says: the preset, and whether it was edited."""
        if self._preset is None:
            return "window"
        if self._config == self._preset.config:
            return f"preset {self._preset.name}"
        return f"preset {self._preset.name} (edited)"

    def set_config(self, config: RunConfig) -> None:
        """Fill the form from ``config`` (fields the form lacks keep their values)."""
        self._loading = True
        try:
            self._base = config
            self.dataset.setCurrentText(config.dataset)
            self.depth.setValue(config.depth)
            self.width.setValue(config.width)
            self.activation.setCurrentText(config.activation)
            self.init.setCurrentText(config.init)
            self.init_std.setText(format_float(config.init_std))
            self.init_scale.setText(format_float(config.init_scale))
            self.batchnorm.setChecked(config.batchnorm)
            self.optimizer.setCurrentText(config.optimizer)
            self.lr.setText(format_float(config.lr))
            self.batch_size.setValue(min(config.batch_size, self.batch_size.maximum()))
            self.clip_mode.setCurrentText(config.clip_mode)
            self.clip_threshold.setText(format_float(config.clip_threshold))
            self.steps.setValue(min(config.steps, self.steps.maximum()))
            self.seed.setValue(min(config.seed, self.seed.maximum()))
            self.stats_every.setValue(config.stats_every)
        finally:
            self._loading = False
        self._on_edited()

    def set_locked(self, locked: bool) -> None:
        """Lock the form during a run (it stays readable and scrollable); Reset unlocks it."""
        self.form.setEnabled(not locked)
        self.locked_label.setVisible(locked)

    def set_schedule(self, schedule: tuple[Scheduled, ...]) -> None:
        self._schedule = tuple(schedule)
        self._show_schedule()

    def apply_preset(self, name: str) -> Preset:
        """Load preset ``name`` into the form and schedule its events (ConfigError if unknown)."""
        preset = load_preset(name)
        self._preset = None
        self.set_config(preset.config)
        self._preset = preset
        self._schedule = preset.events
        i = self.preset.findText(name)
        if i < 0:
            self.preset.addItem(name)
            i = self.preset.count() - 1
        self.preset.setCurrentIndex(i)
        self.preset_description.setText(preset.description)
        self._show_schedule()
        self._on_edited()
        self.preset_applied.emit(name)
        return preset

    def restore_preset(self, name: str) -> None:
        """Select ``name`` in the picker after a restart, without reloading its config."""
        if not name:
            return
        try:
            preset = load_preset(name)
        except ConfigError:
            return
        self._preset = preset
        self.preset.setCurrentIndex(max(0, self.preset.findText(name)))
        self.preset_description.setText(preset.description)

    def set_preview(self, preview: object) -> None:
        """Show a ui.worker.Preview if it is for the current data set."""
        if getattr(preview, "dataset", None) != self.dataset.currentText():
            return
        self.preview.set_points(preview.dataset, preview.points, preview.labels, preview.n_inputs, preview.note)  # type: ignore[attr-defined]

    # ------------------------------------------------------------ slots
    @Slot(int)
    def _on_preset_activated(self, index: int) -> None:
        name = self.preset.itemText(index)
        if name == CUSTOM:
            self._preset = None
            self.preset_description.setText("")
            self._schedule = ()
            self._show_schedule()
            self._on_edited()
            return
        try:
            self.apply_preset(name)
        except ConfigError as exc:
            self._show_error(f"preset {name!r} cannot be loaded: {exc}")

    @Slot()
    def _on_clear_schedule(self) -> None:
        self._schedule = ()
        self._show_schedule()

    @Slot()
    def _on_edited(self, *_: object) -> None:
        if self._loading:
            return
        init = self.init.currentText()
        self.init_std.setEnabled(init == "normal")
        self.init_scale.setEnabled(init == "uniform")
        self.clip_threshold.setEnabled(self.clip_mode.currentText() != "none")
        config, error = self._read()
        was_valid = self._valid
        self._config = config
        self._valid = config is not None
        self._show_error(error)
        self.config_changed.emit(config)
        if was_valid != self._valid:
            self.validity_changed.emit(self._valid)
        if config is not None:
            key = (config.dataset, config.n_samples, config.noise, config.seed, config.test_fraction)
            if key != self._preview_key:
                self._preview_key = key
                self.preview.set_loading(config.dataset)
                self.preview_wanted.emit(config)

    # ------------------------------------------------------------ reading
    def _read(self) -> tuple[Optional[RunConfig], str]:
        values: dict[str, object] = {
            "dataset": self.dataset.currentText(),
            "depth": self.depth.value(),
            "width": self.width.value(),
            "activation": self.activation.currentText(),
            "init": self.init.currentText(),
            "batchnorm": self.batchnorm.isChecked(),
            "optimizer": self.optimizer.currentText(),
            "batch_size": self.batch_size.value(),
            "clip_mode": self.clip_mode.currentText(),
            "steps": self.steps.value(),
            "seed": self.seed.value(),
            "stats_every": self.stats_every.value(),
        }
        for key in ("lr", "init_std", "init_scale", "clip_threshold"):
            w = self._fields[key]
            assert isinstance(w, QLineEdit)
            text = w.text().strip()
            if not w.isEnabled():  # not used by this config: keep the last good value
                continue
            try:
                x = float(text)
            except ValueError:
                return None, f"{key} = {text!r}: not a number; type a finite number > 0, e.g. 0.05"
            if not math.isfinite(x):
                return None, f"{key} = {text!r}: must be a finite number > 0"
            values[key] = x
        try:
            return replace(self._base, **values).validate(), ""
        except ConfigError as exc:
            return None, str(exc)
        except (TypeError, ValueError) as exc:
            return None, str(exc)

    def _show_error(self, error: str) -> None:
        self._error = error
        for w in self._fields.values():
            w.setStyleSheet("")
        if not error:
            self.error_label.hide()
            self.error_label.setText("")
            return
        self.error_label.setText(error)
        self.error_label.show()
        for name in _fields_named(error):
            w = self._fields.get(name)
            if w is not None:
                w.setStyleSheet(_ERROR_STYLE)

    def _show_schedule(self) -> None:
        if self._schedule:
            self.schedule_label.setText("Scheduled: " + ", ".join(s.text() for s in self._schedule))
        else:
            self.schedule_label.setText("No scheduled events")
        self.clear_schedule.setEnabled(bool(self._schedule))


def _fields_named(error: str) -> list[str]:
    """Field names an engine message starts with (``"depth = 5, width = 9: ..."``)."""
    head = error.split(":", 1)[0]
    return re.findall(r"\b([a-z_]+) = ", head + ":")
