"""Jobs: create, cancel, list. The Job row is the source of truth; the queue delivers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.crud import audit
from service.errors import Conflict
from service.models.base import utcnow
from service.models.jobs import Job, JobOptions, JobState
from service.models.recordings import Recording, RecordingStatus
from service.models.users import User

ACTIVE = (JobState.queued, JobState.running)


class JobConflict(Conflict):
    """The request clashes with the job's state (e.g. a run is already active)."""


#: Job kinds: a transcription, and the alignment of given text (corrections, imports).
TRANSCRIBE, ALIGN = "transcribe", "align"


def active_job(session: Session, recording_id: int) -> Job | None:
    """The recording's transcription in progress, if any (alignments and voiceprint jobs
    may run beside: neither writes a transcript version)."""
    return session.exec(
        select(Job).where(Job.recording_id == recording_id, col(Job.state).in_(ACTIVE),
                          col(Job.kind) == TRANSCRIBE)
    ).first()


def create_align_job(session: Session, *, recording_id: int, transcript_id: int,
                     segment_ids: list[int] | None, actor: User | None,
                     joined: list[list[int]] | None = None) -> Job:
    """Queue the alignment of segments' text to the audio (no commit of its own caller's
    work is needed: this commits). ``segment_ids`` None: every segment of the version
    whose words are estimated (an import). ``joined``: neighbours aligned as one text,
    so that the aligned words place the cut between them (a split)."""
    options: dict[str, Any] = {"transcript_id": transcript_id, "segment_ids": segment_ids}
    if joined:
        options["joined"] = joined
    job = Job(recording_id=recording_id, kind=ALIGN, options=options,
              created_by=actor.id if actor else None)
    session.add(job)
    session.flush()
    what = "all estimated segments" if segment_ids is None else f"{len(segment_ids)} segment(s)"
    audit.record(session, actor=actor, action="align", object_type="job", object_id=job.id,
                 summary=f"recording {recording_id}, {what}")
    session.commit()
    return job


def create_job(
    session: Session, *, recording: Recording, options: JobOptions, actor: User
) -> Job:
    """Queue a transcription of ``recording``; refuses while another run is active."""
    assert recording.id is not None
    running = active_job(session, recording.id)
    if running is not None:
        raise JobConflict(
            f"Recording {recording.id} already has job {running.id} {running.state.value}. "
            f"Wait for it, or cancel it with POST /api/v1/jobs/{running.id}/cancel."
        )
    merged = JobOptions(language=recording.language, num_speakers=recording.num_speakers)
    merged = merged.model_copy(update=options.model_dump(exclude_none=True))
    job = Job(
        recording_id=recording.id,
        options=merged.model_dump(exclude_none=True),
        created_by=actor.id,
    )
    session.add(job)
    recording.status = RecordingStatus.queued
    session.add(recording)
    session.flush()
    audit.record(
        session, actor=actor, action="transcribe", object_type="job", object_id=job.id,
        summary=f"recording {recording.id}",
    )
    session.commit()
    return job


def request_cancel(session: Session, *, job: Job, actor: User) -> Job:
    """Cancel a queued job now, or ask a running one to stop at its next progress point."""
    if job.state not in ACTIVE:
        raise JobConflict(f"Job {job.id} is already {job.state.value}; nothing to cancel.")
    job.cancel_requested = True
    if job.state == JobState.queued:
        job.state = JobState.cancelled
        job.finished_at = utcnow()
        recording = session.get(Recording, job.recording_id)
        if recording is not None and recording.status == RecordingStatus.queued:
            recording.status = RecordingStatus.failed
            session.add(recording)
    session.add(job)
    audit.record(session, actor=actor, action="cancel", object_type="job", object_id=job.id)
    session.commit()
    return job


def list_jobs(
    session: Session,
    *,
    visible: object,
    state: JobState | None = None,
    recording_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Job], int]:
    query = select(Job).join(Recording, Recording.id == Job.recording_id).where(visible)  # type: ignore[arg-type]
    if state is not None:
        query = query.where(Job.state == state)
    if recording_id is not None:
        query = query.where(Job.recording_id == recording_id)
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Job.id).desc()).limit(limit).offset(offset)).all()
    return list(rows), count
