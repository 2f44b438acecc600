"""Owner-only files and directories, whatever the process umask.

The database holds restricted text, the recordings are interviews given in confidence,
and exports and reports carry both. Anything the service writes under its data,
recordings and transcripts directories is for the service's own user: files 0600,
directories 0700, stored originals and consent documents 0400 (they never change).
Modes are set with chmod after creation, so a permissive umask (0022, 0000) cannot
widen them; the umask can only narrow what ``open``/``mkdir`` create, never what
``chmod`` sets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
#: Stored originals and signed releases: written once, then only read.
READ_ONLY_MODE = 0o400
#: SQLite's companions of a database file, tightened with it.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

log = logging.getLogger("sourcebook.files")


def private_dir(path: Path, *, tighten_existing: bool = True) -> Path:
    """Create ``path`` (and missing parents) as 0700.

    An existing ``path`` is tightened too, unless ``tighten_existing`` is false: that is
    for a folder the user chose (an export's destination), which is theirs to set.
    """
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            d.mkdir(mode=DIR_MODE)
        d.chmod(DIR_MODE)
    if tighten_existing:
        tighten(path)
    return path


def tighten(path: Path) -> None:
    """Drop group and other permission bits of an existing file or directory.

    For paths an earlier version created with the umask's modes. A path owned by
    someone else is left alone, with a warning: the operator chose that.
    """
    try:
        mode = stat.S_IMODE(Path(path).stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        try:
            Path(path).chmod(mode & 0o700)
        except PermissionError:
            log.warning("cannot make %s owner-only (mode %o): it belongs to another user",
                        path, mode)


def create_private(path: Path) -> Path:
    """Create an empty file with mode 0600 if it does not exist; tighten it if it does."""
    path = Path(path)
    private_dir(path.parent, tighten_existing=False)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
    else:
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
    return path


def open_private(path: Path, *, exclusive: bool = False) -> int:
    """A descriptor for writing ``path`` from the start, created or truncated as 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` (0600) through a temp file beside it, so readers see all or nothing."""
    path = Path(path)
    private_dir(path.parent, tighten_existing=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_private(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def secure_sqlite(db: Path) -> None:
    """Make a SQLite database and its -wal/-shm/-journal files owner-only.

    A missing database is created empty (a valid SQLite file) with mode 0600 before
    SQLite opens it: SQLite then gives its -wal and -shm files the database's mode.
    """
    create_private(db)
    for suffix in SQLITE_SIDE_FILES:
        tighten(db.with_name(db.name + suffix))
