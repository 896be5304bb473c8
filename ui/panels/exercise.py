"""The exercise panel: pick a lab exercise, read it, load its starting point,
watch its objectives turn done live, type answers and export a submission.

Why the panel only emits requests (``start_requested``, ``submission_requested``):
the run and the full session belong to the window and its worker; the panel
sees the window's mirror Session through ``update_from`` and evaluates the
objectives on it with the same code the grader uses (gradsim.teaching.exercises), so a
tick here means the grader will agree on the same data.

Measured values that are the answer to one of the exercise's questions are
never shown here (an objective's detail often holds exactly that number), so
the question still needs the student to read a plot.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QLocale, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QDoubleValidator, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy,
    QTextBrowser, QToolButton, QVBoxLayout, QWidget,
)

from gradsim.teaching.exercises import (
    Answer, Compare, Diverged, Exercise, Objective, Quantity, Result, exercise_files, load_exercise,
)
# The submission writer runs in the engine (a child process): it lives in gradsim so the
# engine never imports Qt to unpickle it; re-exported here for the panel's callers.
from gradsim.service.tasks import SubmissionWriteError, export_submission  # noqa: F401
from gradsim.session.store import Session

log = logging.getLogger(__name__)

#: Status of one objective as shown in the list.
PENDING = "pending"
DONE = "done"
NOT_YET = "not yet"
#: An exercise with ``hide_marks``: no right or wrong is shown until grading.
AT_GRADING = "at grading"

_STATUS_TEXT = {PENDING: "\u25cb pending", DONE: "\u2713 done", NOT_YET: "\u2717 not yet", AT_GRADING: "\u2022 at grading"}
_STATUS_COLOUR = {PENDING: "#9e9e9e", DONE: "#43a047", NOT_YET: "#fb8c00", AT_GRADING: "#1565c0"}
_ERROR_COLOUR = "#d32f2f"

TIPS: dict[str, str] = {
    "combo": "Choose a lab exercise; entries that cannot be read are greyed out with the reason.",
    "reload": "Read the exercise files again (after an instructor added or edited one).",
    "body": "The exercise text: what to run, what to watch on the plots, and the question to answer.",
    "start": "Put the exercise's starting configuration (and its scheduled events) into the run builder, ready to Run.",
    "objectives": "Each objective is checked live on your run with the same rules the grader uses; hover one for details.",
    "answer": "Type a number (e.g. 0.25 or 1e-12), read from your own run's plots; it is checked against your session's value.",
    "export": "Write your whole session plus submission.json (exercise id, answers, objective results) to a folder to hand in.",
    "student": "Your name or student ID, written into submission.json so the grader's scores CSV can go straight into the course's grade book. Remembered for next time.",
    "summary": "How many objectives your current run satisfies.",
    "config_warning": "Your run's starting settings differ from what the exercise requires; the grader would score it 0.",
}


@dataclass(frozen=True)
class ExerciseEntry:
    """One exercise file as listed: the parsed exercise, or the error that stopped it."""

    path: Path
    exercise: Optional[Exercise]
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.exercise is not None


def scan_exercises() -> list[ExerciseEntry]:
    """Every ``resources/exercises/*.toml``, parsed; a broken file becomes an entry holding its error."""
    entries = []
    for path in exercise_files():
        try:
            entries.append(ExerciseEntry(path, load_exercise(path)))
        except Exception as exc:  # any broken file must be listed, never crash the panel
            log.warning("exercise file %s cannot be used", path, exc_info=True)
            text = str(exc)
            if not text.startswith(str(path)):
                text = f"{path}: {type(exc).__name__}: {text}"
            entries.append(ExerciseEntry(path, None, text))
    return entries


def _quantity_of(obj: Objective) -> Optional[Quantity]:
    """The number an objective's detail reveals (None when it reveals none)."""
    if isinstance(obj, (Compare, Answer)):
        return obj.quantity
    if isinstance(obj, Diverged):
        return Quantity("diverged_at")
    return None


class ExercisePanel(QWidget):
    """Exercise picker, rendered text, live objectives, answer fields and submission export."""

    #: The user asked to load the exercise's starting point (``exercise.config`` + ``exercise.events``).
    start_requested = Signal(object)
    #: The user asked to export a submission: (exercise, answers {id: float}).
    submission_requested = Signal(object, dict)
    #: Another exercise was chosen (None when none is readable).
    exercise_selected = Signal(object)
    #: Exercise mode was switched on (True) or off (False: free play).
    active_changed = Signal(bool)

    def __init__(self, parent: Optional[QWidget] = None, answer_feedback: bool = True, active: bool = True) -> None:
        """``answer_feedback``: show whether a typed answer is within tolerance (else only "answered").

        ``active``: exercise mode. When False (free play, the window's default)
        nothing is checked and no warning about required settings appears; the
        user opts in by choosing an exercise, loading its starting point, or
        the Exercises menu.
        """
        super().__init__(parent)
        self.answer_feedback = answer_feedback
        self.active = active
        self.entries: list[ExerciseEntry] = []
        self._exercise: Optional[Exercise] = None
        self._session: Optional[Session] = None
        self._typed: dict[str, dict[str, str]] = {}  # exercise id -> {answer id: text}
        #: Exercise id -> the answers as they stood when Check answers was last pressed: only
        #: those are marked right or wrong (marks that followed each keystroke let a student
        #: type until the mark turned green).
        self._checked: dict[str, dict[str, float]] = {}
        self._status: dict[str, str] = {}
        self._results: list[Result] = []
        self._hidden: set[str] = set()  # objectives whose values are a question's answer
        self.answer_edits: dict[str, QLineEdit] = {}
        self._logged_checks: set[tuple[str, str, str]] = set()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        mode = QHBoxLayout()
        self.mode_label = QLabel("")
        self.mode_label.setWordWrap(True)
        self.mode_label.setToolTip("Free play checks nothing; in exercise mode the objectives are checked live on your run.")
        self.mode_button = QPushButton("")
        self.mode_button.setToolTip("Switch between free play and following the chosen exercise.")
        mode.addWidget(self.mode_label, 1)
        mode.addWidget(self.mode_button)
        layout.addLayout(mode)
        top = QHBoxLayout()
        self.combo = QComboBox()
        self.combo.setToolTip(TIPS["combo"])
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(20)
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.reload_button = QToolButton()
        self.reload_button.setText("\u21bb")
        self.reload_button.setToolTip(TIPS["reload"])
        top.addWidget(self.combo, 1)
        top.addWidget(self.reload_button)
        layout.addLayout(top)
        self.list_note = QLabel("")
        self.list_note.setWordWrap(True)
        self.list_note.setStyleSheet(f"color: {_ERROR_COLOUR};")
        self.list_note.setToolTip("Exercise files that could not be read; hover the greyed entries for the reason.")
        self.list_note.setVisible(False)
        layout.addWidget(self.list_note)

        self.body_view = QTextBrowser()
        self.body_view.setOpenExternalLinks(True)
        self.body_view.setToolTip(TIPS["body"])
        layout.addWidget(self.body_view, 3)

        self.start_button = QPushButton("Load starting point")
        self.start_button.setToolTip(TIPS["start"])
        layout.addWidget(self.start_button)

        self.objectives_title = QLabel("<b>Objectives</b>")
        self.objectives_title.setToolTip(TIPS["objectives"])
        layout.addWidget(self.objectives_title)
        self._objectives_box = QWidget(self)
        self._objectives_holder = QVBoxLayout()
        self._objectives_holder.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._objectives_holder)
        #: Objective id -> (status label, text label), in the exercise's order.
        self.objective_rows: dict[str, tuple[QLabel, QLabel]] = {}
        self.summary = QLabel("")
        self.summary.setToolTip(TIPS["summary"])
        layout.addWidget(self.summary)
        self.config_warning = QLabel("")
        self.config_warning.setWordWrap(True)
        self.config_warning.setStyleSheet(f"color: {_ERROR_COLOUR};")
        self.config_warning.setToolTip(TIPS["config_warning"])
        self.config_warning.setVisible(False)
        layout.addWidget(self.config_warning)

        self.answers_title = QLabel("<b>Your answers</b>")
        self.answers_title.setToolTip(TIPS["answer"])
        layout.addWidget(self.answers_title)
        self._answers_box = QWidget(self)
        self._answers_holder = QVBoxLayout()
        self._answers_holder.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._answers_holder)
        self.check_button = QPushButton("Check answers")
        self.check_button.setToolTip(
            "Mark your typed answers against your run (once per press: editing an answer clears its mark "
            "until you check again)."
        )
        self.check_button.setVisible(False)
        layout.addWidget(self.check_button)

        student_row = QHBoxLayout()
        self.student_label = QLabel("&Name or ID:")
        self.student_edit = QLineEdit()
        self.student_edit.setPlaceholderText("your name or student ID")
        self.student_edit.setMaxLength(200)
        self.student_edit.setClearButtonEnabled(True)
        self.student_label.setBuddy(self.student_edit)
        for w in (self.student_label, self.student_edit):
            w.setToolTip(TIPS["student"])
        student_row.addWidget(self.student_label)
        student_row.addWidget(self.student_edit, 1)
        layout.addLayout(student_row)

        self.export_button = QPushButton("Export submission\u2026")
        self.export_button.setToolTip(TIPS["export"])
        layout.addWidget(self.export_button)

        self.combo.currentIndexChanged.connect(self._on_exercise_chosen)
        self.combo.activated.connect(self._on_combo_activated)  # a user's pick (not a program's) opts in
        self.mode_button.clicked.connect(self._on_mode_clicked)
        self.reload_button.clicked.connect(self._on_reload_clicked)
        self.start_button.clicked.connect(self._on_start_clicked)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.check_button.clicked.connect(self.check_answers)
        self.reload()

    # ----------------------------------------------------------------- public
    def reload(self) -> None:
        """Re-read the exercise files and list them (keeps the chosen exercise when it is still there)."""
        keep = self._exercise.id if self._exercise is not None else None
        self.entries = scan_exercises()
        self.combo.blockSignals(True)
        self.combo.clear()
        model = self.combo.model()
        assert isinstance(model, QStandardItemModel)
        for entry in self.entries:
            if entry.exercise is not None:
                ex = entry.exercise
                self.combo.addItem(f"{ex.title}  [{ex.level}]")
                tip = f"{entry.path.name} ({ex.level}): {len(ex.objectives)} objectives"
            else:
                short = entry.error.replace(str(entry.path), entry.path.name, 1)
                if len(short) > 110:
                    short = short[:109] + "\u2026"
                self.combo.addItem("\u26a0 " + short)
                tip = entry.error
                item = model.item(self.combo.count() - 1)
                item.setEnabled(False)
                item.setForeground(QBrush(QColor(_ERROR_COLOUR)))
            self.combo.setItemData(self.combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        broken = [e for e in self.entries if not e.ok]
        if broken:
            names = ", ".join(e.path.name for e in broken)
            self.list_note.setText(f"{len(broken)} exercise file(s) could not be read: {names} (see the greyed entries).")
        elif not self.entries:
            self.list_note.setText("No exercise files found in resources/exercises.")
        self.list_note.setVisible(bool(broken) or not self.entries)
        target = next((i for i, e in enumerate(self.entries) if e.ok and e.exercise.id == keep), None)  # type: ignore[union-attr]
        if target is None:
            target = next((i for i, e in enumerate(self.entries) if e.ok), -1)
        self.combo.setCurrentIndex(target)
        self.combo.blockSignals(False)
        self._on_exercise_chosen(target)

    def set_active(self, active: bool) -> None:
        """Exercise mode on (objectives checked, settings warnings) or off (free play)."""
        active = bool(active)
        changed = active != self.active
        self.active = active
        self._show_mode()
        self._evaluate()
        if changed:
            self.active_changed.emit(active)

    def _show_mode(self) -> None:
        if self.active:
            hidden = self._exercise is not None and self._exercise.hide_marks
            self.mode_label.setText("<b>Exercise mode</b>: " + ("objectives are marked at grading." if hidden else "objectives are checked on your run."))
            self.mode_button.setText("Free play")
        else:
            self.mode_label.setText("<b>Free play</b>: nothing is checked. Pick an exercise to follow it.")
            self.mode_button.setText("Start exercise")
        self.mode_button.setEnabled(self.active or self._exercise is not None)
        for w in (self.objectives_title, self._objectives_box, self.summary, self.answers_title, self._answers_box, self.export_button):
            w.setVisible(self.active and (w not in (self.answers_title, self._answers_box) or bool(self.answer_edits)))

    def exercises(self) -> list[Exercise]:
        """The readable exercises, in list order."""
        return [e.exercise for e in self.entries if e.exercise is not None]

    def current_exercise(self) -> Optional[Exercise]:
        """The chosen exercise (None when no file is readable)."""
        return self._exercise

    def select_exercise(self, exercise_id: str) -> bool:
        """Choose the exercise with this id; False when no readable exercise has it."""
        for i, e in enumerate(self.entries):
            if e.exercise is not None and e.exercise.id == exercise_id:
                self.combo.setCurrentIndex(i)
                return True
        return False

    def student(self) -> str:
        """The name or ID typed for the grade book (spaces collapsed; may be empty)."""
        return " ".join(self.student_edit.text().split())

    def set_student(self, text: str) -> None:
        self.student_edit.setText(text)

    def answers(self) -> dict[str, float]:
        """The typed answers of the chosen exercise that are finite numbers, by answer id."""
        out: dict[str, float] = {}
        for aid, edit in self.answer_edits.items():
            value = _parse_number(edit.text())
            if value is not None:
                out[aid] = value
        return out

    @Slot()
    def check_answers(self) -> None:
        """Mark the typed answers as they are now (the Check answers button)."""
        if self._exercise is not None:
            self._checked[self._exercise.id] = self.answers()
            self._evaluate()

    def update_from(self, session: Optional[Session]) -> None:
        """Re-check every objective on ``session`` (the window's mirror, ~2 Hz); None: all pending."""
        self._session = session
        self._evaluate()

    def statuses(self) -> dict[str, str]:
        """Objective id -> 'pending' | 'done' | 'not yet' ('answered' without answer feedback)."""
        return dict(self._status)

    def results(self) -> list[Result]:
        """The Results of the last check (empty before a session was given)."""
        return list(self._results)

    # ------------------------------------------------------------------ slots
    @Slot(int)
    def _on_exercise_chosen(self, index: int) -> None:
        """Show the chosen exercise's text, objectives and questions."""
        self._store_typed()
        entry = self.entries[index] if 0 <= index < len(self.entries) else None
        self._exercise = entry.exercise if entry is not None else None
        ex = self._exercise
        self.start_button.setEnabled(ex is not None)
        self.export_button.setEnabled(ex is not None)
        if ex is None:
            self.body_view.setMarkdown(entry.error if entry is not None else "No exercise available.")
        else:
            self.body_view.setMarkdown(f"## {ex.title}\n\n*Level: {ex.level}*\n\n{ex.body}")
        self._build_objectives(ex)
        self._build_answers(ex)
        self._show_mode()
        self._evaluate()
        self.exercise_selected.emit(ex)

    @Slot(int)
    def _on_combo_activated(self, _index: int) -> None:
        if self._exercise is not None:
            self.set_active(True)

    @Slot()
    def _on_mode_clicked(self) -> None:
        self.set_active(not self.active)

    @Slot()
    def _on_reload_clicked(self) -> None:
        self.reload()

    @Slot()
    def _on_start_clicked(self) -> None:
        if self._exercise is not None:
            self.set_active(True)
            self.start_requested.emit(self._exercise)

    @Slot()
    def _on_export_clicked(self) -> None:
        if self._exercise is not None:
            self.submission_requested.emit(self._exercise, self.answers())

    @Slot(str)
    def _on_answer_edited(self, _text: str) -> None:
        self._evaluate()

    # ---------------------------------------------------------------- private
    def _store_typed(self) -> None:
        if self._exercise is not None:
            self._typed[self._exercise.id] = {aid: e.text() for aid, e in self.answer_edits.items()}

    def _build_objectives(self, ex: Optional[Exercise]) -> None:
        """One row per objective: a status label and the objective's text (the old rows are deleted)."""
        self._objectives_holder.removeWidget(self._objectives_box)
        self._objectives_box.hide()
        self._objectives_box.deleteLater()
        self._objectives_box = QWidget(self)
        self._objectives_box.setToolTip(TIPS["objectives"])
        grid = QGridLayout(self._objectives_box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setColumnStretch(1, 1)
        self.objective_rows = {}
        self._status = {}
        self._hidden = set()
        secret = {a.quantity for a in ex.answers} if ex is not None else set()
        for row, obj in enumerate(ex.objectives if ex is not None else ()):
            status = QLabel()
            status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            text = QLabel(obj.text or getattr(obj, "question", obj.id))
            text.setWordWrap(True)
            text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            grid.addWidget(status, row, 0)
            grid.addWidget(text, row, 1)
            self.objective_rows[obj.id] = (status, text)
            self._set_row(obj.id, PENDING, "Waiting for a run.")
            q = _quantity_of(obj)
            if isinstance(obj, Answer) or (q is not None and q in secret):
                self._hidden.add(obj.id)
        self.objectives_title.setVisible(ex is not None)
        self._objectives_holder.addWidget(self._objectives_box)

    def _set_row(self, oid: str, status: str, tip: str) -> None:
        """Show one objective's status; labels change only when their text does (cheap at 2 Hz)."""
        self._status[oid] = status
        status_label, text_label = self.objective_rows[oid]
        shown = _STATUS_TEXT.get(status, "\u2022 " + status)
        if status_label.text() != shown:
            status_label.setText(shown)
            status_label.setStyleSheet(f"color: {_STATUS_COLOUR.get(status, '#1565c0')};")
        full_tip = f"{text_label.text()}\n{tip}"
        if status_label.toolTip() != full_tip:
            status_label.setToolTip(full_tip)
            text_label.setToolTip(full_tip)

    def _build_answers(self, ex: Optional[Exercise]) -> None:
        """One labelled number field per answer question (the old fields are deleted)."""
        self._answers_holder.removeWidget(self._answers_box)
        self._answers_box.hide()
        self._answers_box.deleteLater()
        self._answers_box = QWidget(self)
        form = QVBoxLayout(self._answers_box)
        form.setContentsMargins(0, 0, 0, 0)
        form.setSpacing(2)
        self.answer_edits = {}
        typed = self._typed.get(ex.id, {}) if ex is not None else {}
        for ans in ex.answers if ex is not None else []:
            label = QLabel(ans.question)
            label.setWordWrap(True)
            label.setToolTip(TIPS["answer"])
            edit = QLineEdit()
            validator = QDoubleValidator(edit)
            validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
            locale = QLocale.c()  # "." and "e", as float() and the grader read them
            locale.setNumberOptions(QLocale.NumberOption.RejectGroupSeparator)
            validator.setLocale(locale)
            edit.setValidator(validator)
            edit.setPlaceholderText("a number, e.g. 0.25 or 1e-12")
            edit.setToolTip(TIPS["answer"])
            edit.setObjectName(f"answer_{ans.id}")
            edit.setText(typed.get(ans.id, ""))
            edit.textChanged.connect(self._on_answer_edited)
            form.addWidget(label)
            form.addWidget(edit)
            self.answer_edits[ans.id] = edit
        self._answers_holder.addWidget(self._answers_box)
        self._answers_box.setVisible(bool(self.answer_edits))
        self.answers_title.setVisible(bool(self.answer_edits))
        self.check_button.setVisible(bool(self.answer_edits) and self.answer_feedback and not (ex is not None and ex.hide_marks))

    def _check(self, obj: Objective, session: Session, answers: dict[str, float]) -> Result:
        """One objective; a session that does not fit it (e.g. fewer layers) is 'not yet', never a crash."""
        try:
            return obj.check(session, answers)
        except Exception as exc:  # a live check must never take the window down
            key = (obj.id, type(exc).__name__, str(exc))
            if key not in self._logged_checks:  # re-checked twice a second: log each cause once
                self._logged_checks.add(key)
                log.info("objective %r cannot be checked on this run", obj.id, exc_info=True)
            return Result(obj.id, obj.text, False, f"cannot be checked on this run: {exc}")

    def _evaluate(self) -> None:
        ex, session = self._exercise, self._session
        if ex is None or not self.active:  # free play: nothing is checked, nothing warns
            self._results = []
            self.summary.setText("")
            self.config_warning.setVisible(False)
            return
        answers = self.answers()
        self._results = [self._check(o, session, answers) for o in ex.objectives] if session is not None else []
        done = 0
        for i, obj in enumerate(ex.objectives):
            result = self._results[i] if self._results else None
            if result is None or (isinstance(obj, Answer) and obj.id not in answers):
                status, tip = PENDING, "Waiting for a run." if result is None else "Type your answer below."
            elif isinstance(obj, Answer) and (not self.answer_feedback or ex.hide_marks):
                status, tip = "answered", "Answered; the grader checks it against your session."
            elif isinstance(obj, Answer) and self._checked.get(ex.id, {}).get(obj.id) != answers.get(obj.id):
                status, tip = "answered", "Answered; press Check answers to mark it."
            elif ex.hide_marks:  # the instructor's choice: nothing to guess against until grading
                status, tip = AT_GRADING, "Marked when your submission is graded (this exercise hides marks until then)."
            else:
                status = DONE if result.passed else NOT_YET
                if isinstance(obj, Answer):  # its detail holds the true value
                    tip = "Your answer is within tolerance." if result.passed else "Not within tolerance of your session's value yet."
                elif obj.id in self._hidden:
                    tip = ("Satisfied." if result.passed else "Not satisfied yet.") + (
                        " The measured value is not shown: reading it from the plots is one of the questions."
                    )
                else:
                    tip = result.detail
            done += status == DONE
            self._set_row(obj.id, status, tip)
        if session is None:
            self.summary.setText("No run yet: objectives are pending.")
        elif ex.hide_marks:
            self.summary.setText(f"{len(ex.objectives)} objectives, marked when your submission is graded.")
        else:
            self.summary.setText(f"{done} of {len(ex.objectives)} objectives done")
        problems = ex.config_problems(session.config) if session is not None and session.config else []
        self.config_warning.setText("This run does not use the exercise's required settings, so it would score 0: " + "; ".join(problems) if problems else "")
        self.config_warning.setVisible(bool(problems))


def _parse_number(text: str) -> Optional[float]:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


if __name__ == "__main__":
    import sys

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    panel = ExercisePanel()
    panel.setWindowTitle("GradSim - exercises")
    panel.resize(520, 820)
    panel.start_requested.connect(lambda ex: print(f"start requested: {ex.id} ({ex.config.depth} layers)"))
    panel.submission_requested.connect(lambda ex, answers: print(f"submission requested: {ex.id} {answers}"))
    panel.show()
    raise SystemExit(app.exec())
