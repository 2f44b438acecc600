"""Transcripts in and out as files: an imported SRT, WebVTT or JSON becomes a new
version; a version leaves as txt, md, srt, vtt, json or docx (audited).

Parsing is ``service.importers``'s and rendering ``pipelines.export``'s; here the rows
are written and read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, col, select

from pipelines.export import FORMATS, MEDIA_TYPES, ExportDoc, ExportSegment, render
from service.crud import audit
from service.crud.transcripts import (
    SegmentIn,
    add_version,
    get_transcript,
    segment_view,
    speaker_names,
    versions,
)
from service.errors import Invalid
from service.importers import Cue, Parsed
from service.models.people import Person
from service.models.recordings import Participant, Recording, Speaker
from service.models.transcripts import (
    Segment,
    Transcript,
)
from service.models.users import User
from service.visibility import (
    RESTRICTED_TEXT,
    view_of,
)

UNNAMED = "UNKNOWN"


def _people_by_name(session: Session) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for p in session.exec(select(Person)).all():
        assert p.id is not None
        for name in {p.name, *p.alt_names}:
            found.setdefault(name, set()).add(p.id)
    return found


def import_version(session: Session, *, recording_id: int, parsed: Parsed, language: str,
                   model: str, actor: User) -> Transcript:
    """Store an imported transcript as a new version (backend "import") and name speakers.

    Speakers: a JSON segment's ``label`` is kept when the recording maps it to the same
    person (or does not know it yet); a name (SRT/WebVTT, or a JSON label that now means
    someone else) becomes a label of its own, mapped to the person of exactly that name
    or alternative name when there is just one. Existing mappings are never changed.
    """
    rows = {s.label: s for s in session.exec(
        select(Speaker).where(Speaker.recording_id == recording_id))}
    by_name = _people_by_name(session)
    person_ids = set(session.exec(select(Person.id)))
    new_map: dict[str, int | None] = {}

    def resolve(cue: Cue) -> str:
        hint = cue.person_id if cue.person_id in person_ids else None
        if cue.label:
            row = rows.get(cue.label)
            mapped = row.person_id if row else new_map.get(cue.label)
            if (row is None and cue.label not in new_map) or hint is None or mapped == hint:
                if row is None and cue.label not in new_map:
                    new_map[cue.label] = hint
                return cue.label
        name = cue.speaker or cue.label or UNNAMED
        if name not in rows and name not in new_map:
            if hint is None and len(by_name.get(name, ())) == 1:
                hint = next(iter(by_name[name]))
            new_map[name] = hint if name != UNNAMED else None
        return name

    segments = [
        SegmentIn(start=c.start, end=c.end, speaker=resolve(c), text=c.text,
                  language=c.language or language, words=[dict(w) for w in c.words])
        for c in parsed.cues
    ]
    transcript = add_version(session, recording_id=recording_id, segments=segments,
                             backend="import", model=model, language=language,
                             created_by=actor.id)
    session.flush()
    for row in session.exec(select(Speaker).where(
            Speaker.recording_id == recording_id, col(Speaker.label).in_(list(new_map)))):
        if row.person_id is None and new_map.get(row.label) is not None:
            row.person_id = new_map[row.label]
            session.add(row)
    audit.record(session, actor=actor, action="import", object_type="transcript",
                 object_id=transcript.id,
                 summary=f"recording {recording_id}, version {transcript.version}, "
                         f"{parsed.format}, {len(segments)} segments")
    session.commit()
    session.refresh(transcript)
    return transcript


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    media_type: str
    filename: str
    ascii_filename: str


def export_doc(session: Session, *, recording: Recording, transcript: Transcript,
               redact: bool) -> ExportDoc:
    """The transcript as export rows: names not labels, hidden spans withheld if ``redact``."""
    assert recording.id is not None
    names = speaker_names(session, recording.id)
    view = view_of(session, recording.id, redact=redact)
    segments = session.exec(
        select(Segment).where(Segment.transcript_id == transcript.id).order_by(col(Segment.idx))
    ).all()
    rows = []
    for s in segments:
        seg = segment_view(s, names, view)
        rows.append(ExportSegment(
            start=seg.start, end=seg.end, speaker=seg.name or seg.speaker,
            text=seg.text, label=seg.speaker, language=seg.language,
            words=tuple(w.model_dump() for w in seg.words), person_id=seg.person_id,
            restricted=seg.restricted.value if seg.restricted else "",
        ))
    participants = session.exec(
        select(Participant, Person).join(Person, col(Person.id) == Participant.person_id)
        .where(Participant.recording_id == recording.id).order_by(col(Participant.id))
    ).all()
    all_versions = versions(session, recording.id)
    metadata = {
        "recording": str(recording.id),
        "date": recording.recorded_at.date().isoformat() if recording.recorded_at else "",
        "place": recording.location or "",
        "participants": ", ".join(f"{pe.name} ({pa.role.value})" for pa, pe in participants),
        "source": recording.source.value,
        "language": transcript.language or recording.language or "",
        "version": (f"{transcript.version} of {len(all_versions)} ({transcript.backend}, "
                    f"{transcript.model}, {transcript.created_at.date().isoformat()})"),
    }
    if redact:
        withheld = sum(1 for r in rows if r.text == RESTRICTED_TEXT and r.restricted)
        if withheld:
            metadata["withheld"] = f"{withheld} restricted segment(s)"
    return ExportDoc(title=recording.title, segments=rows,
                     language=transcript.language or recording.language or "",
                     metadata=metadata)


def _slug(title: str) -> str:
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", title)
    return "-".join(cleaned.split())[:80] or "transcript"


def export(session: Session, *, recording: Recording, fmt: str, version: int | None,
           actor: User | None, redact: bool, via: str = "api") -> ExportFile:
    """Render an export and audit it; raises NoTranscript, Invalid for a bad format."""
    if fmt not in FORMATS:
        raise Invalid(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    assert recording.id is not None
    transcript = get_transcript(session, recording_id=recording.id, version=version)
    doc = export_doc(session, recording=recording, transcript=transcript, redact=redact)
    content = render(doc, fmt)
    audit.record(session, actor=actor, action="export", object_type="recording",
                 object_id=recording.id,
                 summary=f"{fmt}, version {transcript.version}, "
                         f"{'redacted' if redact else 'full'} ({via})")
    session.commit()
    stem = f"{_slug(recording.title)}-v{transcript.version}"
    return ExportFile(content=content, media_type=MEDIA_TYPES[fmt], filename=f"{stem}.{fmt}",
                      ascii_filename=f"recording-{recording.id}-v{transcript.version}.{fmt}")
