"""Transcripts: read, name speakers, correct segments, import and export.

Routes (all under /api/v1):

- ``GET  /recordings/{id}/transcript[?version=N]``: a version, withheld spans redacted for
  authors, every segment marked with the restriction overlapping it.
- ``POST /recordings/{id}/transcript``: import SRT, WebVTT or Sourcebook JSON as a version.
- ``GET|PUT /recordings/{id}/speakers``: the label -> person map.
- ``PATCH /segments/{id}`` and ``PATCH /recordings/{rid}/segments/{sid}``: correct a segment.
  The second form also checks that the segment belongs to that recording (404 if not),
  for clients that hold a segment id next to the recording they think it is from.
- ``GET  /segments/{id}/revisions``: the corrections of a segment, newest first.
- ``GET  /recordings/{id}/transcript/export?format=…[&version=N]``: a download.

The decisions behind corrections and imports are in ``service.crud.transcripts``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field, StringConstraints
from sqlmodel import Session, SQLModel

from pipelines.export import FORMATS
from service import importers
from service.access import get_child, get_recording
from service.api.deps import AnyUser, Limit, Offset, Researcher, SessionDep
from service.crud import corrections, speakers, transcript_files
from service.crud import jobs as job_crud
from service.crud import transcripts as crud
from service.models import transcripts
from service.models.base import Page
from service.models.recordings import Recording
from service.models.transcripts import Segment, TranscriptSpeaker
from service.models.users import User
from service.visibility import is_redacted_for

router = APIRouter(tags=["transcripts"])

@router.get("/recordings/{recording_id}/transcript", response_model=transcripts.TranscriptView)
def read_transcript(
    recording_id: int,
    session: SessionDep,
    user: AnyUser,
    version: int | None = Query(None, ge=1, description="An older version; default: latest"),
) -> Response:
    """Read the current (or a given) transcript version with speaker names."""
    get_recording(session, user, recording_id)
    transcript = crud.get_transcript(session, recording_id=recording_id, version=version)
    # Built by crud.transcript_json (the stored words copied in as they are), so FastAPI
    # gets bytes; response_model above still documents the shape.
    return Response(crud.transcript_json(session, transcript, user=user),
                    media_type="application/json")


# ----------------------------------------------------------------------------- speakers

SpeakerMapBody = Annotated[
    dict[Annotated[str, StringConstraints(max_length=50)], int | None],
    Body(examples=[{"SPEAKER_00": 1, "SPEAKER_01": 2, "SPEAKER_02": None}], max_length=200,
         description="label -> person id, or null to unmap; labels left out keep theirs"),
]


@router.get("/recordings/{recording_id}/speakers", response_model=list[TranscriptSpeaker])
def read_speakers(recording_id: int, session: SessionDep, user: AnyUser,
                  ) -> list[TranscriptSpeaker]:
    """Read a recording's speaker labels, the people they are mapped to, and who each
    voice sounds like (``suggestion``: a consenting person and the similarity, or null).

    Accept a suggestion with the ordinary PUT of the speaker map."""
    get_recording(session, user, recording_id)
    return speakers.speaker_map(session, recording_id)


@router.put("/recordings/{recording_id}/speakers", response_model=list[TranscriptSpeaker])
def update_speakers(recording_id: int, mapping: SpeakerMapBody, request: Request,
                    session: SessionDep, user: Researcher) -> list[TranscriptSpeaker]:
    """Map speaker labels to people; every read and export then shows their names.

    A label named as a person who consented to voice recognition is added to their
    voiceprint; named as anyone else, its voice embedding is deleted."""
    get_recording(session, user, recording_id)
    return speakers.set_speakers(session, recording_id=recording_id, mapping=mapping,
                                 actor=user, enqueue=request.app.state.jobs.enqueue)


# ----------------------------------------------------------------------------- corrections

class SegmentUpdate(SQLModel):
    """A correction. The time span is not editable: quotes and citations point at it."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    text: str | None = Field(default=None, max_length=20_000)
    speaker: str | None = Field(default=None, min_length=1, max_length=50)


def _visible_segment(session: Session, user: User, segment_id: int) -> Segment:
    return get_child(session, user, Segment, segment_id, "segment")


def align_later(request: Request, session: Session, *, recording_id: int,
                transcript_id: int, segment_ids: list[int] | None, user: User,
                joined: list[list[int]] | None = None) -> int | None:
    """Queue the alignment of given text, if there is audio to align it to. Never in the
    request: the API process runs no model work (a worker, or the worker process `serve`
    starts without Redis, does). ``joined``: groups of neighbouring segments aligned as
    one text."""
    recording = session.get(Recording, recording_id)
    if recording is None or not recording.normalised_path:
        return None
    job = job_crud.create_align_job(session, recording_id=recording_id,
                                    transcript_id=transcript_id, segment_ids=segment_ids,
                                    actor=user, joined=joined)
    assert job.id is not None
    request.app.state.jobs.enqueue(job.id)
    return job.id


def _correct(request: Request, session: Session, user: User, segment_id: int,
             data: SegmentUpdate) -> transcripts.SegmentCorrection:
    if data.text is None and data.speaker is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "Nothing to change: send \"text\" and/or \"speaker\".")
    segment, revision = corrections.correct_segment(
        session, segment_id=segment_id, text=data.text, speaker=data.speaker, actor=user)
    view = corrections.correction_view(session, segment=segment, revision=revision, user=user)
    if revision is not None and revision.before_text != revision.after_text:
        assert segment.id is not None
        view.align_job_id = align_later(
            request, session, recording_id=segment.recording_id,
            transcript_id=segment.transcript_id, segment_ids=[segment.id], user=user)
    return view


