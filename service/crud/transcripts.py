"""Reading transcript versions with speaker names joined at read time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.models.people import Person
from service.models.recordings import Speaker
from service.models.transcripts import (
    Segment,
    SegmentPublic,
    Transcript,
    TranscriptPublic,
    TranscriptSpeaker,
    WordPublic,
)


class NoTranscript(LookupError):
    pass


def versions(session: Session, recording_id: int) -> list[int]:
    return list(session.exec(
        select(Transcript.version).where(Transcript.recording_id == recording_id)
        .order_by(col(Transcript.version))
    ).all())


def get_transcript(session: Session, *, recording_id: int, version: int | None = None,
                   ) -> Transcript:
    query = select(Transcript).where(Transcript.recording_id == recording_id)
    if version is not None:
        query = query.where(Transcript.version == version)
    transcript = session.exec(query.order_by(col(Transcript.version).desc())).first()
    if transcript is None:
        have = versions(session, recording_id)
        if version is not None and have:
            raise NoTranscript(
                f"Recording {recording_id} has no transcript version {version}; it has "
                f"versions {', '.join(map(str, have))}."
            )
        raise NoTranscript(
            f"Recording {recording_id} has no transcript yet. Follow its job with "
            "GET /api/v1/jobs?recording_id=…, or import one."
        )
    return transcript


def speaker_names(session: Session, recording_id: int) -> dict[str, tuple[int | None, str | None]]:
    """label -> (person_id, name) for a recording."""
    rows = session.exec(
        select(Speaker, Person)
        .join(Person, col(Person.id) == Speaker.person_id, isouter=True)
        .where(Speaker.recording_id == recording_id)
    ).all()
    return {s.label: (s.person_id, p.name if p else None) for s, p in rows}


def to_public(session: Session, transcript: Transcript) -> TranscriptPublic:
    names = speaker_names(session, transcript.recording_id)
    segments = session.exec(
        select(Segment).where(Segment.transcript_id == transcript.id).order_by(col(Segment.idx))
    ).all()
    labels = sorted({s.speaker for s in segments} | set(names))
    speakers = [
        TranscriptSpeaker(label=label, person_id=names.get(label, (None, None))[0],
                          name=names.get(label, (None, None))[1])
        for label in labels
    ]
    assert transcript.id is not None
    return TranscriptPublic(
        id=transcript.id,
        recording_id=transcript.recording_id,
        version=transcript.version,
        versions=versions(session, transcript.recording_id),
        backend=transcript.backend,
        model=transcript.model,
        language=transcript.language,
        created_at=transcript.created_at,
        speakers=speakers,
        segments=[
            SegmentPublic(
                id=s.id or 0, start=s.start, end=s.end, speaker=s.speaker,
                person_id=names.get(s.speaker, (None, None))[0],
                name=names.get(s.speaker, (None, None))[1],
                text=s.text, language=s.language,
                words=[WordPublic.model_validate(w) for w in s.words],
                words_timed=s.words_timed, edited=s.edited,
            )
            for s in segments
        ],
    )


class SegmentIn:
    """One segment to store (from the pipeline, an import, or a test)."""

    __slots__ = ("end", "language", "speaker", "start", "text", "words")

    def __init__(self, *, start: float, end: float, speaker: str, text: str,
                 language: str = "", words: list[dict[str, Any]] | None = None) -> None:
        self.start = start
        self.end = end
        self.speaker = speaker
        self.text = text
        self.language = language
        self.words = words or []


def add_version(
    session: Session,
    *,
    recording_id: int,
    segments: Sequence[SegmentIn],
    backend: str,
    model: str,
    language: str,
    created_by: int | None,
    job_id: int | None = None,
) -> Transcript:
    """Add a transcript version with its segments and speaker labels (no commit).

    The one write path for transcripts: the worker, imports, the benchmarks and the
    tests all come through here, so the search index (kept by triggers on SQLite and
    an expression index on PostgreSQL) always sees the same ``search_text``.
    """
    from pipelines.text import cjk_spaced

    last = session.exec(
        select(func.max(Transcript.version)).where(Transcript.recording_id == recording_id)
    ).one()
    transcript = Transcript(
        recording_id=recording_id, version=(last or 0) + 1, job_id=job_id, backend=backend,
        model=model, language=language, created_by=created_by,
    )
    session.add(transcript)
    session.flush()
    assert transcript.id is not None
    session.add_all(
        Segment(
            transcript_id=transcript.id, recording_id=recording_id, idx=i,
            start=round(s.start, 3), end=round(s.end, 3), speaker=s.speaker, text=s.text,
            language=s.language, words=s.words, search_text=cjk_spaced(s.text),
        )
        for i, s in enumerate(segments)
    )
    known = set(session.exec(select(Speaker.label).where(Speaker.recording_id == recording_id)))
    for label in sorted({s.speaker for s in segments} - known):
        session.add(Speaker(recording_id=recording_id, label=label))
    return transcript
