"""``gradsim check``: grade exercise submissions (replay each, compare, evaluate) and write the scores CSV."""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import itertools
import math
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .common import CliError, add_executor_flags, add_overwrite_flag, refuse_existing_file, run_tasks, write_new_file

if TYPE_CHECKING:
    from ..grading.grade import Grade
    from ..grading.submission import SubmissionFiles
    from .common import SubParsers


def add_parser(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser("check", help="grade exercise submissions: replay each session and compare with its CSVs")
    p.add_argument("exercise", help="the exercise .toml file")
    p.add_argument("submissions", nargs="+", help="submission folders or .zip files (session files + submission.json)")
    p.add_argument("--csv", help="where to write the scores CSV (default: a new scores-YYYYMMDD-HHMMSS.csv here, never replacing a file)")
    p.add_argument("-v", "--verbose", action="store_true", help="say why each failed objective failed")
    p.add_argument("--no-replay", action="store_true", help="fast path: trust the submitted CSVs without re-running them (marked unverified)")
    p.add_argument("--tolerance", type=float, metavar="REL", help="relative tolerance of the replay comparison (default: 0 on the recording build, 1e-3 on another; see docs/exercises.md)")
    p.add_argument("--feedback", metavar="DIR", help="write one HTML feedback page per submission into DIR")
    p.add_argument("--report", metavar="DIR", help="write a class report, DIR/index.html: the spread of scores, objectives missed, common wrong answers, every depth profile, flagged submissions")
    p.add_argument("--max-points", type=float, help="the grade book's maximum (default: one point per objective)")
    add_executor_flags(p, "submissions")
    add_overwrite_flag(p, "the --csv file and the --report page")
    return p


def _labels(subs: list[SubmissionFiles]) -> list[str]:
    """How flags name each submission: its folder or file name as the table shows it,
    the path as given where two share a name (a/alice and b/alice)."""
    short = [Path(s.path).name for s in subs]
    labels = [name if short.count(name) == 1 else s.path for name, s in zip(short, subs)]
    # The same path given twice: number the repeats so each submission has its own label.
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[i] = f"{label} (#{seen[label]})"
    return labels


def _now() -> datetime:
    return datetime.now()


def write_new_scores(folder: Path, text: str) -> Path:
    """Write the scores as a new file in ``folder``, named for the local time:
    scores-YYYYMMDD-HHMMSS.csv, or -2, -3, ... after it when that name is taken."""
    stamp = _now().strftime("%Y%m%d-%H%M%S")
    for k in itertools.count(1):
        path = folder / (f"scores-{stamp}.csv" if k == 1 else f"scores-{stamp}-{k}.csv")
        if write_new_file(path, text):
            return path
    raise AssertionError("unreachable: itertools.count never ends")


def _page_names(subs: list[SubmissionFiles]) -> list[str]:
    """A distinct, file-system-safe feedback page name per submission."""
    import re

    names, seen = [], set()
    for sub in subs:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", sub.name).strip("._") or "submission"
        name, k = base, 2
        while name.lower() in seen:
            name, k = f"{base}-{k}", k + 1
        seen.add(name.lower())
        names.append(name)
    return names


def cmd(args: argparse.Namespace) -> int:
    """Grade submissions: replay each one and compare (unless --no-replay), evaluate, write the CSV."""
    from ..teaching.exercises import load_exercise
    from ..grading.grade import Grade
    from ..service.executors import describe, task_executor
    from ..grading.feedback import Band, make_band, reference_profiles, reference_seeds
    from ..grading.grader import grade_task
    from ..grading.class_report import entry_for, find_flags
    from ..grading.submission import read_submission
    from ..session.io import write_atomic

    ex = load_exercise(args.exercise)
    if args.tolerance is not None and not (0 <= args.tolerance < 0.01):
        raise CliError(f"--tolerance {args.tolerance}: must be >= 0 and below 0.01 (a 1 % edit must still be caught)")
    max_points = args.max_points if args.max_points is not None else float(len(ex.objectives))
    if not (max_points > 0 and math.isfinite(max_points)):
        raise CliError(f"--max-points {args.max_points}: must be a number > 0")
    # Every refusal comes before grading, not after every replay has run.
    out_csv = Path(args.csv) if args.csv is not None else None
    if out_csv is None:
        if not os.access(".", os.W_OK):
            raise CliError(f"cannot write the scores CSV into the current folder {os.getcwd()!r}; give --csv FILE")
    else:
        if not out_csv.parent.is_dir():
            what = "is a file, not a folder" if out_csv.parent.exists() else "does not exist"
            raise CliError(f"--csv {str(out_csv)!r}: folder {str(out_csv.parent)!r} {what}")
        if out_csv.is_dir():
            raise CliError(f"--csv {str(out_csv)!r} is a folder; give the name of the CSV file to write")
        refuse_existing_file("--csv", out_csv, args.overwrite)
    report_dir = Path(args.report) if args.report else None
    if report_dir is not None:
        if report_dir.exists() and not report_dir.is_dir():
            raise CliError(f"--report {str(report_dir)!r} exists and is not a folder")
        refuse_existing_file("--report", report_dir / "index.html", args.overwrite)
    feedback_dir = Path(args.feedback) if args.feedback else None
    for flag, folder in (("--feedback", feedback_dir), ("--report", report_dir)):
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CliError(f"{flag} {str(folder)!r}: cannot create folder ({exc.strerror})") from None
    subs = [read_submission(p) for p in args.submissions]  # read here: workers may not see this disk
    names = _page_names(subs)
    replay = not args.no_replay
    grades: list[Optional[Grade]] = [None] * len(subs)
    n_tasks = len(subs) + (len(reference_seeds(ex)) if feedback_dir and not ex.watched else 0)
    with task_executor(args.jobs, args.scheduler, n_tasks) as pool:
        where = describe(args.jobs, args.scheduler, n_tasks)
        print(f"Grading {len(subs)} submission(s) {where}" + (", replaying each" if replay else ""), file=sys.stderr)
        band = None
        if feedback_dir is not None and ex.watched:  # the student's own model: no reference run exists
            band = Band((), (), (), (), (), max_points)
        elif feedback_dir is not None:
            seeds = reference_seeds(ex)
            profiles: list[Any] = [None] * len(seeds)
            for i, result in run_tasks(pool, reference_profiles, [(ex, s) for s in seeds], "reference run"):
                if isinstance(result, BaseException):
                    raise CliError(f"--feedback: the exercise's reference run (seed {seeds[i]}) failed: {result}")
                profiles[i] = result
            band = make_band(profiles, seeds, max_points)
        tasks = [(ex, sub, replay, args.tolerance, band, name) for sub, name in zip(subs, names)]
        for i, result in run_tasks(pool, grade_task, tasks, "graded"):
            if isinstance(result, BaseException):  # a crashed worker: that submission is reported, not lost
                grades[i] = Grade(subs[i].path, False, [], [], f"grading failed: {type(result).__name__}: {result}")
                continue
            grades[i] = result.grade
            if feedback_dir is not None:
                for fname, data in result.files.items():
                    write_atomic(feedback_dir / fname, data)
    # Every task reports (a crash becomes an error Grade), so no slot is left empty.
    graded = [g if g is not None else Grade(subs[i].path, False, [], [], "grading reported nothing") for i, g in enumerate(grades)]
    # The class report's flags (one student named twice, copied data, the same own run),
    # so the table, the CSV and the report agree; here they name submissions as the table does.
    entries = [entry_for(sub, g, name, ex) for sub, g, name in zip(subs, graded, names)]
    labels = _labels(subs)
    by_label = find_flags([dataclasses.replace(e, name=label) for e, label in zip(entries, labels)])
    flags = [by_label[label] for label in labels]
    ids = [o.id for o in ex.objectives]
    name_w = max([10] + [len(Path(g.submission).name) for g in graded])
    print(f"{ex.title}  ({len(ids)} objectives: {', '.join(ids)}; {max_points:g} points)")
    if ex.watched:
        print("UNVERIFIED (a watched exercise): sessions of the students' own models cannot be re-run; the submitted numbers "
              "were graded as they are, and an edited CSV would not be noticed.")
    elif not replay:
        print("UNVERIFIED (--no-replay): the submitted numbers were trusted, not re-run; an edited CSV would not be noticed.")
    print(f"{'submission':<{name_w}}  score  points  " + "  ".join(f"{i[:10]:<10}" for i in ids) + "  student")
    for g, flagged in zip(graded, flags):
        marks = [("pass" if r.passed else "FAIL") for r in g.results] or ["-"] * len(ids)
        flag = "" if g.verified or g.error else "  (unverified)"
        print(f"{Path(g.submission).name:<{name_w}}  {g.score:5.2f}  {g.score * max_points:6.4g}  " + "  ".join(f"{m:<10}" for m in marks) + f"  {g.student}{flag}")
        for problem in g.problems:
            print(f"{'':<{name_w}}    ! {problem}")
        for note in flagged:
            print(f"{'':<{name_w}}    ? {note}")
        for r in g.results:
            if not r.passed and args.verbose:
                print(f"{'':<{name_w}}    {r.id}: {r.detail}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "points", "max_points", "submission", "exercise", "score", "verified", "problems", "flags"] + ids)
    for g, flagged in zip(graded, flags):
        verified = "replayed" if g.verified else ("unverified" if not replay else "")
        if g.watched and not g.error:
            verified = "unverified: a watched session of the student's own model, which cannot be replayed"
        cells: list[object] = [g.student, f"{g.score * max_points:.4g}", f"{max_points:g}", g.submission, ex.id, f"{g.score:.4f}", verified, "; ".join(g.problems), "; ".join(flagged)]
        passed: list[object] = [int(r.passed) for r in g.results]
        w.writerow(cells + (passed or [""] * len(ids)))
    try:
        if out_csv is None:
            out_csv = write_new_scores(Path("."), buf.getvalue())
        else:
            write_atomic(out_csv, buf.getvalue())
    except OSError as exc:
        raise CliError(f"--csv {str(out_csv or 'scores-*.csv')!r}: cannot write ({exc.strerror or exc})") from None
    report = None
    if report_dir is not None:
        from ..grading.class_report import write_class_report

        try:
            report = write_class_report(report_dir, ex, entries, max_points, feedback_dir)
        except OSError as exc:
            raise CliError(f"--report {str(report_dir)!r}: cannot write ({exc.strerror or exc})") from None
    print(f"Scores written to {out_csv}" + (f"; feedback pages in {feedback_dir}/" if feedback_dir else "") + (f"; class report {report}" if report else ""))
    return 0
