"""Live toggles: change a running network and watch the gradients react.

Why each toggle only *emits a Command*: the panel never touches the trainer.
The window puts the Command on the worker's queue, the worker applies it at
the next step boundary, and the resulting Event comes back in a snapshot, so
what the event log and the plot markers show is what the run really did.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gradsim.commands import (
    Annotate,
    Command,
    CommandError,
    Reinit,
    SetActivation,
    SetBatchNorm,
    SetClip,
    SetLayerNorm,
    SetLR,
    SetNormPosition,
    SetOptimizer,
    SetForgetBias,
    SetRecurrentInit,
    SetResidual,
    SetWarmup,
    command_from_event,
)
from gradsim.config import ACTIVATIONS, CLIP_MODES, INITS, NORM_POSITIONS, OPTIMIZERS, SCALED_INITS, RunConfig
from gradsim.models.family import UnitError, family_for
from gradsim.events import PREDICTION
from gradsim.session.store import Event
from gradsim.teaching.predictions import Prediction, format_prediction

from .builder import format_float
from .prediction import PredictionDialog
from .try_tips import try_tips_html
from .tips import TIPS


class TogglesPanel(QWidget):
    """Controls that send Commands to the running trainer (enabled only during a run)."""

    command_requested = Signal(object)  # a gradsim.commands.Command

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        outer.addLayout(grid)
        row = 0

        self.activation = self._combo(ACTIVATIONS, "live_activation")
        self.activation_apply = self._button("Apply", "live_activation_apply")
        grid.addWidget(QLabel("Activation"), row, 0)
        grid.addWidget(self.activation, row, 1, 1, 2)
        grid.addWidget(self.activation_apply, row, 3)
        row += 1

        self.init = self._combo(INITS, "live_init")
        self.init.setCurrentText("xavier_normal")
        self.init_scale = QLineEdit("0.05")
        self.init_scale.setToolTip(TIPS["live_init_scale"])
        self.init_scale.setPlaceholderText("std")
        self.init_scale.setMaximumWidth(70)
        self.reinit = self._button("Re-init", "live_reinit")
        grid.addWidget(QLabel("Re-initialize"), row, 0)
        grid.addWidget(self.init, row, 1)
        grid.addWidget(self.init_scale, row, 2)
        grid.addWidget(self.reinit, row, 3)
        row += 1

        self.batchnorm = QCheckBox("Batch norm on")
        self.batchnorm.setToolTip(TIPS["live_batchnorm"])
        grid.addWidget(QLabel("Batch norm"), row, 0)
        grid.addWidget(self.batchnorm, row, 1, 1, 3)
        row += 1

        self.layernorm = QCheckBox("Layer norm on")
        self.layernorm.setToolTip(TIPS["live_layernorm"])
        grid.addWidget(QLabel("Layer norm"), row, 0)
        grid.addWidget(self.layernorm, row, 1, 1, 3)
        row += 1

        self.residual = QCheckBox("Residual on")
        self.residual.setToolTip(TIPS["live_residual"])
        self.residual_alpha = QLineEdit("")
        self.residual_alpha.setPlaceholderText("α")
        self.residual_alpha.setToolTip(TIPS["live_residual_alpha"])
        self.residual_alpha.setMaximumWidth(70)
        grid.addWidget(QLabel("Skip connections"), row, 0)
        grid.addWidget(self.residual, row, 1)
        grid.addWidget(self.residual_alpha, row, 2)
        row += 1

        self.clip_mode = self._combo(CLIP_MODES, "live_clip_mode")
        self.clip_threshold = QLineEdit("1")
        self.clip_threshold.setToolTip(TIPS["live_clip_threshold"])
        self.clip_threshold.setMaximumWidth(70)
        self.clip_apply = self._button("Apply", "live_clip_apply")
        grid.addWidget(QLabel("Clipping"), row, 0)
        grid.addWidget(self.clip_mode, row, 1)
        grid.addWidget(self.clip_threshold, row, 2)
        grid.addWidget(self.clip_apply, row, 3)
        row += 1

        self.lr = QLineEdit("0.05")
        self.lr.setToolTip(TIPS["live_lr"])
        self.lr_apply = self._button("Apply", "live_lr_apply")
        grid.addWidget(QLabel("Learning rate"), row, 0)
        grid.addWidget(self.lr, row, 1, 1, 2)
        grid.addWidget(self.lr_apply, row, 3)
        row += 1

        self.optimizer = self._combo(OPTIMIZERS, "live_optimizer")
        self.optimizer_apply = self._button("Apply", "live_optimizer_apply")
        grid.addWidget(QLabel("Optimizer"), row, 0)
        grid.addWidget(self.optimizer, row, 1, 1, 2)
        grid.addWidget(self.optimizer_apply, row, 3)
        row += 1

        # Recurrent nets only (the panel disables what the run's family has no command for).
        self.recurrent_init = QLineEdit("orthogonal")
        self.recurrent_init.setToolTip(TIPS["live_recurrent_init"])
        self.recurrent_init.setPlaceholderText("orthogonal, identity, normal:G")
        self.recurrent_init_apply = self._button("Re-init", "live_recurrent_init_apply")
        grid.addWidget(QLabel("Recurrent W_hh"), row, 0)
        grid.addWidget(self.recurrent_init, row, 1, 1, 2)
        grid.addWidget(self.recurrent_init_apply, row, 3)
        row += 1

        self.forget_bias = QLineEdit("1")
        self.forget_bias.setToolTip(TIPS["live_forget_bias"])
        self.forget_bias.setMaximumWidth(70)
        self.forget_bias_apply = self._button("Apply", "live_forget_bias_apply")
        grid.addWidget(QLabel("Forget bias"), row, 0)
        grid.addWidget(self.forget_bias, row, 1, 1, 2)
        grid.addWidget(self.forget_bias_apply, row, 3)
        row += 1

        self.readouts = QLabel("")
        self.readouts.setToolTip(TIPS["readouts"])
        self.readouts.setWordWrap(True)
        grid.addWidget(self.readouts, row, 0, 1, 4)
        row += 1
        #: Which live commands the run's family takes (None: any; no run yet).
        self._family_commands: Optional[frozenset[str]] = None

        # A transformer's own toggles, shown only for transformer runs (sync_config).
        self.norm_position = self._combo(NORM_POSITIONS, "live_norm_position")
        self.norm_apply = self._button("Apply", "live_norm_apply")
        self.norm_label = QLabel("Layer norms")
        grid.addWidget(self.norm_label, row, 0)
        grid.addWidget(self.norm_position, row, 1, 1, 2)
        grid.addWidget(self.norm_apply, row, 3)
        row += 1
        self.warmup = QLineEdit("0")
        self.warmup.setToolTip(TIPS["live_warmup"])
        self.warmup.setPlaceholderText("steps")
        self.warmup_apply = self._button("Apply", "live_warmup_apply")
        self.warmup_label = QLabel("Warm-up")
        grid.addWidget(self.warmup_label, row, 0)
        grid.addWidget(self.warmup, row, 1, 1, 2)
        grid.addWidget(self.warmup_apply, row, 3)
        row += 1
        self._transformer_rows = (self.norm_label, self.norm_position, self.norm_apply, self.warmup_label, self.warmup, self.warmup_apply)
        for w in self._transformer_rows:
            w.setVisible(False)

        self.predict = QCheckBox("Predict before toggling")
        self.predict.setToolTip(
            "Before a change applies, say what the early layers' backprop signal will do (grows, shrinks or stays, "
            "and by how many decades); your prediction is recorded with the run and shown beside the outcome. "
            "On by default in exercise mode."
        )
        self.outcome_label = QLabel("")
        self.outcome_label.setWordWrap(True)
        self.outcome_label.setTextFormat(Qt.TextFormat.RichText)
        self.outcome_label.setStyleSheet("color: palette(text); border: 1px solid palette(mid); padding: 4px;")
        self.outcome_label.setToolTip("Your last prediction and what the run did: the median ||dL/dz|| of layer 1 after the toggle vs before.")
        self.outcome_label.hide()
        #: The open prediction dialog (None when none waits) and how to undo its toggle's click on Cancel.
        self.pending: Optional[PredictionDialog] = None
        self._pending_revert: Optional[Callable[[], None]] = None

        self.hint = QLabel("Start a run to change it live; each change applies at the next step.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid);")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d32f2f;")
        self.error_label.hide()
        self.try_box = QLabel(try_tips_html(None))
        self.try_box.setWordWrap(True)
        self.try_box.setTextFormat(Qt.TextFormat.RichText)
        self.try_box.setStyleSheet("color: palette(text); margin-top: 8px;")
        self.try_box.setToolTip("Common fixes for vanishing and exploding gradients, to try on the running network.")
        outer.addWidget(self.predict)
        outer.addWidget(self.outcome_label)
        outer.addWidget(self.error_label)
        outer.addWidget(self.hint)
        outer.addWidget(self.try_box)
        outer.addStretch(1)

        self.activation_apply.clicked.connect(self._on_activation_apply)
        self.reinit.clicked.connect(self._on_reinit)
        self.batchnorm.clicked.connect(self._on_batchnorm_clicked)
        self.layernorm.clicked.connect(self._on_layernorm_clicked)
        self.residual.clicked.connect(self._on_residual_clicked)
        self.residual_alpha.returnPressed.connect(self._on_residual_alpha_entered)
        self.clip_apply.clicked.connect(self._on_clip_apply)
        self.lr_apply.clicked.connect(self._on_lr_apply)
        self.lr.returnPressed.connect(self._on_lr_apply)
        self.optimizer_apply.clicked.connect(self._on_optimizer_apply)
        self.recurrent_init_apply.clicked.connect(self._on_recurrent_init_apply)
        self.recurrent_init.returnPressed.connect(self._on_recurrent_init_apply)
        self.forget_bias_apply.clicked.connect(self._on_forget_bias_apply)
        self.forget_bias.returnPressed.connect(self._on_forget_bias_apply)
        self.norm_apply.clicked.connect(self._on_norm_apply)
        self.warmup_apply.clicked.connect(self._on_warmup_apply)
        self.warmup.returnPressed.connect(self._on_warmup_apply)
        self.init.currentIndexChanged.connect(self._on_init_changed)
        self.clip_mode.currentIndexChanged.connect(self._on_clip_mode_changed)
        self._on_init_changed()
        self._on_clip_mode_changed()
        self.set_live(False)

    def _combo(self, items: tuple[str, ...], key: str) -> QComboBox:
        w = QComboBox()
        w.addItems(list(items))
        w.setToolTip(TIPS[key])
        return w

    def _button(self, text: str, key: str) -> QPushButton:
        w = QPushButton(text)
        w.setToolTip(TIPS[key])
        return w

    # ------------------------------------------------------------ public
    def set_live(self, live: bool) -> None:
        """Enable the controls while a run can take commands."""
        for w in self.findChildren(QWidget):
            if w not in (self.hint, self.error_label, self.try_box, self.predict, self.outcome_label, self.readouts):
                w.setEnabled(live)
        if live:
            self._disable_foreign_controls()
        if not live and self.pending is not None:
            self.pending.reject()  # the run that would take the toggle is gone
        if live:
            self._on_init_changed()
            self._on_clip_mode_changed()
        self.hint.setVisible(not live)

    def _controls_by_command(self) -> dict[str, tuple[QWidget, ...]]:
        """The controls that send each live command (by its key)."""
        return {
            "activation": (self.activation, self.activation_apply),
            "init": (self.init, self.init_scale, self.reinit),
            "batchnorm": (self.batchnorm,),
            "layernorm": (self.layernorm,),
            "residual": (self.residual, self.residual_alpha),
            "clip": (self.clip_mode, self.clip_threshold, self.clip_apply),
            "lr": (self.lr, self.lr_apply),
            "optimizer": (self.optimizer, self.optimizer_apply),
            "recurrent_init": (self.recurrent_init, self.recurrent_init_apply),
            "forget_bias": (self.forget_bias, self.forget_bias_apply),
        }

    def _disable_foreign_controls(self) -> None:
        """Grey out what the run's family has no command for (an MLP has no W_hh, an RNN no batch norm)."""
        if self._family_commands is None:
            return
        for key, widgets in self._controls_by_command().items():
            if key not in self._family_commands:
                for w in widgets:
                    w.setEnabled(False)

    @Slot(object)
    def show_readouts(self, readouts: object) -> None:
        """Show the engine's readouts (gradsim.service.protocol.Readouts; None clears them)."""
        if readouts is None:
            self.readouts.setText("")
            return
        parts = []
        radius = getattr(readouts, "spectral_radius", None)
        if radius is not None:
            parts.append(f"W_hh spectral radius {radius:.3g}")
        clipped = float(getattr(readouts, "clipped_fraction", math.nan))
        if math.isfinite(clipped):
            parts.append(f"clipped steps {clipped:.0%}")
        self.readouts.setText(" · ".join(parts))

    def sync_config(self, config: RunConfig) -> None:
        """Show a new run's starting state."""
        try:
            self._family_commands = family_for(config).commands
        except UnitError:
            self._family_commands = None
        self.show_readouts(None)
        self.try_box.setText(try_tips_html(getattr(config, "model", "mlp")))
        if self.lr_apply.isEnabled():  # already live (the state changed first): grey out for this family
            self.set_live(True)
        self.recurrent_init.setText(config.recurrent_init)
        self.forget_bias.setText(format_float(config.forget_bias))
        self._set_quietly(self.activation, config.activation)
        self._check_quietly(self.batchnorm, config.batchnorm)
        self._check_quietly(self.layernorm, config.layernorm)
        self._check_quietly(self.residual, config.residual)
        self.residual_alpha.setText("" if config.residual_alpha is None else format_float(config.residual_alpha))
        self._set_quietly(self.clip_mode, config.clip_mode)
        self.clip_threshold.setText(format_float(config.clip_threshold))
        self.lr.setText(format_float(config.lr))
        self._set_quietly(self.optimizer, config.optimizer)
        transformer = config.model == "transformer"
        for w in self._transformer_rows:
            w.setVisible(transformer)
        self._set_quietly(self.norm_position, config.norm_position)
        self.warmup.setText(str(config.warmup_steps))  # the running value (0: none), never a suggestion
        self._show_init(config.init, getattr(config, SCALED_INITS[config.init]) if config.init in SCALED_INITS else None)
        self._on_clip_mode_changed()
        self.error_label.hide()

    def _show_init(self, scheme: str, scale: Optional[float]) -> None:
        """The running net's initialisation (what Re-init would redo, until changed)."""
        self._set_quietly(self.init, scheme)
        if scale is not None:
            self.init_scale.setText(format_float(scale))
        self._on_init_changed()

    def sync_event(self, event: Event) -> None:
        """Follow an applied event (scheduled or toggled), so the panel shows the run's state."""
        try:
            cmd = command_from_event(event.kind, event.value)
        except CommandError:
            return
        if isinstance(cmd, SetActivation) and cmd.layer is None:
            self._set_quietly(self.activation, cmd.name)
        elif isinstance(cmd, SetBatchNorm):
            self.batchnorm.blockSignals(True)
            self.batchnorm.setChecked(cmd.on)
            self.batchnorm.blockSignals(False)
        elif isinstance(cmd, SetLayerNorm):
            self._check_quietly(self.layernorm, cmd.on)
        elif isinstance(cmd, SetResidual):
            self._check_quietly(self.residual, cmd.on)
            if cmd.on:
                self.residual_alpha.setText("" if cmd.alpha is None else format_float(cmd.alpha))
        elif isinstance(cmd, SetClip):
            self._set_quietly(self.clip_mode, cmd.mode)
            if cmd.mode != "none":
                self.clip_threshold.setText(format_float(cmd.threshold))
            self._on_clip_mode_changed()
        elif isinstance(cmd, SetLR):
            self.lr.setText(format_float(cmd.lr))
        elif isinstance(cmd, SetOptimizer):
            self._set_quietly(self.optimizer, cmd.name)
        elif isinstance(cmd, Reinit):
            self._show_init(cmd.scheme, cmd.scale)
        elif isinstance(cmd, SetRecurrentInit):
            self.recurrent_init.setText(cmd.scheme)
        elif isinstance(cmd, SetForgetBias):
            self.forget_bias.setText(format_float(cmd.bias))
        elif isinstance(cmd, SetNormPosition):
            self._set_quietly(self.norm_position, cmd.position)
        elif isinstance(cmd, SetWarmup):
            self.warmup.setText(str(cmd.steps))

    @staticmethod
    def _check_quietly(box: QCheckBox, on: bool) -> None:
        box.blockSignals(True)
        box.setChecked(bool(on))
        box.blockSignals(False)

    @staticmethod
    def _set_quietly(combo: QComboBox, text: str) -> None:
        combo.blockSignals(True)
        combo.setCurrentText(text)
        combo.blockSignals(False)

    def set_predict(self, on: bool) -> None:
        """Ask for a prediction before each toggle (exercise mode switches it on)."""
        self.predict.setChecked(bool(on))

    def show_outcome(self, text: str) -> None:
        """Show a prediction beside its outcome ("" hides it: a new run)."""
        self.outcome_label.setText(text)
        self.outcome_label.setVisible(bool(text))

    # ------------------------------------------------------------ slots
    def _send(self, command: Command, revert: Optional[Callable[[], None]] = None) -> None:
        """Send ``command``; with "Predict before toggling" on, ask first (``revert`` undoes the
        click that asked, when the student cancels)."""
        self.error_label.hide()
        if not self.predict.isChecked():
            self.command_requested.emit(command)
            return
        if self.pending is not None:
            if revert is not None:
                revert()
            self.show_error(f"{command.text()}: answer or cancel the open prediction first")
            self.pending.raise_()
            return
        dialog = PredictionDialog(command, self)
        self.pending, self._pending_revert = dialog, revert
        dialog.predicted.connect(self._on_predicted)
        dialog.finished.connect(self._on_prediction_closed)
        dialog.show()

    @Slot(object)
    def _on_predicted(self, prediction: Prediction) -> None:
        dialog = self.pending
        if dialog is None:
            return
        self._pending_revert = None  # accepted: the click stands
        # The prediction first, through the same path: the engine records it at the step the toggle applies.
        self.command_requested.emit(Annotate(PREDICTION, format_prediction(prediction)))
        self.command_requested.emit(dialog.command)

    @Slot(int)
    def _on_prediction_closed(self, _result: int) -> None:
        revert, dialog = self._pending_revert, self.pending
        self.pending, self._pending_revert = None, None
        if revert is not None:  # cancelled: nothing was sent, the control shows the run's state again
            revert()
        if dialog is not None:
            dialog.deleteLater()

    def _number(self, field: QLineEdit, name: str) -> Optional[float]:
        text = field.text().strip()
        try:
            x = float(text)
        except ValueError:
            x = float("nan")
        if not math.isfinite(x) or x <= 0:
            self.error_label.setText(f"{name} = {text!r}: type a finite number > 0")
            self.error_label.show()
            return None
        return x

    @Slot()
    def _on_activation_apply(self) -> None:
        self._send(SetActivation(self.activation.currentText()))

    @Slot()
    def _on_reinit(self) -> None:
        scheme = self.init.currentText()
        scale = None
        if scheme in SCALED_INITS:
            scale = self._number(self.init_scale, "init scale")
            if scale is None:
                return
        self._send(Reinit(scheme, scale))

    @Slot(bool)
    def _on_batchnorm_clicked(self, checked: bool) -> None:
        self._send(SetBatchNorm(bool(checked)), lambda: self._check_quietly(self.batchnorm, not checked))

    @Slot(bool)
    def _on_layernorm_clicked(self, checked: bool) -> None:
        self._send(SetLayerNorm(bool(checked)), lambda: self._check_quietly(self.layernorm, not checked))

    def _alpha(self) -> tuple[bool, Optional[float]]:
        """(valid, alpha): an empty field is the default 1/sqrt(depth)."""
        if not self.residual_alpha.text().strip():
            return True, None
        a = self._number(self.residual_alpha, "residual alpha")
        if a is not None and a > 10:
            self.error_label.setText(f"residual alpha = {a:g}: allowed more than 0 and at most 10")
            self.error_label.show()
            return False, None
        return a is not None, a

    @Slot(bool)
    def _on_residual_clicked(self, checked: bool) -> None:
        if not checked:
            self._send(SetResidual(False), lambda: self._check_quietly(self.residual, True))
            return
        ok, alpha = self._alpha()
        if not ok:
            self._check_quietly(self.residual, False)
            return
        self._send(SetResidual(True, alpha), lambda: self._check_quietly(self.residual, False))

    @Slot()
    def _on_residual_alpha_entered(self) -> None:
        """Enter in the alpha field re-sends residual=on with the new alpha (when it is on)."""
        if self.residual.isChecked():
            ok, alpha = self._alpha()
            if ok:
                self._send(SetResidual(True, alpha))

    @Slot()
    def _on_clip_apply(self) -> None:
        mode = self.clip_mode.currentText()
        if mode == "none":
            self._send(SetClip("none"))
            return
        thr = self._number(self.clip_threshold, "clip threshold")
        if thr is not None:
            self._send(SetClip(mode, thr))

    @Slot()
    def _on_lr_apply(self) -> None:
        lr = self._number(self.lr, "learning rate")
        if lr is not None:
            self._send(SetLR(lr))

    @Slot()
    def _on_optimizer_apply(self) -> None:
        self._send(SetOptimizer(self.optimizer.currentText()))

    @Slot()
    def _on_recurrent_init_apply(self) -> None:
        try:
            cmd = SetRecurrentInit(self.recurrent_init.text().strip())
        except CommandError as exc:
            self.show_error(str(exc))
            return
        self._send(cmd)

    @Slot()
    def _on_norm_apply(self) -> None:
        self._send(SetNormPosition(self.norm_position.currentText()))

    @Slot()
    def _on_warmup_apply(self) -> None:
        text = self.warmup.text().strip()
        try:
            steps = int(text)
        except ValueError:
            self.show_error(f"warm-up {text!r}: give a whole number of steps (0 ends a warm-up)")
            return
        try:
            cmd = SetWarmup(steps)
            cmd.validate()
        except CommandError as exc:
            self.show_error(str(exc))
            return
        self._send(cmd)

    @Slot()
    def _on_forget_bias_apply(self) -> None:
        text = self.forget_bias.text().strip()
        try:
            cmd = SetForgetBias(float(text))
        except (ValueError, CommandError):
            self.show_error(f"forget bias = {text!r}: type a finite number from -100 to 100")
            return
        self._send(cmd)

    @Slot()
    def _on_init_changed(self, *_: object) -> None:
        scheme = self.init.currentText()
        uses = scheme in SCALED_INITS
        self.init_scale.setEnabled(uses and self.reinit.isEnabled())
        self.init_scale.setPlaceholderText("std" if SCALED_INITS.get(scheme) == "init_std" else "scale")

    @Slot()
    def _on_clip_mode_changed(self, *_: object) -> None:
        self.clip_threshold.setEnabled(self.clip_mode.currentText() != "none" and self.clip_apply.isEnabled())

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
