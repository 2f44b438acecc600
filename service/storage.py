"""Where media lives on disk: server-generated paths, atomic placement, fixity.

Layout under the recordings root (see recordings/README.md)::

    <root>/<recording id>/original.<ext>     the uploaded bytes, never modified (0400)
    <root>/<recording id>/normalised.wav     16 kHz mono PCM made by the worker
    <root>/.tmp/<host>/<pid>-<random>.part   uploads in flight (same filesystem, so
                                             placing one is an atomic rename)
    <root>/.tmp/<host>/<pid>-<random>.placing  a placement's journal: the path of an
                                             original moved into place whose row is not
                                             known to be committed yet
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import socket
from pathlib import Path

from service.filemodes import READ_ONLY_MODE, open_private, private_dir

CHUNK = 1024 * 1024
PLACING = ".placing"

#: ffprobe format names to the extension the stored original gets.
FORMAT_EXTENSIONS = {
    "wav": "wav",
    "mp3": "mp3",
    "flac": "flac",
    "ogg": "ogg",
    "matroska,webm": "mkv",
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "aac": "aac",
    "aiff": "aiff",
    "asf": "wma",
    "amr": "amr",
    "amrnb": "amr",
    "amrwb": "amr",
    "avi": "avi",
    "caf": "caf",
    "w64": "w64",
    "wv": "wv",
    "ac3": "ac3",
    "eac3": "eac3",
    "mpegts": "ts",
    "mpeg": "mpg",
}


class StorageFullError(OSError):
    """The storage volume has no room left (ENOSPC/EDQUOT)."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Storage:
    """The recordings root and the operations on it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.tmp_dir = self.root / ".tmp" / socket.gethostname()

    def ensure(self) -> None:
        private_dir(self.root)
        private_dir(self.tmp_dir)

    def new_temp(self) -> Path:
        """A new, empty temp file (mode 0600) for an upload in flight."""
        self.ensure()
        path = self.tmp_dir / f"{os.getpid()}-{secrets.token_hex(8)}.part"
        os.close(open_private(path, exclusive=True))
        return path

    def cleanup_stale_temp(self) -> list[Path]:
        """Remove temp uploads whose writer is gone (an API killed mid-upload).

        Only this host's temp area is swept, never a recording's directory (placement
        journals are left to :meth:`stale_placements`).
        """
        removed: list[Path] = []
        if not self.tmp_dir.exists():
            return removed
        for p in self.tmp_dir.iterdir():
            if p.suffix == PLACING or not _writer_gone(p):
                continue
            p.unlink(missing_ok=True)
            removed.append(p)
        return removed

    def stale_placements(self) -> list[tuple[Path, str]]:
        """Journals left by a process that died while placing an original: (journal,
        the original's path relative to the root). Whether that original has a row
        decides if it stays; see ``crud.recordings.finish_interrupted_placements``."""
        if not self.tmp_dir.exists():
            return []
        found = []
        for p in self.tmp_dir.glob(f"*{PLACING}"):
            if _writer_gone(p):
                try:
                    found.append((p, p.read_text().strip()))
                except FileNotFoundError:
                    continue
        return found

    def remove_placed(self, relative: str) -> bool:
        """Delete an original that never got its row, and its directory if now empty."""
        path = self.path_of(relative)
        if not path.exists():
            return False
        path.unlink()
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only if empty: a worker may have written beside it
        return True

    def recording_dir(self, recording_id: int) -> Path:
        return self.root / str(int(recording_id))

    def path_of(self, relative: str) -> Path:
        """Resolve a stored relative path, refusing anything outside the root."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"stored path escapes the recordings root: {relative!r}")
        return path

    def place_original(self, tmp: Path, recording_id: int, ext: str) -> tuple[str, Path]:
        """Move an uploaded temp file into place.

        Returns the path relative to the root and the placement's journal, which the
        caller deletes once the row is committed (or the placement undone). A process
        killed in between leaves the journal, and the next start removes the original
        if no row names it: without it, that file would be an orphan nobody could
        tell from a restore in progress.
        """
        target_dir = private_dir(self.recording_dir(recording_id))
        target = target_dir / f"original.{ext}"
        relative = str(target.relative_to(self.root))
        self.ensure()
        journal = self.tmp_dir / f"{os.getpid()}-{secrets.token_hex(8)}{PLACING}"
        with os.fdopen(open_private(journal, exclusive=True), "w") as f:
            f.write(relative)
            f.flush()
            os.fsync(f.fileno())
        try:
            tmp.replace(target)
            target.chmod(READ_ONLY_MODE)
        except BaseException:
            journal.unlink(missing_ok=True)
            raise
        return relative, journal

    def remove_partial_files(self, recording_id: int) -> list[Path]:
        """Delete half-written files (``.*.tmp``) a killed worker left in a recording's dir."""
        removed = []
        for p in self.recording_dir(recording_id).glob(".*.tmp"):
            p.unlink(missing_ok=True)
            removed.append(p)
        return removed

    def cache_dir(self, recording_id: int) -> Path:
        """Derived files of a recording (audio with withheld spans silenced): outside its
        directory, since they are no archive content and may be rebuilt at any time."""
        return self.root / ".cache" / "silenced" / str(int(recording_id))

    def remove_recording(self, recording_id: int) -> None:
        shutil.rmtree(self.recording_dir(recording_id), ignore_errors=True)
        shutil.rmtree(self.cache_dir(recording_id), ignore_errors=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free


def extension_for(format_name: str) -> str:
    return FORMAT_EXTENSIONS.get(format_name, "bin")


def _writer_gone(path: Path) -> bool:
    """Whether the process named in a temp file's name (``<pid>-…``) is gone.

    Gone means dead, or its pid now belongs to a process that started after the file
    was last written: a restarted container gives its server the same pid (often 1) as
    the one that was killed.
    """
    pid_part = path.name.split("-", 1)[0]
    if not (pid_part.isdigit() and int(pid_part) != 0 and _pid_alive(int(pid_part))):
        return True
    started = _process_started_at(int(pid_part))
    try:
        written = path.stat().st_mtime
    except FileNotFoundError:
        return False  # already handled by its writer
    # One second of slack for coarse timestamps; a live writer's files are always
    # written after its own process started.
    return started is not None and written < started - 1.0


def _process_started_at(pid: int) -> float | None:
    """When process ``pid`` started (Unix time), from /proc; None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    # Field 22 (starttime, in clock ticks since boot) counts from after the ")" that
    # closes the command name, which may itself contain spaces.
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        ticks = int(fields[19])
    except (IndexError, ValueError):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
