"""Recordings: ingest, read, update and erase, with their participants and speakers."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import exists, func, update
from sqlmodel import Session, col, select

from service.crud import audit, voices
from service.errors import Invalid
from service.filemodes import private_dir
from service.models.base import utcnow
from service.models.jobs import Job, JobOptions
from service.models.people import Person
from service.models.quotes import Quote
from service.models.recordings import (
    Participant,
    ParticipantIn,
    ParticipantPublic,
    Recording,
    RecordingMeta,
    RecordingPublic,
    RecordingUpdate,
    Speaker,
    SpeakerPublic,
)
from service.models.transcripts import Segment
from service.models.users import User
from service.storage import ReceivedUpload, Storage, extension_for

ERASED = "[recording deleted]"


class UnknownPeople(Invalid):
    """Participants name people that do not exist."""


def find_by_sha256(session: Session, sha256: str) -> Recording | None:
    return session.exec(select(Recording).where(Recording.sha256 == sha256)).first()


def check_people(session: Session, participants: Sequence[ParticipantIn]) -> None:
    ids = {p.person_id for p in participants}
    if not ids:
        return
    found = set(session.exec(select(Person.id).where(col(Person.id).in_(ids))).all())
    missing = sorted(ids - found)
    if missing:
        raise UnknownPeople(
            f"participants name person_id {', '.join(map(str, missing))}, which does not exist. "
            "Create the person first with POST /api/v1/people, or fix the id."
        )


def create_recording(
    session: Session,
    *,
    storage: Storage,
    upload: ReceivedUpload,
    meta: RecordingMeta,
    duration: float,
    format_name: str,
    codec: str,
    sample_rate: int,
    channels: int,
    actor: User,
) -> tuple[Recording, Job]:
    """Store an upload: the row, its participants, a queued job and the file, atomically.

    The file is renamed into place after the rows are flushed and before the commit;
    if the commit fails the file is removed again, so either both exist or neither.
    """
    assert upload.tmp_path is not None
    check_people(session, meta.participants)
    recording = Recording.model_validate(
        meta.model_dump(exclude={"participants"})
        | {
            "sha256": upload.sha256,
            "size_bytes": upload.size,
            "duration": duration,
            "format_name": format_name,
            "codec": codec,
            "sample_rate": sample_rate,
            "channels": channels,
            "original_filename": upload.filename,
            "media_path": "",
            "created_by": actor.id,
        }
    )
    session.add(recording)
    session.flush()
    assert recording.id is not None
    for p in _dedupe(meta.participants):
        session.add(Participant(recording_id=recording.id, person_id=p.person_id, role=p.role))
    options = JobOptions(language=meta.language, num_speakers=meta.num_speakers)
    job = Job(
        recording_id=recording.id,
        options=options.model_dump(exclude_none=True),
        created_by=actor.id,
    )
    session.add(job)
    audit.record(
        session,
        actor=actor,
        action="upload",
        object_type="recording",
        object_id=recording.id,
        summary=f"{upload.size} bytes, sha256 {upload.sha256[:12]}…, {duration:.1f} s",
    )
    journal: Path | None = None
    try:
        recording.media_path, journal = storage.place_original(
            upload.tmp_path, recording.id, extension_for(format_name)
        )
        session.add(recording)
        session.commit()
    except BaseException:
        session.rollback()
        storage.remove_recording(recording.id)
        raise
    finally:
        if journal is not None:
            journal.unlink(missing_ok=True)
    return recording, job


def finish_interrupted_placements(session: Session, storage: Storage) -> list[str]:
    """Settle placements a killed process left half done; returns the originals removed.

    A journal whose original has a row: the commit happened, only the clean-up did not.
    One without: the row was never committed, so the file is an orphan and goes.
    """
    removed = []
    for journal, relative in storage.stale_placements():
        has_row = session.exec(
            select(Recording.id).where(Recording.media_path == relative)).first()
        if has_row is None and storage.remove_placed(relative):
            removed.append(relative)
        journal.unlink(missing_ok=True)
    return removed


def _dedupe(participants: Sequence[ParticipantIn]) -> list[ParticipantIn]:
    seen: set[tuple[int, str]] = set()
    out = []
    for p in participants:
        key = (p.person_id, p.role.value)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def to_public(session: Session, recording: Recording) -> RecordingPublic:
    parts = session.exec(
        select(Participant, Person)
        .join(Person, Person.id == Participant.person_id)  # type: ignore[arg-type]
        .where(Participant.recording_id == recording.id)
        .order_by(col(Participant.id))
    ).all()
    speakers = session.exec(
        select(Speaker, Person)
        .join(Person, Person.id == Speaker.person_id, isouter=True)  # type: ignore[arg-type]
        .where(Speaker.recording_id == recording.id)
        .order_by(col(Speaker.label))
    ).all()
    # The speaker map keeps the labels of every version (older versions still read with
    # names); who speaks in the recording is who speaks in its current version.
    current = set(session.exec(
        select(Segment.speaker).where(Segment.recording_id == recording.id,
                                      col(Segment.is_current)).distinct()).all())
    return RecordingPublic.model_validate(
        recording.model_dump()
        | {
            "participants": [
                ParticipantPublic(person_id=pa.person_id, role=pa.role, name=pe.name)
                for pa, pe in parts
            ],
            "speakers": [
                SpeakerPublic(label=s.label, person_id=s.person_id, name=pe.name if pe else None)
                for s, pe in speakers if s.label in current
            ],
        }
    )


def list_recordings(
    session: Session,
    *,
    visible: object,
    person_id: int | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Recording], int]:
    query = select(Recording).where(visible)  # type: ignore[arg-type]
    if person_id is not None:
        query = query.where(
            exists().where(
                Participant.recording_id == Recording.id,  # type: ignore[arg-type]
                Participant.person_id == person_id,  # type: ignore[arg-type]
            )
            | exists().where(
                Speaker.recording_id == Recording.id,  # type: ignore[arg-type]
                Speaker.person_id == person_id,  # type: ignore[arg-type]
            )
        )
    if q:
        query = query.where(col(Recording.title).ilike(f"%{q}%"))
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(Recording.created_at).desc(), col(Recording.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), count


def update_recording(
    session: Session, *, recording: Recording, data: RecordingUpdate, actor: User
) -> Recording:
    changes = data.model_dump(exclude_unset=True)
    participants = changes.pop("participants", None)
    if participants is not None:
        assert data.participants is not None
        check_people(session, data.participants)
        for old in session.exec(
            select(Participant).where(Participant.recording_id == recording.id)
        ).all():
            session.delete(old)
        session.flush()
        assert recording.id is not None
        for p in _dedupe(data.participants):
            session.add(Participant(recording_id=recording.id, person_id=p.person_id, role=p.role))
    for key, value in changes.items():
        setattr(recording, key, value)
    recording.updated_at = utcnow()
    session.add(recording)
    fields = sorted(changes) + (["participants"] if participants is not None else [])
    audit.record(
        session,
        actor=actor,
        action="update",
        object_type="recording",
        object_id=recording.id,
        summary="fields: " + ", ".join(fields),
    )
    session.commit()
    return recording


def delete_recording(
    session: Session, *, storage: Storage, recording: Recording, actor: User
) -> None:
    """Erase a recording: media, transcripts, search rows, speakers and quotes' text.

    The files are first moved aside, so a failed commit can put them back; the audit
    event stays, without content.
    """
    assert recording.id is not None
    rid = recording.id
    # Quotes survive as placeholders so chapters show that a source went away.
    session.execute(
        update(Quote)
        .where(col(Quote.recording_id) == rid)
        .values(verbatim=ERASED, edited=None, translation=None, recording_id=None)
    )
    audit.record(session, actor=actor, action="delete", object_type="recording", object_id=rid)
    # Its speaker rows go with it; the voiceprint samples it gave must go too.
    voices.forget_recording(session, rid, actor=actor)
    session.delete(recording)
    src = storage.recording_dir(rid)
    trash = storage.root / ".trash" / f"{rid}-{secrets.token_hex(4)}"
    moved = False
    try:
        if src.exists():
            private_dir(trash.parent)
            src.rename(trash)
            moved = True
        session.commit()
    except BaseException:
        session.rollback()
        if moved:
            trash.rename(src)
        raise
    shutil.rmtree(trash, ignore_errors=True)
