"""/api/v1/recordings: upload, list, read, update, erase, stream audio, re-transcribe."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError
from sqlmodel import Session

from pipelines.audio import check_decodable, probe
from pipelines.errors import AudioError
from pipelines.types import AudioInfo
from service import model_catalog
from service.access import can_see_recording, get_recording, recording_filter
from service.api.deps import AnyUser, Limit, Offset, Researcher, SessionDep
from service.api.upload import receive_multipart
from service.crud import jobs as job_crud
from service.crud import recordings as crud
from service.models.base import Page
from service.models.jobs import JobOptions, JobPublic
from service.models.recordings import (
    Recording,
    RecordingMeta,
    RecordingPublic,
    RecordingUpdate,
)
from service.models.users import User
from service.silenced import silenced_copy
from service.storage import ReceivedUpload, Storage, StorageFullError, is_disk_full
from service.visibility import is_redacted_for, segment_extents, view_of

router = APIRouter(prefix="/recordings", tags=["recordings"])

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "meta"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "meta": {
                            "type": "string",
                            "description": "JSON of RecordingMeta: "
                            '{"title": "…", "recorded_at": "2025-03-01T10:00:00Z", '
                            '"location": "…", "language": "zh", "source": "interview", '
                            '"participants": [{"person_id": 1, "role": "interviewee"}], '
                            '"num_speakers": 2}',
                        },
                    },
                }
            }
        },
    }
}



def _parse_meta(raw: bytes | None) -> RecordingMeta:
    if raw is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Missing 'meta' part: send JSON such as {\"title\": \"Interview with …\"}.",
        )
    try:
        return RecordingMeta.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'meta'}: {e['msg']}" for e in exc.errors()
        )
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"The 'meta' part is not valid recording metadata ({problems[:600]}). "
            "It must be JSON with at least a 'title'.",
        ) from None


def _probe(upload: ReceivedUpload, max_seconds: float) -> AudioInfo:
    """Check the upload is a recording in an allowed format, short enough, that decodes.

    415 for anything else (pipelines.audio refuses playlists, file lists and other
    formats that point at other files or URLs); 413 past the duration limit, before any
    decoding. Messages name the file as the client sent it, not its temp name.
    """
    assert upload.tmp_path is not None
    try:
        info = probe(upload.tmp_path)
        if info.duration > max_seconds:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"{upload.filename or 'The file'} is {_hms(info.duration)} long; the limit "
                f"is {_hms(max_seconds)} per recording. Split it into shorter parts, or "
                f"have the administrator raise SOURCEBOOK_MAX_DURATION_HOURS (now "
                f"{max_seconds / 3600:g}).",
            )
        check_decodable(upload.tmp_path, info=info)
    except AudioError as exc:
        detail = str(exc).replace(upload.tmp_path.name, upload.filename or "The file")
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail) from None
    return info


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=UPLOAD_BODY,
    responses={
        409: {"description": "The same bytes were uploaded before; the body names the id "
                             "when the caller may see that recording."},
        413: {"description": "Over SOURCEBOOK_MAX_UPLOAD_MB or SOURCEBOOK_MAX_DURATION_HOURS."},
        415: {"description": "Not a recording in an accepted format (playlists and other "
                             "formats that refer to other files are refused), or it does "
                             "not decode."},
        507: {"description": "The recordings volume is full."},
    },
)
async def upload_recording(request: Request, user: Researcher) -> JSONResponse:
    """Upload a recording (multipart: file + meta) and queue its transcription."""
    state = request.app.state
    storage: Storage = state.storage
    try:
        upload = await receive_multipart(
            request, storage=storage, max_bytes=state.settings.max_upload_bytes
        )
    except StorageFullError:
        raise HTTPException(507, _DISK_FULL) from None
    try:
        return await run_in_threadpool(_store_upload, request, user, upload)
    finally:
        upload.discard()  # a no-op once the file was moved into place


_DISK_FULL = (
    "The recordings volume is full; nothing was stored. Free space or move "
    "SOURCEBOOK_RECORDINGS_DIR to a larger volume, then upload again."
)


def _store_upload(request: Request, user: User, upload: ReceivedUpload) -> JSONResponse:
    state = request.app.state
    if upload.tmp_path is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "Missing 'file' part: attach the media, e.g. curl -F file=@interview.m4a.",
        )
    if upload.size == 0:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "The uploaded file is empty (0 bytes). Check the file on your side and upload again.",
        )
    meta = _parse_meta(upload.fields.get("meta"))
    info = _probe(upload, state.settings.max_duration_seconds)
    with Session(state.engine, expire_on_commit=False) as session:
        existing = crud.find_by_sha256(session, upload.sha256)
        if existing is not None:
            return _duplicate(existing, user)
        try:
            recording, job = crud.create_recording(
                session,
                storage=state.storage,
                upload=upload,
                meta=meta,
                duration=info.duration,
                format_name=info.format_name,
                codec=info.codec,
                sample_rate=info.sample_rate,
                channels=info.channels,
                actor=user,
            )
        except OSError as exc:
            if is_disk_full(exc):
                raise HTTPException(507, _DISK_FULL) from None
            raise
        body = {
            "recording": crud.to_public(session, recording).model_dump(mode="json"),
            "job": (JobPublic.model_validate(job).model_copy(
                update={"recording_title": recording.title}).model_dump(mode="json")),
        }
    assert job.id is not None
    state.jobs.enqueue(job.id)
    return JSONResponse(status_code=status.HTTP_201_CREATED, content=body)


def _duplicate(existing: Recording, user: User) -> JSONResponse:
    """409 for bytes already stored: with the id only when the caller may see it.

    The bytes are stored once (the hash is unique), so the upload cannot succeed; but
    naming a recording the caller may not see would confirm its id to anyone who holds
    a copy of the file.
    """
    if can_see_recording(user, existing):
        return JSONResponse(
            status_code=status.HTTP_409_CONFLICT,
            content={
                "detail": f"These exact bytes were uploaded before as recording "
                f"{existing.id}. Use that recording, or upload a different file.",
                "recording_id": existing.id,
            },
        )
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={
            "detail": "These exact bytes are already in the archive, in a recording you "
            "may not see, so they were not stored again. Ask an editor to give you access "
            "to it, or upload a different file.",
        },
    )


@router.get("", response_model=Page[RecordingPublic])
def list_recordings(
    session: SessionDep,
    user: AnyUser,
    limit: Limit = 100,
    offset: Offset = 0,
    person_id: int | None = Query(None, description="Recordings this person takes part in"),
    q: str | None = Query(None, max_length=200, description="Text in the title"),
) -> Page[RecordingPublic]:
    """List the recordings the caller may see."""
    rows, count = crud.list_recordings(
        session, visible=recording_filter(user), person_id=person_id, q=q, limit=limit,
        offset=offset,
    )
    return Page(data=[crud.to_public(session, r) for r in rows], count=count)


@router.get("/{recording_id}", response_model=RecordingPublic)
def read_recording(recording_id: int, session: SessionDep, user: AnyUser) -> RecordingPublic:
    """Read a recording's metadata, participants and speakers."""
    return crud.to_public(session, get_recording(session, user, recording_id))


