"""A recording's speaker map: which person each diarization label (SPEAKER_00) is.

Every read, search result, quote and export names speakers through this map, so a
change here shows everywhere at once.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from service.crud import audit, voices
from service.crud.transcripts import speaker_names
from service.errors import Invalid
from service.models.people import Person
from service.models.recordings import Speaker
from service.models.transcripts import (
    TranscriptSpeaker,
)
from service.models.users import User


class SpeakerMapError(Invalid):
    """A speaker map naming a label or a person that does not exist."""


def speaker_map(session: Session, recording_id: int) -> list[TranscriptSpeaker]:
    names = speaker_names(session, recording_id)
    sounds_like = voices.suggestions(session, recording_id)
    return [TranscriptSpeaker(label=label, person_id=pid, name=name,
                              suggestion=sounds_like.get(label))
            for label, (pid, name) in sorted(names.items())]


def set_speakers(session: Session, *, recording_id: int, mapping: dict[str, int | None],
                 actor: User, enqueue: voices.Enqueue | None = None,
                 ) -> list[TranscriptSpeaker]:
    """Map labels to people (``None`` unmaps); labels not in ``mapping`` keep theirs.

    Naming is also where voice recognition's consent rules apply (service.crud.voices):
    a label named as a consenting person is enrolled in their voiceprint (or, without an
    embedding, a worker job recomputes it: ``enqueue`` gets its id after the commit); one
    named as anyone else loses its embedding.
    """
    if not mapping:
        raise SpeakerMapError(
            'Send at least one label, e.g. {"SPEAKER_00": 12}; null unmaps a label.'
        )
    rows = {s.label: s for s in session.exec(
        select(Speaker).where(Speaker.recording_id == recording_id))}
    unknown = sorted(set(mapping) - set(rows))
    if unknown:
        known = ", ".join(sorted(rows)) or "none yet (transcribe or import first)"
        raise SpeakerMapError(
            f"Recording {recording_id} has no speaker label(s) {', '.join(unknown)}. "
            f"Its labels are: {known}."
        )
    wanted = {pid for pid in mapping.values() if pid is not None}
    found = set(session.exec(select(Person.id).where(col(Person.id).in_(wanted))))
    missing = sorted(wanted - found)
    if missing:
        raise SpeakerMapError(
            f"No person with id {', '.join(map(str, missing))}. Create the person with "
            "POST /api/v1/people or check the id with GET /api/v1/people."
        )
    changes = []
    renamed: list[tuple[Speaker, int | None]] = []
    for label, person_id in sorted(mapping.items()):
        row = rows[label]
        if row.person_id != person_id:
            changes.append(f"{label}: {row.person_id} -> {person_id}")
            renamed.append((row, row.person_id))
            row.person_id = person_id
            session.add(row)
    audit.record(session, actor=actor, action="speakers", object_type="recording",
                 object_id=recording_id,
                 summary="; ".join(changes) if changes else "no change")
    voice = voices.on_named(session, renamed, actor=actor)
    session.commit()
    if enqueue is not None:
        for job_id in voice.jobs:
            enqueue(job_id)
    return speaker_map(session, recording_id)
