"""Grade one submission from its files: read submission.json, replay, compare, evaluate.

``grade_files`` needs nothing but the Exercise and the bytes of the
submission, so it runs unchanged in this process, a local worker process or
a Dask worker on another machine; ``grade_task`` wraps it for executors and
adds the feedback page when asked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from pathlib import Path

from ..teaching.exercises import Exercise
from ..safe_json import parse_json
from .grade import WATCHED_NOTE, Grade
from ..session.store import Session
from .submission import SUBMISSION_JSON, SubmissionFiles, read_submission

MAX_STUDENT_CHARS = 200


def _student(meta: dict[str, Any]) -> str:
    """The optional grade-book name or ID; anything that is not text is ignored."""
    v = meta.get("student")
    return " ".join(v.split())[:MAX_STUDENT_CHARS] if isinstance(v, str) else ""


def grade(exercise: Exercise, submission: str | Path, replay: bool = True) -> Grade:
    """Grade a submission folder or .zip: replayed and compared unless ``replay`` is False."""
    return grade_files(exercise, read_submission(submission), replay=replay)


def grade_files(exercise: Exercise, sub: SubmissionFiles, replay: bool = True, rtol: Optional[float] = None) -> Grade:
    """Grade, keeping the session the objectives were evaluated on (see ``grade_session``)."""
    return grade_session(exercise, sub, replay, rtol)[0]


def grade_session(exercise: Exercise, sub: SubmissionFiles, replay: bool = True, rtol: Optional[float] = None) -> tuple[Grade, Optional[Session]]:
    """(grade, the session it was evaluated on: the replay, or the submitted one with ``replay=False``).

    Every problem becomes a Grade with ``error`` (score 0), never an exception.
    """
    from ..session.io import SessionFormatError, load_session
    from .replay import ReplayError, first_mismatch, replay as replay_session, tolerance_for

    fail = lambda msg, student="": (Grade(sub.path, False, [], [], msg, student=student), None)
    if sub.error:
        return fail(sub.error)
    raw = sub.files.get(SUBMISSION_JSON)
    if raw is None:
        return fail(f"{SUBMISSION_JSON} is missing")
    try:
        meta = parse_json(raw.decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"expected a JSON object, got {type(meta).__name__}")
    except (ValueError, UnicodeDecodeError) as exc:
        return fail(f"{SUBMISSION_JSON}: {exc}")
    student = _student(meta)
    answers = meta.get("answers") if isinstance(meta.get("answers"), dict) else {}
    try:
        submitted = load_session(sub.files, where=sub.path)
    except SessionFormatError as exc:
        return fail(f"unreadable session: {exc}", student)
    session, note, verified = submitted, "not replayed (--no-replay): the submitted numbers were trusted", False
    if exercise.watched:
        # No config rebuilds a student's own model, so nothing can be replayed: the grade is
        # UNVERIFIED whatever the flags or the files claim, and only a watched session is graded.
        from ..watch.writer import MODEL as WATCHED_MODEL

        if submitted.model != WATCHED_MODEL:
            g = Grade(sub.path, False, [], [], f"this exercise grades a gradsim.watch session of your own model; "
                      f"the submission holds a {submitted.model!r} session", student=student, watched=True)
            return g, None
        note = WATCHED_NOTE
    elif replay:
        session_meta = parse_json(sub.files["session.json"].decode("utf-8"))  # load_session checked it
        tol = tolerance_for(session_meta.get("versions"), override=rtol)
        try:
            session = replay_session(session_meta, f"{sub.path}: session.json")
        except ReplayError as exc:
            return fail(f"cannot replay: {exc}", student)
        mismatch = first_mismatch(submitted, session, tol.rtol)
        if mismatch is not None:
            g = Grade(sub.path, False, [], [], f"data does not match its replay at {mismatch} ({tol.note})", student=student, replay_note=tol.note)
            return g, None
        note, verified = tol.note, True
    exercise_ok = meta.get("exercise") == exercise.id
    problems = exercise.config_problems(session.config)
    if not exercise_ok:
        problems = [f"submission is for exercise {meta.get('exercise')!r}, not {exercise.id!r}"] + problems
    g = Grade(sub.path, exercise_ok, problems, exercise.evaluate(session, answers), student=student, verified=verified,
              replay_note=note, watched=exercise.watched)
    return g, session


@dataclass
class Outcome:
    """What a grading task sends back to the client: the grade and any files to write."""

    grade: Grade
    files: dict[str, bytes] = field(default_factory=dict)  # e.g. the feedback page, by file name


def grade_task(exercise: Exercise, sub: SubmissionFiles, replay: bool = True, rtol: Optional[float] = None, feedback: Optional[Any] = None, page_name: str = "") -> Outcome:
    """One submission, in whichever process runs it.

    ``feedback`` (a feedback.Band, or None for no page) adds ``PAGE_NAME.html``
    to the outcome's files; the client writes it.
    """
    g, session = grade_session(exercise, sub, replay, rtol)
    files: dict[str, bytes] = {}
    if feedback is not None:
        from .feedback import render_page

        answers: dict[str, Any] = {}
        try:
            meta = parse_json(sub.files.get(SUBMISSION_JSON, b"{}").decode("utf-8"))
            answers = meta.get("answers", {}) if isinstance(meta, dict) and isinstance(meta.get("answers"), dict) else {}
        except (ValueError, UnicodeDecodeError):
            pass
        name = page_name or sub.name
        files[f"{name}.html"] = render_page(exercise, g, session, answers, feedback, name).encode("utf-8")
    return Outcome(g, files)
