"""/api/v1/jobs: follow and cancel background work."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Query, status
from sqlmodel import Session, col, select

from service.access import get_child, recording_filter
from service.api.deps import Limit, Offset, Researcher, SessionDep, Staff
from service.crud import jobs as crud
from service.models.base import Page
from service.models.jobs import Job, JobPublic, JobState
from service.models.recordings import Recording
from service.models.users import User

router = APIRouter(prefix="/jobs", tags=["jobs"])


def _get(session: Session, user: User, job_id: int) -> Job:
    return get_child(session, user, Job, job_id, "job")


def _public(session: Session, jobs: Sequence[Job]) -> list[JobPublic]:
    """Jobs with their recording's title, for display (one query)."""
    ids = {j.recording_id for j in jobs}
    titles = dict(session.exec(select(Recording.id, Recording.title)
                               .where(col(Recording.id).in_(ids))).all()) if ids else {}
    out = []
    for j in jobs:
        public = JobPublic.model_validate(j)
        public.recording_title = titles.get(j.recording_id)
        out.append(public)
    return out


@router.get("", response_model=Page[JobPublic])
def list_jobs(
    session: SessionDep,
    user: Staff,
    limit: Limit = 100,
    offset: Offset = 0,
    state: JobState | None = Query(None),
    recording_id: int | None = Query(None),
) -> Page[JobPublic]:
    """List jobs, newest first."""
    rows, count = crud.list_jobs(
        session, visible=recording_filter(user), state=state, recording_id=recording_id,
        limit=limit, offset=offset,
    )
    return Page(data=_public(session, rows), count=count)


@router.get("/{job_id}", response_model=JobPublic)
def read_job(job_id: int, session: SessionDep, user: Staff) -> JobPublic:
    """Read a job's state, stage and progress."""
    return _public(session, [_get(session, user, job_id)])[0]


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic)
def cancel_job(job_id: int, session: SessionDep, user: Researcher) -> JobPublic:
    """Cancel a job; a running one stops at its next progress point."""
    job = _get(session, user, job_id)
    return _public(session, [crud.request_cancel(session, job=job, actor=user)])[0]
