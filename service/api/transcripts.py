"""/api/v1/recordings/{id}/transcript: read a transcript version."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status

from service.access import get_recording
from service.api.deps import AnyUser
from service.crud import transcripts as crud
from service.db import SessionDep
from service.models.transcripts import TranscriptPublic

router = APIRouter(tags=["transcripts"])


@router.get("/recordings/{recording_id}/transcript", response_model=TranscriptPublic)
def read_transcript(
    recording_id: int,
    session: SessionDep,
    user: AnyUser,
    version: int | None = Query(None, ge=1, description="An older version; default: latest"),
) -> TranscriptPublic:
    """Read the current (or a given) transcript version with speaker names."""
    get_recording(session, user, recording_id)
    try:
        transcript = crud.get_transcript(session, recording_id=recording_id, version=version)
    except crud.NoTranscript as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return crud.to_public(session, transcript)
