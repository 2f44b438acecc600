"""A job row as one run of a worker sees it: fenced by its attempt number.

Every write a run makes after its claim is conditional on the job still running under
that attempt (the fencing token, see :mod:`service.worker.tasks`). Shared by the
transcription, alignment and voiceprint jobs.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pipelines.runner import ModelCache
from service.config import Settings
from service.crud import audit
from service.models.base import utcnow
from service.models.jobs import Job, JobState
from service.models.recordings import Recording, RecordingStatus
from service.models.transcripts import Transcript
from service.storage import Storage

RETRY_BASE_SECONDS = 15.0


class JobLost(Exception):
    """This run no longer owns its job: it was re-queued after a stale heartbeat and
    claimed again, failed by recovery, or deleted. The run stops and writes nothing."""


@dataclass
class WorkerContext:
    """What a worker process holds for its lifetime (models load once per process)."""

    settings: Settings
    engine: Engine
    storage: Storage
    models: ModelCache
    queue: Any
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def owned(job_id: int, attempt: int) -> list[Any]:
    """SQL conditions: the job is running under this attempt (the run's fencing token)."""
    return [col(Job.id) == job_id, col(Job.state) == JobState.running,
            col(Job.attempts) == attempt]


def take(session: Session, job_id: int, attempt: int) -> Job:
    """Lock the job for this run's final write, or raise :class:`JobLost`.

    A conditional UPDATE as the transaction's first statement: it takes SQLite's write
    lock (a read first could not be upgraded once another writer committed) and
    PostgreSQL's row lock, so recovery cannot re-queue the job before the commit.
    """
    taken = session.execute(sa.update(Job).where(*owned(job_id, attempt))
                            .values(heartbeat_at=utcnow()))
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise JobLost(f"job {job_id} attempt {attempt} is no longer running")
    job = session.get(Job, job_id)
    assert job is not None
    return job


def finish(ctx: WorkerContext, job_id: int, attempt: int, state: JobState,
            error: str | None) -> None:
    with Session(ctx.engine) as session:
        try:
            job = take(session, job_id, attempt)
        except JobLost:
            return  # deleted, or no longer this run's
        job.state = state
        job.error = error[:5000] if error else None
        job.finished_at = utcnow()
        session.add(job)
        recording = session.get(Recording, job.recording_id)
        if recording is not None and recording.status == RecordingStatus.processing:
            has_transcript = session.exec(
                select(Transcript.id).where(Transcript.recording_id == recording.id)
            ).first()
            recording.status = (RecordingStatus.transcribed if has_transcript
                                else RecordingStatus.failed)
            session.add(recording)
        audit.record(session, actor=None, action=f"job-{state.value}", object_type="job",
                     object_id=job_id, summary=(error or "")[:300])
        session.commit()


def retry_or_fail(ctx: WorkerContext, job_id: int, attempt: int, error: str) -> None:
    with Session(ctx.engine) as session:
        try:
            job = take(session, job_id, attempt)
        except JobLost:
            return  # deleted, or no longer this run's
        if job.attempts >= ctx.settings.job_max_attempts:
            session.close()
            finish(ctx, job_id, attempt, JobState.failed,
                    f"failed after {job.attempts} attempts; last error: {error}")
            return
        job.state = JobState.queued
        job.error = f"attempt {job.attempts} failed, will retry: {error}"[:5000]
        session.add(job)
        session.commit()
        delay = RETRY_BASE_SECONDS * 2 ** (job.attempts - 1)
    ctx.queue.enqueue(job_id, delay=delay)
