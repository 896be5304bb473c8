"""Work the window asks of the engine between steps (``TrainingWorker.submit``). No Qt.

Why a module of its own: the engine runs in a child process, so a task's
function travels down a pipe by pickle, i.e. by its module and name. Defined
in a ``ui`` module, unpickling it would import Qt into the engine; here the
child imports nothing but the engine. Each function takes the run's Trainer or
Session first; bind the rest with ``functools.partial``. Results and
exceptions travel back pickled, so they are plain data (numpy arrays,
dataclasses, exceptions whose only argument is their message).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the window imports this module on its way to the first paint
    from ..teaching.exercises import Exercise
    from ..session.store import Session
    from .protocol import Preview, PreviewRequest


def jacobian(trainer: Any, n_samples: int = 8) -> tuple[Any, int]:
    """The hidden-to-hidden Jacobian's singular values of the live network, and the step they describe."""
    from ..theory.jacobian import jacobian_spectrum

    model = getattr(trainer.config, "model", "mlp")
    if model != "mlp":  # the spectrum is d h_depth / d h_1 across an MLP's layers; said in words, not an AttributeError
        where = ("its signal through time (the product of one Jacobian per step) is the heatmap and the depth profile "
                 "over time" if model in ("rnn", "lstm", "gru") else "its gradient through the blocks is the heatmap and "
                 "the depth profile over the residual stream")
        raise ValueError(f"The Jacobian spectrum is computed for MLP runs (d h_last / d h_1 across the layers); "
                         f"this is a {model} run: {where}.")
    return jacobian_spectrum(trainer.net, trainer.probe_inputs(n_samples), n_samples), int(trainer.step_index)


def learned(trainer: Any) -> tuple[Any, float]:
    """What the network learned: the class grid (2-D inputs) or the confusion matrix, and its cost in seconds."""
    from ..teaching.learned import boundary_grid, confusion

    t0 = time.perf_counter()
    result = boundary_grid(trainer) if trainer.data.n_inputs == 2 else confusion(trainer)
    return result, time.perf_counter() - t0


def preview(request: PreviewRequest) -> Preview:
    """The points of the data set a config describes, in 2-D: its inputs, or past two inputs
    (the 64-D digits) their first two principal components, a faithful 2-D shadow.

    The engine answers a PreviewRequest with it (building digits reads a file; the SVD is the
    heavy part), so neither the window's thread nor the loop's own code holds that work.
    """
    import numpy as np

    from ..data.datasets import make_dataset
    from .protocol import Preview

    data = make_dataset(request.dataset, request.n_samples, request.noise, request.seed, request.test_fraction)
    x = np.asarray(data.x_train, np.float64)
    note = ""
    if x.shape[1] > 2:
        xc = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        x = xc @ vt[:2].T
        note = f"{data.n_inputs}-D inputs; shown: first 2 principal components"
    return Preview(request.dataset, x.astype(np.float32), np.asarray(data.y_train), data.n_inputs, note)


class SubmissionWriteError(OSError):
    """The submission could not be written where asked (a file system problem, said in words)."""


def export_submission(folder: str | Path, exercise: Exercise, session: Session, answers: dict[str, Any], student: str = "") -> Path:
    """Write ``session`` (session.json, steps.csv, layers.csv, events.csv) and submission.json into ``folder``.

    A thin wrapper of :func:`gradsim.teaching.exercises.write_submission` for the window:
    a failure to *write* (the file system, the exporter) becomes a
    ``SubmissionWriteError`` whose message says what could not be written and
    why, ready to show in a dialog. Anything else (a defect in GradSim or in
    the exercise file) propagates unchanged, so it is logged and shown as an
    error instead of being passed off as a full disk. Returns the folder.
    """
    from ..teaching.exercises import write_submission
    from ..session.io import ExportError

    folder = Path(folder)
    try:
        if folder.suffix.lower() == ".zip":
            return _zip_submission(folder, exercise, session, dict(answers), student)
        return write_submission(folder, exercise, session, dict(answers), student=student)
    except ExportError as exc:
        raise SubmissionWriteError(f"submission for exercise {exercise.id!r} not written: {exc}") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SubmissionWriteError(f"cannot write the submission for exercise {exercise.id!r} to {str(folder)!r}: {reason}") from exc


def _zip_submission(path: Path, exercise: Exercise, session: Session, answers: dict[str, Any], student: str) -> Path:
    """The submission as one .zip (the five files at its top level, as the grader reads them).

    Written as a folder in a private temporary folder beside ``path``, zipped into a
    temporary file there, then renamed over ``path``: a failure leaves no partial zip.
    """
    import os
    import tempfile
    import zipfile

    from ..teaching.exercises import write_submission

    if not path.parent.is_dir():
        raise FileNotFoundError(2, f"folder {str(path.parent)!r} does not exist")
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".gradsim-submission-") as tmp:
        inner = write_submission(Path(tmp) / "submission", exercise, session, answers, student=student)
        fd, part = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(inner.iterdir()):
                    zf.write(f, f.name)
            os.replace(part, path)
        except BaseException:
            Path(part).unlink(missing_ok=True)
            raise
    return path


def submission_task(session: Session, folder: str, exercise: Exercise, answers: dict[str, Any], student: str = "") -> str:
    """The task form of :func:`export_submission` (the session comes first): the folder written, as text."""
    return str(export_submission(folder, exercise, session, answers, student))


def checkpoint_task(trainer: Any, path: str) -> str:
    """Save the live run's checkpoint to ``path`` (File > Save checkpoint; the dialog asked
    before replacing a file): the file written, as text. A CheckpointError says why not."""
    from ..train.checkpoint import save_checkpoint

    return str(save_checkpoint(trainer, path, overwrite=True))


def autosave(trainer: Any, path: str) -> tuple[str, int]:
    """Write the run's session to ``path`` as one .zip, replaced atomically (a crash mid-write
    leaves the previous copy); returns (path, steps run). The window's crash copy."""
    from ..session.io import export_session

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    export_session(trainer.session, path, zip_file=True)
    return str(path), int(trainer.session.steps_run)
