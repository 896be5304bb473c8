"""A submission read into memory: the session files and submission.json, from a folder or a .zip.

Reading happens once, on the machine that runs ``gradsim check``; the bytes
then travel to whichever process or cluster worker grades them, so workers
need no shared disk. A zip is never extracted: members are taken by their
base name only (a ``..`` path is ignored), each refused above a size limit.
"""
from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..session.io import FILES

SUBMISSION_JSON = "submission.json"
WANTED = FILES + (SUBMISSION_JSON,)
MAX_MEMBER_BYTES = 512 * 1024**2  # a 500-step depth-200 session is ~40 MB; far above any real one


@dataclass(frozen=True)
class SubmissionFiles:
    """The files of one submission. ``error`` says why it could not be read (then ``files`` is empty)."""

    path: str
    files: dict[str, bytes] = field(default_factory=dict)
    error: str = ""

    @property
    def name(self) -> str:
        """A short name for tables and feedback files: the folder name or the zip's stem."""
        p = Path(self.path)
        return p.stem if p.suffix.lower() == ".zip" else (p.name or str(p))


def read_submission(path: str | Path) -> SubmissionFiles:
    """Read a submission folder or .zip; a problem is recorded in ``error``, never raised."""
    p = Path(path)
    try:
        if p.is_dir():
            files = {}
            for name in WANTED:
                f = p / name
                if f.is_file():
                    size = f.stat().st_size
                    if size > MAX_MEMBER_BYTES:
                        return SubmissionFiles(str(p), error=f"{name} is {size:,} bytes, over the {MAX_MEMBER_BYTES:,} byte limit")
                    files[name] = f.read_bytes()
            return SubmissionFiles(str(p), files)
        if p.is_file():
            try:
                zf = zipfile.ZipFile(p)
            except zipfile.BadZipFile:
                return SubmissionFiles(str(p), error="not a submission folder or a valid .zip")
            with zf:
                files = {}
                for info in zf.infolist():
                    member = Path(info.filename)
                    if info.is_dir() or member.name not in WANTED or ".." in member.parts or member.name in files:
                        continue
                    if info.file_size > MAX_MEMBER_BYTES:
                        return SubmissionFiles(str(p), error=f"{member.name} claims {info.file_size:,} bytes, over the {MAX_MEMBER_BYTES:,} byte limit")
                    files[member.name] = zf.read(info)
            return SubmissionFiles(str(p), files)
        return SubmissionFiles(str(p), error="no such submission folder or .zip")
    except (OSError, zipfile.BadZipFile, zlib.error, RuntimeError, EOFError) as exc:  # unreadable, corrupt member, encrypted zip
        return SubmissionFiles(str(p), error=f"cannot read ({exc})")
