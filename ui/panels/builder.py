"""The network builder: every RunConfig field a student needs, validated as it is typed.

Why validate through ``RunConfig.validate()`` instead of re-implementing the
rules: the form then can never accept a value the engine refuses, and the
message shown inline is the engine's own, naming the field and what is allowed.
Ranges the widgets can enforce (spin boxes) are enforced; the rest is shown
inline and Run stays disabled until it is fixed.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

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
from gradsim.config import (
    ACTIVATIONS, ALL_DATASETS, CLIP_MODES, INITS, MODEL_DATASETS, MODEL_DEFAULTS, MODELS, NORM_POSITIONS, OPTIMIZERS,
    RECURRENT_MODELS, RNN_ACTIVATIONS, SCALED_INITS, ConfigError, RunConfig,
)
from gradsim.data.sequences import SEQUENCE_DATASETS, sequence_shape
from gradsim.teaching.presets import Preset, load_preset, preset_names

from .dataset_preview import DatasetPreview
from .tips import TIPS
from .wheel_guard import WheelSafeComboBox, WheelSafeSpinBox

CUSTOM = "(custom)"
_ERROR_STYLE = "QLineEdit, QSpinBox, QComboBox { border: 1px solid #d32f2f; }"
_INT_MAX = 2**31 - 1


def format_float(x: float) -> str:
    """Short text for a float field (1e-05 rather than 0.00001, 0.05 rather than 5e-02)."""
    return f"{x:g}"


@dataclass(frozen=True)
class FormField:
    """One RunConfig field in the form: the one table the form is built, filled and read from."""

    name: str  # the RunConfig field (and the widget's attribute and object name)
    label: str  # the row's label; for a check box, its text
    group: str  # the box it sits in: "data", "network" or "training"
    kind: str  # "choice" (QComboBox), "int" (QSpinBox), "float" (QLineEdit), "bool" (QCheckBox),
    # "optfloat" (QLineEdit; empty means None, the engine's default), "text" (QLineEdit, a string)
    choices: tuple[str, ...] = ()
    lo: int = 0
    hi: int = _INT_MAX
    #: Whether the field matters for the other values of the form (else disabled, last good value kept).
    used_when: Optional[Callable[[dict[str, Any]], bool]] = None
    #: Hide the row (not only disable it) while ``used_when`` is false: a family's own fields
    #: would crowd every other family's form.
    hide_unused: bool = False


#: The form, in order. A new RunConfig field the student may set is one line here.
def _mlp_only(v: dict[str, Any]) -> bool:
    return v["model"] == "mlp"


def _sequence_model(v: dict[str, Any]) -> bool:
    return v["model"] != "mlp"


def _transformer(v: dict[str, Any]) -> bool:
    return v["model"] == "transformer"


FORM_FIELDS: tuple[FormField, ...] = (
    # every dataset some family takes; the combo lists only the chosen family's (_show_datasets)
    FormField("dataset", "Dataset", "data", "choice", ALL_DATASETS),
    FormField("seq_len", "Sequence length", "data", "int", lo=2, hi=1000, used_when=_sequence_model),
    FormField("model", "Model", "network", "choice", MODELS),
    FormField("depth", "Hidden layers", "network", "int", lo=1, hi=200),
    FormField("width", "Width", "network", "int", lo=1, hi=2048),
    FormField("activation", "Activation", "network", "choice", ACTIVATIONS),
    FormField("init", "Init", "network", "choice", INITS),
    FormField("init_std", "Init std", "network", "float", used_when=lambda v: SCALED_INITS.get(v["init"]) == "init_std"),
    FormField("init_scale", "Init scale", "network", "float", used_when=lambda v: SCALED_INITS.get(v["init"]) == "init_scale"),
    FormField("recurrent_init", "Recurrent init", "network", "text", used_when=lambda v: v["model"] in RECURRENT_MODELS),
    FormField("forget_bias", "Forget-gate bias", "network", "float", used_when=lambda v: v["model"] == "lstm"),
    FormField("heads", "Attention heads", "network", "int", lo=1, hi=64, used_when=_transformer, hide_unused=True),
    FormField("norm_position", "Layer norm position", "network", "choice", NORM_POSITIONS, used_when=_transformer, hide_unused=True),
    FormField("batchnorm", "Batch norm after each hidden layer", "network", "bool", used_when=_mlp_only),
    FormField("layernorm", "Layer norm after each hidden layer", "network", "bool", used_when=_mlp_only),
    FormField("residual", "Residual (skip) connections", "network", "bool", used_when=_mlp_only),
    FormField("residual_alpha", "Residual alpha", "network", "optfloat", used_when=lambda v: _mlp_only(v) and bool(v["residual"])),
    FormField("optimizer", "Optimizer", "training", "choice", OPTIMIZERS),
    FormField("lr", "Learning rate", "training", "float"),
    FormField("batch_size", "Batch size", "training", "int", lo=1, hi=1_000_000),
    FormField("warmup_steps", "Warm-up steps", "training", "int", lo=0, hi=100_000_000, used_when=_transformer, hide_unused=True),
    FormField("clip_mode", "Clipping", "training", "choice", CLIP_MODES),
    FormField("clip_threshold", "Clip threshold", "training", "float", used_when=lambda v: v["clip_mode"] != "none"),
    FormField("steps", "Max steps", "training", "int", lo=1, hi=100_000_000),
    FormField("seed", "Seed", "training", "int", lo=0, hi=_INT_MAX),
    FormField("stats_every", "Stats every", "training", "int", lo=1, hi=1_000_000),
)


def watched_text(session: Any, path: str) -> str:
    """What the builder says while the watched session ``session`` (opened from ``path``) is shown."""
    cfg = session.config
    module = cfg.get("module")
    n_params = cfg.get("n_params")
    what = f"{module}, " if isinstance(module, str) and module else ""
    params = f", {n_params:,} parameters" if isinstance(n_params, int) and not isinstance(n_params, bool) else ""
    return (f"<b>Watched model:</b> {what}{len(session.units)} units{params}, from {html.escape(path)}; "
            "not built here.<br><br>Your own script trained it under gradsim.watch, so this form has nothing "
            "to set. Close the session (Close, on the session bar) to build a network here again.")


class BuilderPanel(QWidget):
    """Form for a RunConfig plus a preset picker; emits the config (or None) on every edit."""

    #: True when the form holds a valid config (Run may start).
    validity_changed = Signal(bool)
    #: The data set (or its size, noise, seed) changed: a new preview is wanted.
    preview_wanted = Signal(object)
    #: A preset was loaded into the form (the gradsim Preset): the plots may open on its view.
    preset_applied = Signal(object)

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
        #: The family whose datasets the dataset combo lists.
        self._listed_model = ""

        # The form scrolls; the error line stays in view under it, whatever is scrolled.
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(2)
        self.form = QWidget()
        # Not ``self.scroll``: that would shadow QWidget.scroll(dx, dy).
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidget(self.form)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.locked_label = QLabel("A run is active: change it with the live toggles, or Reset (R) to edit the network.")
        self.locked_label.setWordWrap(True)
        self.locked_label.setContentsMargins(6, 4, 6, 2)
        self.locked_label.setStyleSheet("color: #1565c0;")
        self.locked_label.hide()
        root.addWidget(self.locked_label)
        # Shown instead of the form while a watched session (a user's own model) is on screen:
        # the form describes GradSim's simulator, which did not train that model.
        self.watched_label = QLabel("")
        self.watched_label.setWordWrap(True)
        self.watched_label.setContentsMargins(6, 6, 6, 6)
        self.watched_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.watched_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.watched_label.hide()
        self._watched = False
        root.addWidget(self.watched_label)
        root.addWidget(self.scroll_area, 1)
        outer = QVBoxLayout(self.form)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(6)

        # ---------------------------------------------------------- preset
        preset_box = QGroupBox("Preset")
        pl = QVBoxLayout(preset_box)
        self.preset = WheelSafeComboBox()  # a wheel turn while scrolling must not load a preset
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

        # ---------------------------------------------------------- the fields, from FORM_FIELDS
        self._fields: dict[str, QWidget] = {}
        forms: dict[str, QFormLayout] = {}
        #: The form layout of each field, to hide a row (label and widget) by its field.
        self._forms: dict[str, QFormLayout] = {}
        for title, group in (("Data", "data"), ("Network", "network"), ("Training", "training")):
            box = QGroupBox(title)
            forms[group] = QFormLayout(box)
            outer.addWidget(box)
        for f in FORM_FIELDS:
            w = self._make_widget(f)
            setattr(self, f.name, w)  # self.depth, self.lr, ...: what tests and callers reach
            self._fields[f.name] = w
            self._forms[f.name] = forms[f.group]
            if f.kind == "bool":
                forms[f.group].addRow(w)
            else:
                forms[f.group].addRow(f.label, w)
        self.preview = DatasetPreview()
        forms["data"].addRow(self.preview)

        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d32f2f; font-weight: bold;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setContentsMargins(6, 2, 6, 4)
        self.error_label.hide()
        outer.addStretch(1)
        root.addWidget(self.error_label)

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
    def _make_widget(self, f: FormField) -> QWidget:
        w: QWidget
        if f.kind == "choice":
            w = WheelSafeComboBox()
            w.addItems(list(f.choices))
        elif f.kind == "int":
            w = WheelSafeSpinBox()
            w.setRange(f.lo, f.hi)
            w.setKeyboardTracking(True)
        elif f.kind == "float":
            w = QLineEdit()
        elif f.kind == "optfloat":
            w = QLineEdit()
            w.setPlaceholderText("default")
        elif f.kind == "text":
            w = QLineEdit()
        elif f.kind == "bool":
            w = QCheckBox(f.label)
        else:  # pragma: no cover - a typo in FORM_FIELDS
            raise ValueError(f"form field {f.name}: unknown kind {f.kind!r}")
        w.setToolTip(TIPS[f.name])
        w.setObjectName(f.name)
        return w

    @staticmethod
    def _set_value(f: FormField, w: Any, value: Any) -> None:
        if f.kind == "choice":
            w.setCurrentText(str(value))
        elif f.kind == "int":
            w.setValue(min(int(value), w.maximum()))
        elif f.kind == "float":
            w.setText(format_float(float(value)))
        elif f.kind == "optfloat":
            w.setText("" if value is None else format_float(float(value)))
        elif f.kind == "text":
            w.setText(str(value))
        else:
            w.setChecked(bool(value))

    @staticmethod
    def _value(f: FormField, w: Any) -> Any:
        """The widget's value; for a float, its text (parsed by ``_read``)."""
        if f.kind == "choice":
            return w.currentText()
        if f.kind == "int":
            return w.value()
        if f.kind in ("float", "optfloat", "text"):
            return w.text().strip()
        return w.isChecked()

    # ------------------------------------------------------------ public API
    def config(self) -> Optional[RunConfig]:
        """The validated config, or None while the form is invalid (see ``error()``)."""
        return self._config

    def error(self) -> str:
        return self._error

    def is_valid(self) -> bool:
        """Whether Run may start from the form (never while a watched session is shown)."""
        return self._valid and not self._watched

    def show_watched(self, text: Optional[str]) -> None:
        """While a watched session is shown (``text`` says what it is), hide the form: it
        would show the simulator's last config, which has nothing to do with the user's
        model, and Run stays off. ``None``: the form again, as it was."""
        watched = text is not None
        if text is not None:
            self.watched_label.setText(text)
        if watched == self._watched:
            return
        self._watched = watched
        self.watched_label.setVisible(watched)
        self.scroll_area.setVisible(not watched)
        self.error_label.setVisible(not watched and bool(self._error))
        if watched:
            self.locked_label.hide()
        if self._valid:
            self.validity_changed.emit(self.is_valid())

    def showing_watched(self) -> bool:
        return self._watched

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
            self._show_datasets(config.model)
            for f in FORM_FIELDS:
                self._set_value(f, self._fields[f.name], getattr(config, f.name))
        finally:
            self._loading = False
        self._on_edited()

    def set_locked(self, locked: bool) -> None:
        """Lock the form during a run (it stays readable and scrollable); Reset unlocks it."""
        self.form.setEnabled(not locked)
        self.locked_label.setVisible(locked and not self._watched)

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
        self.preset_applied.emit(preset)
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
        dataset = self._fields["dataset"]
        assert isinstance(dataset, QComboBox)
        if getattr(preview, "dataset", None) != dataset.currentText():
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
        model = self._fields["model"]
        assert isinstance(model, QComboBox)
        if model.currentText() != self._listed_model:
            self._switch_family(model.currentText())
        shown = {f.name: self._value(f, self._fields[f.name]) for f in FORM_FIELDS}
        for f in FORM_FIELDS:
            if f.used_when is not None:
                used = f.used_when(shown)
                self._fields[f.name].setEnabled(used)
                if f.hide_unused:
                    self._forms[f.name].setRowVisible(self._fields[f.name], used)
        config, error, bad = self._read()
        was_valid = self._valid
        self._config = config
        self._valid = config is not None
        self._show_error(error, bad)
        if was_valid != self._valid and not self._watched:
            self.validity_changed.emit(self._valid)
        if config is not None:
            key = (config.dataset, config.n_samples, config.noise, config.seed, config.test_fraction, config.seq_len)
            if key != self._preview_key:
                self._preview_key = key
                if config.dataset in SEQUENCE_DATASETS:  # no 2-D picture of a sequence: say what a sample is
                    n_in, n_out = sequence_shape(config.dataset, config.seq_len)
                    what = "a regression target" if config.dataset == "adding" else f"{n_out} classes"
                    self.preview.set_sequence(config.dataset, f"{config.dataset}: sequences of {config.seq_len} steps x {n_in} input(s), {what}")
                else:
                    self.preview.set_loading(config.dataset)
                    self.preview_wanted.emit(config)

    # ------------------------------------------------------------ model families
    def _show_datasets(self, model: str) -> None:
        """List in the dataset combo only what ``model``'s family trains on."""
        if model == self._listed_model or model not in MODEL_DATASETS:
            return
        combo = self._fields["dataset"]
        assert isinstance(combo, QComboBox)
        current = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(list(MODEL_DATASETS[model]))
        combo.setCurrentText(current)  # stays if this family takes it too
        combo.blockSignals(False)
        self._listed_model = model

    def _switch_family(self, model: str) -> None:
        """The student picked another family: keep what it can use, replace what it cannot
        (its typical depth and a dataset it takes; no MLP-only layers; an activation it has)."""
        self._loading = True
        try:
            self._show_datasets(model)
            defaults = MODEL_DEFAULTS.get(model, {})
            values = {f.name: self._value(f, self._fields[f.name]) for f in FORM_FIELDS}
            changes: dict[str, Any] = {}
            if values["dataset"] not in MODEL_DATASETS.get(model, ()):
                changes["dataset"] = defaults.get("dataset", MODEL_DATASETS.get(model, ("",))[0])
            if "depth" in defaults and model != "mlp":
                changes["depth"] = defaults["depth"]
            if model != "mlp":
                changes.update(batchnorm=False, layernorm=False, residual=False)
            if model != "transformer":  # hidden for the other families: a warm-up must not hide there
                changes["warmup_steps"] = 0
            if model == "transformer" and isinstance(values["width"], int) and values["width"] % values["heads"]:
                # a width taken from another family need not split into the heads: the most heads it does
                changes["heads"] = max(h for h in range(1, values["heads"] + 1) if values["width"] % h == 0)
            if model in RECURRENT_MODELS and values["activation"] not in (RNN_ACTIVATIONS if model == "rnn" else ("tanh",)):
                changes["activation"] = "tanh"
            for f in FORM_FIELDS:
                if f.name in changes:
                    self._set_value(f, self._fields[f.name], changes[f.name])
        finally:
            self._loading = False

    # ------------------------------------------------------------ reading
    def _read(self) -> tuple[Optional[RunConfig], str, Optional[str]]:
        """(config, "", None) when valid, else (None, the message, the field at fault)."""
        # Any: each field has its own type, checked by RunConfig.validate() below.
        values: dict[str, Any] = {}
        for f in FORM_FIELDS:
            w = self._fields[f.name]
            value = self._value(f, w)
            text = value  # for float fields, the stripped text that _value returns
            if f.kind == "float":
                if not w.isEnabled():  # not used by this config: keep the last good value
                    continue
                try:
                    value = float(value)
                except ValueError:
                    return None, f"{f.name} = {text!r}: not a number; type a finite number > 0, e.g. 0.05", f.name
                if not math.isfinite(value):
                    return None, f"{f.name} = {text!r}: must be a finite number > 0", f.name
            if f.kind in ("optfloat", "text"):
                if not w.isEnabled():
                    continue
            if f.kind == "optfloat":
                try:
                    value = float(value) if value else None
                except ValueError:
                    return None, f"{f.name} = {text!r}: not a number; leave it empty for the default or type a number > 0", f.name
            values[f.name] = value
        try:
            return replace(self._base, **values).validate(), "", None
        except ConfigError as exc:
            return None, str(exc), exc.field
        except (TypeError, ValueError) as exc:
            return None, str(exc), None

    def _show_error(self, error: str, field: Optional[str] = None) -> None:
        """Show ``error`` under the form and outline the field at fault (ConfigError.field)."""
        self._error = error
        for w in self._fields.values():
            w.setStyleSheet("")
        if not error:
            self.error_label.hide()
            self.error_label.setText("")
            return
        self.error_label.setText(error)
        self.error_label.setVisible(not self._watched)
        bad = self._fields.get(field or "")
        if bad is not None:
            bad.setStyleSheet(_ERROR_STYLE)

    def _show_schedule(self) -> None:
        if self._schedule:
            self.schedule_label.setText("Scheduled: " + ", ".join(s.text() for s in self._schedule))
        else:
            self.schedule_label.setText("No scheduled events")
        self.clear_schedule.setEnabled(bool(self._schedule))