@router.patch("/{recording_id}", response_model=RecordingPublic)
def update_recording(
    recording_id: int, data: RecordingUpdate, session: SessionDep, user: Researcher
) -> RecordingPublic:
    """Change a recording's metadata or participants."""
    recording = get_recording(session, user, recording_id)
    crud.update_recording(session, recording=recording, data=data, actor=user)
    return crud.to_public(session, recording)


@router.delete("/{recording_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_recording(
    recording_id: int, request: Request, session: SessionDep, user: Researcher
) -> Response:
    """Erase a recording: media, transcripts, search rows and quotes' text."""
    recording = get_recording(session, user, recording_id)
    crud.delete_recording(
        session, storage=request.app.state.storage, recording=recording, actor=user
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{recording_id}/audio",
    response_class=FileResponse,
    responses={206: {"description": "Partial content for a Range request"}},
)
def stream_audio(
    recording_id: int, request: Request, session: SessionDep, user: AnyUser
) -> FileResponse:
    """Stream the normalised audio (the original until it exists); honours Range."""
    recording = get_recording(session, user, recording_id)
    storage: Storage = request.app.state.storage
    if recording.normalised_path:
        path, media_type = storage.path_of(recording.normalised_path), "audio/wav"
    else:
        path, media_type = storage.path_of(recording.media_path), "application/octet-stream"
    if not path.exists():
        raise HTTPException(
            status.HTTP_410_GONE,
            "The media file is missing from storage. Run `sourcebook fsck` and restore it from "
            "a backup.",
        )
    view = view_of(session, recording_id, redact=is_redacted_for(user))
    silence = view.silenced(segment_extents(session, recording_id),
                           recording.duration or 0.0)
    if silence:
        # The audio would say what the transcript withholds: authors hear silence there.
        if not recording.normalised_path:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "This recording has passages withheld from authors; its audio is available "
                "to you once processing has finished (follow the recording's job).")
        path = silenced_copy(path, storage.cache_dir(recording_id), silence)
    return FileResponse(path, media_type=media_type, filename=f"recording-{recording.id}.wav")


@router.post(
    "/{recording_id}/transcribe", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic
)
def transcribe_recording(
    recording_id: int,
    request: Request,
    session: SessionDep,
    user: Researcher,
    options: JobOptions | None = None,
) -> JobPublic:
    """Queue a new transcription run; it will write a new transcript version.

    ``backend`` and ``model`` are names from GET /api/v1/models, never paths.
    """
    recording = get_recording(session, user, recording_id)
    options = options or JobOptions()
    model_catalog.check_request(request.app.state.settings, backend=options.backend,
                                model=options.model)
    job = job_crud.create_job(
        session, recording=recording, options=options, actor=user
    )
    assert job.id is not None
    request.app.state.jobs.enqueue(job.id)
    return JobPublic.model_validate(job).model_copy(update={"recording_title": recording.title})
