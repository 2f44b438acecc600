"""Re-cutting a transcript by hand: split a segment in two, or merge it with the next.

Routes (under /api/v1, researchers):

- ``POST /segments/{id}/split`` ``{"offset": 12, "speaker": "SPEAKER_01"}``: cut the
  text at that character; the second part speaks as ``speaker`` (default: unchanged).
- ``POST /segments/{id}/merge`` ``{"next_segment_id": 43, "speaker": "SPEAKER_00"}``:
  join the segment with the one right after it; ``speaker`` is needed when they differ.

Both answer with the segments the edit left and, where words must be timed again, the
alignment job that times them. The rules are in :mod:`service.crud.segment_edits`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field
from sqlmodel import Session, SQLModel

from service.access import get_child
from service.api.deps import Researcher, SessionDep
from service.api.transcripts import align_later
from service.crud import segment_edits
from service.models.transcripts import Segment, SegmentEdit
from service.models.users import User

router = APIRouter(tags=["transcripts"])


class SplitBody(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    #: Where the second part starts, in characters (Unicode code points) of the text.
    offset: int = Field(ge=1, le=20_000)
    speaker: str | None = Field(default=None, min_length=1, max_length=50)


class MergeBody(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    next_segment_id: int = Field(ge=1)
    speaker: str | None = Field(default=None, min_length=1, max_length=50)


def _answer(request: Request, session: Session, user: User,
            edit: segment_edits.Edit) -> SegmentEdit:
    view = segment_edits.edit_view(session, edit, user=user)
    if edit.realign:
        view.align_job_id = align_later(
            request, session, recording_id=view.recording_id,
            transcript_id=view.transcript_id, segment_ids=segment_edits.segment_ids(
                edit.segments), user=user, joined=edit.joined or None)
    return view


@router.post("/segments/{segment_id}/split", response_model=SegmentEdit)
def split_segment(segment_id: int, body: SplitBody, request: Request, session: SessionDep,
                  user: Researcher) -> SegmentEdit:
    """Cut a segment in two at a character of its text (a speaker change diarization
    missed, or a long turn); each part keeps its words' times where they were measured."""
    get_child(session, user, Segment, segment_id, "segment")
    edit = segment_edits.split_segment(session, segment_id=segment_id, offset=body.offset,
                                       speaker=body.speaker, actor=user)
    return _answer(request, session, user, edit)


@router.post("/segments/{segment_id}/merge", response_model=SegmentEdit)
def merge_segments(segment_id: int, body: MergeBody, request: Request, session: SessionDep,
                   user: Researcher) -> SegmentEdit:
    """Join a segment with the one right after it in the same version."""
    get_child(session, user, Segment, segment_id, "segment")
    get_child(session, user, Segment, body.next_segment_id, "segment")
    edit = segment_edits.merge_segments(session, segment_id=segment_id,
                                        next_segment_id=body.next_segment_id,
                                        speaker=body.speaker, actor=user)
    return _answer(request, session, user, edit)