@router.patch("/segments/{segment_id}", response_model=transcripts.SegmentCorrection)
def update_segment(segment_id: int, data: SegmentUpdate, request: Request,
                   session: SessionDep, user: Researcher) -> transcripts.SegmentCorrection:
    """Correct a segment's text and/or speaker; the change is stored as a revision."""
    _visible_segment(session, user, segment_id)
    return _correct(request, session, user, segment_id, data)


@router.patch("/recordings/{recording_id}/segments/{segment_id}",
              response_model=transcripts.SegmentCorrection)
def update_recording_segment(recording_id: int, segment_id: int, data: SegmentUpdate,
                             request: Request, session: SessionDep, user: Researcher,
                             ) -> transcripts.SegmentCorrection:
    """Correct a segment, checking that it belongs to the given recording."""
    get_recording(session, user, recording_id)
    segment = session.get(Segment, segment_id)
    if segment is None or segment.recording_id != recording_id:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"Recording {recording_id} has no segment {segment_id}. Segment ids change with "
            f"every transcript version: read GET /api/v1/recordings/{recording_id}/transcript "
            "for this recording's segment ids.",
        )
    return _correct(request, session, user, segment_id, data)


@router.get("/segments/{segment_id}/revisions", response_model=Page[transcripts.RevisionPublic])
def list_revisions(segment_id: int, session: SessionDep, user: AnyUser, limit: Limit = 100,
                   offset: Offset = 0) -> Page[transcripts.RevisionPublic]:
    """List a segment's revisions (who, when, before, after), newest first."""
    segment = _visible_segment(session, user, segment_id)
    rows, count = corrections.list_revisions(session, segment=segment, user=user, limit=limit,
                                      offset=offset)
    return Page(data=rows, count=count)


# ----------------------------------------------------------------------------- import

IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": "An SRT, WebVTT or Sourcebook JSON transcript (UTF-8, or UTF-16 with "
                       "a BOM); at most 20 MiB.",
        "content": {
            "text/srt": {"schema": {"type": "string"}},
            "application/x-subrip": {"schema": {"type": "string"}},
            "text/vtt": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


async def _read_capped(request: Request, limit: int) -> bytes:
    too_big = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"The transcript is larger than {limit // (1024 * 1024)} MiB; split it into parts "
        "or import it from the CLI.",
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/recordings/{recording_id}/transcript", status_code=status.HTTP_201_CREATED,
             response_model=transcripts.TranscriptView, openapi_extra=IMPORT_BODY,
             responses={400: {"description": "Invalid transcript; the detail names the line."},
                        413: {"description": "Over 20 MiB."},
                        415: {"description": "Not SRT, WebVTT or Sourcebook JSON."}})
async def import_transcript(
    recording_id: int,
    request: Request,
    user: Researcher,
    language: str | None = Query(None, max_length=16,
                                 description="zh, en …; default: the file's or the recording's"),
    source: str = Query("", max_length=200,
                        description="Where the transcript came from (stored as the model)"),
) -> transcripts.TranscriptView:
    """Import a published transcript (SRT, WebVTT or Sourcebook JSON) as a new version."""
    # SOURCEBOOK_MAX_IMPORT_MB (default 20 MiB; a 20-hour SRT is about 3 MB).
    data = await _read_capped(request, request.app.state.settings.max_import_bytes)
    return await run_in_threadpool(_import, request, user, recording_id, data,
                                   request.headers.get("content-type"), language, source)


def _import(request: Request, user: User, recording_id: int, data: bytes,
            content_type: str | None, language: str | None, source: str,
            ) -> transcripts.TranscriptView:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        recording = get_recording(session, user, recording_id)
        known = set(crud.speaker_names(session, recording_id))
        try:
            parsed = importers.parse(data, content_type, known_speakers=known)
        except importers.ImportProblem as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except importers.UnknownFormat as exc:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, str(exc)) from None
        transcript = transcript_files.import_version(
            session, recording_id=recording_id, parsed=parsed,
            language=language or parsed.language or recording.language or "",
            model=source or f"{parsed.format} import", actor=user,
        )
        view = crud.to_public(session, transcript, user=user)
        if any(s.words_timed == "estimated" for s in view.segments):
            assert transcript.id is not None
            view.align_job_id = align_later(request, session, recording_id=recording_id,
                                             transcript_id=transcript.id, segment_ids=None,
                                             user=user)
        return view


# ----------------------------------------------------------------------------- export

@router.get(
    "/recordings/{recording_id}/transcript/export",
    response_class=Response,
    responses={200: {"description": "The file, in the format's media type.",
                     "content": {"text/plain": {}, "text/markdown": {}, "text/vtt": {},
                                 "application/x-subrip": {}, "application/json": {},
                                 "application/vnd.openxmlformats-officedocument."
                                 "wordprocessingml.document": {}}},
               422: {"description": "Unknown format; the detail lists the formats."}},
)
def export_transcript(
    recording_id: int,
    session: SessionDep,
    user: AnyUser,
    format: str = Query("txt", description="txt, md, srt, vtt, json or docx"),
    version: int | None = Query(None, ge=1, description="An older version; default: latest"),
) -> Response:
    """Download a transcript with speaker names (restricted spans withheld for authors)."""
    recording = get_recording(session, user, recording_id)
    fmt = format.lower().lstrip(".")
    if fmt not in FORMATS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"Unknown export format {format!r}; use one of: "
                            f"{', '.join(FORMATS)}.")
    result = transcript_files.export(session, recording=recording, fmt=fmt, version=version,
                         actor=user, redact=is_redacted_for(user))
    disposition = (f'attachment; filename="{result.ascii_filename}"; '
                   f"filename*=UTF-8''{quote(result.filename)}")
    return Response(content=result.content, media_type=result.media_type,
                    headers={"Content-Disposition": disposition})
