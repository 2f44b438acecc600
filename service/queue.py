"""The job queue: Huey on SQLite by default, on Redis when SOURCEBOOK_REDIS_URL is set.

The queue only delivers job ids; the Job row holds the truth (state, progress,
attempts). Huey delivers at most once, so anything a crash loses is found again
by ``recover_stale_jobs`` from the Job table.
"""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    """What the API needs from a queue."""

    def enqueue(self, job_id: int) -> None: ...

    def ping(self) -> None: ...


class NullQueue:
    """Delivers nothing: jobs stay queued in the database (used where no worker runs)."""

    def enqueue(self, job_id: int) -> None:
        return None

    def ping(self) -> None:
        return None
