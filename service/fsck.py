"""Fixity: re-hash every stored file against the sha256 the database holds.

Three kinds of problem are found:

- ``missing``: a row names a file that is not there (or is not a regular file);
- ``corrupt``: the file's sha256 differs from the row's (or the row's path leaves the root);
- ``orphan``: a file under the recordings root that no row references.

Uploads and deletions keep running while a check runs, so the check is ordered to
avoid false alarms: the tree is listed before the rows are read (a file placed after
the listing is simply not seen), and every problem is confirmed against a fresh read
of the rows before it is reported (a recording deleted mid-check moves its files to
``.trash/`` and drops its row; an upload places its file a moment before it commits).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.models.consent import ConsentAgreement
from service.models.recordings import Recording
from service.storage import Storage, _pid_alive, sha256_file

ProblemKind = Literal["missing", "corrupt", "orphan"]

#: Top-level entries of the recordings root that are not media (see recordings/README.md).
#: Not archive content: the README, deleted files, and derived caches (silenced audio).
IGNORED_TOP = {"README.md", ".trash", ".cache"}


@dataclass(frozen=True)
class StoredFile:
    """A file the database says exists, with the hash it must have."""

    path: str  # relative to the recordings root, as stored
    sha256: str | None
    object_type: str  # recording | consent
    object_id: int
    role: str  # original | normalised | document

    @property
    def what(self) -> str:
        return f"{self.object_type} {self.object_id} {self.role}"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    path: str
    what: str  # which row (or "no row") the file belongs to
    detail: str
    expected_sha256: str | None = None
    actual_sha256: str | None = None


@dataclass
class FsckReport:
    root: str
    checked: int = 0
    bytes: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, kind: ProblemKind) -> int:
        return sum(1 for p in self.problems if p.kind == kind)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "root": self.root,
            "checked": self.checked,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "missing": self.count("missing"),
            "corrupt": self.count("corrupt"),
            "orphan": self.count("orphan"),
            "problems": [asdict(p) for p in self.problems],
        }


def stored_files(session: Session) -> list[StoredFile]:
    """Every file the database references, with its expected hash."""
    files: list[StoredFile] = []
    recordings = session.exec(select(Recording).order_by(col(Recording.id))).all()
    for r in recordings:
        assert r.id is not None
        files.append(StoredFile(r.media_path, r.sha256, "recording", r.id, "original"))
        if r.normalised_path:
            files.append(StoredFile(r.normalised_path, r.normalised_sha256, "recording", r.id,
                                    "normalised"))
    consents = session.exec(
        select(ConsentAgreement).where(col(ConsentAgreement.document_path).is_not(None))
        .order_by(col(ConsentAgreement.id))
    ).all()
    for c in consents:
        assert c.id is not None and c.document_path is not None
        files.append(StoredFile(c.document_path, c.document_sha256, "consent", c.id,
                                "document"))
    return files


def check(engine: Engine, storage: Storage, *, jobs: int = 4,
          partial_stale_seconds: float = 120.0) -> FsckReport:
    """Re-hash every referenced file and look for unreferenced ones; read-only."""
    started = time.monotonic()
    report = FsckReport(root=str(storage.root))
    on_disk = set(_walk(storage, partial_stale_seconds))
    with Session(engine) as session:
        expected = stored_files(session)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda f: _verify(storage, f), expected))
    suspects: list[Problem] = []
    for size, problem in results:
        report.checked += 1
        report.bytes += size
        if problem is not None:
            suspects.append(problem)
    referenced = {f.path for f in expected}
    suspects.extend(Problem("orphan", p, "no row", "no database row references this file")
                    for p in sorted(on_disk - referenced))

    report.problems = _confirm(engine, storage, suspects)
    report.seconds = time.monotonic() - started
    return report


def _verify(storage: Storage, stored: StoredFile) -> tuple[int, Problem | None]:
    try:
        path = storage.path_of(stored.path)
    except ValueError:
        return 0, Problem("corrupt", stored.path, stored.what,
                          "the stored path leaves the recordings root")
    if not path.is_file():
        return 0, Problem("missing", stored.path, stored.what, "file not found",
                          expected_sha256=stored.sha256)
    try:
        actual = sha256_file(path)
        size = path.stat().st_size
    except OSError as exc:
        return 0, Problem("missing", stored.path, stored.what, f"unreadable: {exc.strerror}",
                          expected_sha256=stored.sha256)
    if stored.sha256 is None:
        return size, Problem("corrupt", stored.path, stored.what,
                             "the database holds no sha256 for this file",
                             actual_sha256=actual)
    if actual != stored.sha256:
        return size, Problem("corrupt", stored.path, stored.what,
                             "sha256 differs from the database", expected_sha256=stored.sha256,
                             actual_sha256=actual)
    return size, None


def _confirm(engine: Engine, storage: Storage, suspects: list[Problem]) -> list[Problem]:
    """Drop problems that a concurrent upload or deletion explains."""
    if not suspects:
        return []
    with Session(engine) as session:
        now = {f.path: f for f in stored_files(session)}
    confirmed: list[Problem] = []
    for p in suspects:
        if p.kind == "orphan":
            # Committed since the first read (an upload), or removed since (a deletion).
            if p.path in now or not (storage.root / p.path).exists():
                continue
            confirmed.append(p)
            continue
        current = now.get(p.path)
        if current is None:
            continue  # the row went away while we checked: a deletion, not a loss
        _, again = _verify(storage, current)
        if again is not None:
            confirmed.append(again)
    return confirmed


def _walk(storage: Storage, partial_stale_seconds: float) -> Iterator[str]:
    """Relative paths of the files under the root that should have a row."""
    root = storage.root
    if not root.is_dir():
        return
    host = socket.gethostname()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        if not rel_dir.parts:
            dirnames[:] = [d for d in dirnames if d not in IGNORED_TOP]
            filenames = [f for f in filenames if f not in IGNORED_TOP]
        elif rel_dir.parts[0] == ".tmp":
            if len(rel_dir.parts) == 1:
                # Another host's uploads in flight cannot be checked for liveness from here.
                dirnames[:] = [d for d in dirnames if d == host]
                filenames = []
            else:
                filenames = [f for f in filenames if not _live_upload(f)]
        for name in _not_in_progress(here, filenames, partial_stale_seconds):
            yield str((here / name).relative_to(root))


def _live_upload(name: str) -> bool:
    pid = name.split("-", 1)[0]
    return pid.isdigit() and int(pid) > 0 and _pid_alive(int(pid))


def _not_in_progress(here: Path, names: Iterable[str], stale_seconds: float) -> Iterator[str]:
    # A worker writes the normalised file as ``.normalised.wav.XXXX.tmp`` and renames it
    # when done; one that is still growing is work in progress, an old one a crash's leftover.
    cutoff = time.time() - stale_seconds
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            try:
                if (here / name).stat().st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue
        yield name


def format_table(report: FsckReport) -> str:
    """The human-readable report: one line per problem, then a summary."""
    lines: list[str] = []
    if report.problems:
        rows = [(p.kind.upper(), p.path, p.what, _detail(p)) for p in report.problems]
        widths = [max(len(r[i]) for r in [("PROBLEM", "FILE", "BELONGS TO", ""), *rows])
                  for i in range(3)]
        header = ("PROBLEM", "FILE", "BELONGS TO", "DETAIL")
        for r in [header, *rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True))
                         + "  " + r[3])
        lines.append("")
    lines.append(summary(report))
    return "\n".join(lines)


def summary(report: FsckReport) -> str:
    head = (f"checked {report.checked} file(s), {report.bytes / 1e6:.1f} MB, "
            f"in {report.seconds:.1f} s under {report.root}: ")
    if report.ok:
        return head + "all match the database"
    return head + (f"{report.count('missing')} missing, {report.count('corrupt')} corrupt, "
                   f"{report.count('orphan')} orphaned")


def _detail(p: Problem) -> str:
    if p.kind == "corrupt" and p.expected_sha256 and p.actual_sha256:
        return (f"{p.detail} (expected {p.expected_sha256[:12]}…, "
                f"found {p.actual_sha256[:12]}…)")
    return p.detail
