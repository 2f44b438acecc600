"""The job queue: Huey on SQLite by default, on Redis when SOURCEBOOK_REDIS_URL is set.

The queue only delivers job ids; the Job row holds the truth (state, progress,
attempts). Huey delivers at most once, so whatever a crash or a Redis restart loses
is found again from the Job table by ``service.worker.tasks.recover``; a job delivered twice
is harmless, because a worker must first claim it (queued -> running) in the database.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any, Protocol

import redis.exceptions

from service.config import Settings
from service.filemodes import secure_sqlite

TASK_NAME = "sourcebook.run_job"
log = logging.getLogger("sourcebook.queue")
#: Errors of a queue that is down or restarting (not bugs): the job waits in the database.
QUEUE_UNREACHABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, sqlite3.OperationalError)


class JobQueue(Protocol):
    """What the API needs from a queue."""

    def enqueue(self, job_id: int, delay: float | None = None) -> None: ...

    def ping(self) -> None: ...


class NullQueue:
    """Delivers nothing: jobs stay queued in the database until a worker recovers them."""

    def enqueue(self, job_id: int, delay: float | None = None) -> None:
        return None

    def ping(self) -> None:
        return None


def make_huey(settings: Settings) -> Any:
    """The Huey instance for these settings (the same for producers and consumers)."""
    # huey (about 0.2 s with its storage backend) loads only when a queue is made.
    if settings.redis_url:
        from huey import RedisHuey

        return RedisHuey("sourcebook", url=settings.redis_url, results=False)
    from huey import SqliteHuey

    path = (settings.data_dir / "queue.db").resolve()
    secure_sqlite(path)
    return SqliteHuey("sourcebook", filename=str(path), results=False)


class HueyQueue:
    """Jobs on a Huey instance; ``run_job(job_id)`` is what a consumer executes."""

    def __init__(self, huey: Any) -> None:
        self.huey = huey

        def run_job(job_id: int) -> None:
            # Only a consumer runs this: the API processes that merely enqueue never load
            # the pipelines that tasks imports.
            from service.worker import tasks

            tasks.execute_delivered(job_id)

        self.task = huey.task(name=TASK_NAME)(run_job)

    def enqueue(self, job_id: int, delay: float | None = None) -> None:
        """Deliver a job id; if the queue is out of reach, leave the job to recovery.

        The Job row is already committed as queued, so refusing the request (a 500
        after the upload was stored) would only make the client retry into a 409. A
        worker's recovery sweep delivers every queued job the queue does not hold.
        """
        try:
            if delay:
                self.task.schedule(args=(job_id,), delay=delay)
            else:
                self.task(job_id)
        except QUEUE_UNREACHABLE as exc:
            log.warning("queue unreachable (%s: %s); job %s stays queued in the database "
                        "and a worker's recovery sweep will deliver it",
                        type(exc).__name__, exc, job_id)

    def ping(self) -> None:
        storage = self.huey.storage
        if hasattr(storage, "conn") and hasattr(storage.conn, "ping"):
            storage.conn.ping()
        else:
            self.huey.pending_count()

    def waiting_job_ids(self) -> set[int]:
        """Job ids sitting in the queue or its schedule (for recovery)."""
        ids: set[int] = set()
        for task in [*self.huey.pending(), *self.huey.scheduled()]:
            if task.args:
                ids.add(int(task.args[0]))
        return ids

    def consumer(self, workers: int, *, embedded: bool = False) -> Any:
        consumer = self.huey.create_consumer(
            workers=workers, worker_type="thread", periodic=False, check_worker_health=True,
            # Poll the SQLite queue at least every second once idle (default backs off to 10 s).
            max_delay=1.0,
        )
        if embedded:
            # Inside `serve` the web server owns the signals (and TestClient runs the
            # lifespan off the main thread, where signal handlers cannot be set).
            consumer._set_signal_handlers = lambda: None
        return consumer
