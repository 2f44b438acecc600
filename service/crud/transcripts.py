"""Transcript versions: reading (speaker names joined at read time, restricted spans
withheld from authors), speaker naming, corrections with revisions, imports and exports.

Decisions (documented for the API):

- Speaker map (``PUT /recordings/{id}/speakers``): labels absent from the body keep their
  mapping, ``null`` unmaps. Two labels of one person read as one speaker in exports.
- A correction keeps the segment's time span. When its text changes, the words are
  re-timed: the new text is cut into words (one per CJK character, Latin words whole,
  punctuation attached to the word before) and the span is shared out in proportion to
  their character counts, so click-to-play still lands near the right word. Such words
  are estimates, which ``words_timed = False`` says; their probability is 1.0 (a person
  typed them).
- A correction's new speaker must be a label the recording already has, or a fresh
  diarization-style label ``SPEAKER_NN`` (which is added to the speaker map).
- Corrections belong to the version they were made on. Correcting an older version is
  allowed (it is still the record of that run) but the answer carries a ``warning``; a
  newer machine run never copies or drops them, and every read lists
  ``corrected_versions`` so they are never lost silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from pipelines.text import cjk_spaced
from pipelines.text import word_tokens as word_tokens  # re-exported; the tokenizer lives there
from pipelines.types import Timing
from service.crud import voices
from service.errors import NotFound
from service.models.people import Person
from service.models.recordings import Recording, Speaker
from service.models.transcripts import (
    CarryConflict,
    Segment,
    SegmentView,
    Transcript,
    TranscriptSpeaker,
    TranscriptView,
)
from service.models.users import User
from service.visibility import (
    RESTRICTED_TEXT,
    RecordingView,
    is_redacted_for,
    readable_text,
    view_of,
)


class NoTranscript(NotFound):
    """The recording has no transcript (yet), or not the version asked for."""


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


#: What an import's default model name ("<format> import") means, in words.
IMPORT_FORMATS = {"vtt": "WebVTT", "srt": "SRT", "json": "Sourcebook JSON"}
#: The ASR backends, as people know them.
ASR_NAMES = {"faster-whisper": "Whisper", "openai-whisper": "Whisper",
             "static": "the built-in test recogniser"}


def origin(backend: str, model: str, *, corrected: bool = False) -> str:
    """Where a version came from, in words: "imported from WebVTT", "transcribed by
    Whisper large-v3", with ", corrected" when it holds corrections."""
    if backend == "import":
        fmt = model.removesuffix(" import").strip()
        source = IMPORT_FORMATS.get(fmt, model.strip()) if model.strip() else ""
        text = f"imported from {source}" if source else "imported"
    else:
        text = f"transcribed by {ASR_NAMES.get(backend, backend)} {model}".strip()
    return text + (", corrected" if corrected else "")


def speaker_names(session: Session, recording_id: int) -> dict[str, tuple[int | None, str | None]]:
    """label -> (person_id, name) for a recording."""
    rows = session.exec(
        select(Speaker, Person)
        .join(Person, col(Person.id) == Speaker.person_id, isouter=True)
        .where(Speaker.recording_id == recording_id)
    ).all()
    return {s.label: (s.person_id, p.name if p else None) for s, p in rows}


def corrected_versions(session: Session, recording_id: int) -> list[int]:
    return list(session.exec(
        select(Transcript.version).where(
            Transcript.recording_id == recording_id,
            sa.exists().where(col(Segment.transcript_id) == col(Transcript.id),
                              col(Segment.edited).is_(True)),
        ).order_by(col(Transcript.version))
    ).all())


def to_public(session: Session, transcript: Transcript, *, user: User | None = None,
              ) -> TranscriptView:
    """The transcript with speaker names; redacted for ``user`` where the rules say so.

    Without a user (the CLI, internal callers) nothing is withheld.
    """
    segments = session.exec(
        select(Segment).where(Segment.transcript_id == transcript.id).order_by(col(Segment.idx))
    ).all()
    head = _Head(session, transcript, {s.speaker for s in segments}, user)
    return TranscriptView(
        **head.fields(), segments=[segment_view(s, head.names, head.view)
                                   for s in segments],
    )


def transcript_json(session: Session, transcript: Transcript, *, user: User) -> bytes:
    """:func:`to_public` as JSON, with each segment's stored words copied in unparsed.

    The words were validated when they were stored (pipeline output or a checked
    import); decoding, validating and re-encoding them was ~80 % of reading a transcript
    (12 000 words for 30 minutes). The segments are read as plain rows (building an ORM
    object per segment was half of what remained) and encoded by orjson with the words
    as a pre-encoded fragment; the head goes through the models. A test compares the
    result with :func:`to_public` for each role.
    """
    rows = _segment_rows(session, transcript)
    head = _Head(session, transcript, {row.speaker for row in rows}, user)
    segments = [_segment_fields(row, head.names, head.view,
                                words=_stored_words_fragment) for row in rows]
    top = TranscriptView(**head.fields(), segments=[]).model_dump_json(exclude={"segments"})
    return f'{top[:-1]},"segments":'.encode() + orjson.dumps(segments) + b"}"


def for_page(session: Session, transcript: Transcript, *, user: User) -> TranscriptView:
    """:func:`to_public` for rendering a page, not for serialising: each segment's words
    stay the stored dicts. Validating them into WordPublic took 0.4 s for the 75 000
    words of a 3-hour interview."""
    rows = _segment_rows(session, transcript)
    head = _Head(session, transcript, {row.speaker for row in rows}, user)
    return TranscriptView(**head.fields(), segments=[
        SegmentView.model_construct(**_segment_fields(
            row, head.names, head.view, words=_stored_words_dicts))
        for row in rows])


def _segment_rows(session: Session, transcript: Transcript) -> Sequence[Any]:
    return session.connection().execute(
        sa.select(*_SEGMENT_COLUMNS, sa.cast(col(Segment.words), sa.Text).label("raw_words"))
        .where(col(Segment.transcript_id) == transcript.id).order_by(col(Segment.idx))
    ).all()


def _segment_fields(s: Any, names: dict[str, tuple[int | None, str | None]],
                    view: RecordingView, *,
                    words: Callable[[bool, Any], Any]) -> dict[str, Any]:
    """A segment (an ORM row or a plain one) as SegmentView's fields, as the reader may
    see it, in the model's field order (a test compares the fast JSON with the model
    path); ``words(hidden, s)`` gives its words in whatever form the caller needs."""
    verdict = view.verdict(s.start, s.end, s.speaker)
    hidden, level = verdict.hidden, verdict.level
    text, shown = (RESTRICTED_TEXT, words(True, s)) if hidden else (s.text, words(False, s))
    if hidden:
        stored = s.words if hasattr(s, "words") else orjson.loads(s.raw_words or "[]")
        readable = view.readable_words(s, stored)
        if readable:  # word by word: only what is near a withheld span is withheld
            text, shown = readable_text(stored, readable), readable
    person_id, name = names.get(s.speaker, (None, None))
    return {
        "id": s.id or 0, "start": s.start, "end": s.end, "speaker": s.speaker,
        "person_id": person_id, "name": name,
        "text": text, "language": s.language,
        "words": shown, "words_timed": s.words_timed, "edited": s.edited,
        "restricted": None if level is None else level.value,
        "restricted_until": verdict.until,
    }


def _stored_words_fragment(hidden: bool, row: Any) -> orjson.Fragment:
    return orjson.Fragment("[]" if hidden or not row.raw_words else row.raw_words)


def _stored_words_dicts(hidden: bool, row: Any) -> Any:
    return [] if hidden else orjson.loads(row.raw_words or "[]")


def _model_words(hidden: bool, segment: Any) -> Any:
    return [] if hidden else segment.words


#: What the fast reads take of a segment besides its words.
_SEGMENT_COLUMNS = (
    col(Segment.id), col(Segment.start), col(Segment.end), col(Segment.speaker),
    col(Segment.text), col(Segment.language), col(Segment.words_timed), col(Segment.edited),
)


class _Head:
    """What a transcript read shows besides its segments, and how to redact them."""

    def __init__(self, session: Session, transcript: Transcript, labels: set[str],
                 user: User | None) -> None:
        self.session = session
        self.transcript = transcript
        self.names = speaker_names(session, transcript.recording_id)
        sounds_like = voices.suggestions(session, transcript.recording_id)
        self.speakers = [
            TranscriptSpeaker(label=label, person_id=self.names.get(label, (None, None))[0],
                              name=self.names.get(label, (None, None))[1],
                              suggestion=sounds_like.get(label))
            # This version's labels only: the map also holds those of other versions.
            for label in sorted(labels)
        ]
        self.view = view_of(session, transcript.recording_id,
                            redact=user is not None and is_redacted_for(user))

    def fields(self) -> dict[str, Any]:
        t = self.transcript
        assert t.id is not None
        recording = self.session.get(Recording, t.recording_id)
        corrected = corrected_versions(self.session, t.recording_id)
        return {
            "id": t.id, "recording_id": t.recording_id,
            "recording_title": recording.title if recording else None, "version": t.version,
            "versions": versions(self.session, t.recording_id),
            "corrected_versions": corrected,
            "backend": t.backend, "model": t.model,
            "origin": origin(t.backend, t.model, corrected=t.version in corrected),
            "language": t.language,
            "created_at": t.created_at, "speakers": self.speakers,
            "carried": t.carried, "conflicts": self._conflicts(),
        }

    def _conflicts(self) -> list[CarryConflict]:
        out = []
        for c in self.transcript.conflicts or []:
            conflict = CarryConflict.model_validate(c)
            # The texts are speech: withheld where this reader may not read it.
            if self.view.redact and self.view.withholds_anything:
                conflict.old = conflict.new = RESTRICTED_TEXT
            out.append(conflict)
        return out


def segment_view(s: Segment, names: dict[str, tuple[int | None, str | None]],
                 view: RecordingView) -> SegmentView:
    """One segment as the reader may see it."""
    # The words are dicts, validated into WordPublic by pydantic-core in one call:
    # building ~25 000 models one by one in Python was most of a transcript read's time.
    return SegmentView(**_segment_fields(s, names, view, words=_model_words))


class SegmentIn:
    """One segment to store (from the pipeline, an import, or a test)."""

    __slots__ = ("end", "language", "speaker", "start", "text", "timing", "words")

    def __init__(self, *, start: float, end: float, speaker: str, text: str,
                 language: str = "", words: list[dict[str, Any]] | None = None,
                 timing: Timing | None = None) -> None:
        self.start = start
        self.end = end
        self.speaker = speaker
        self.text = text
        self.language = language
        self.words = words or []
        #: Where the words' times come from; by default the recogniser's if there are
        #: words, and "estimated" (nothing to quote word by word) if there are none.
        self.timing: Timing = timing or ("asr" if self.words else "estimated")


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
    last = session.exec(
        select(func.max(Transcript.version)).where(Transcript.recording_id == recording_id)
    ).one()
    # The new version replaces the old ones in the search index (triggers on SQLite, a
    # partial index on PostgreSQL); they stay readable with ?version=N.
    session.execute(sa.update(Segment).where(col(Segment.recording_id) == recording_id,
                                             col(Segment.is_current)).values(is_current=False))
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
            language=s.language, words=s.words, words_timed=s.timing,
            search_text=cjk_spaced(s.text),
        )
        for i, s in enumerate(segments)
    )
    known = set(session.exec(select(Speaker.label).where(Speaker.recording_id == recording_id)))
    for label in sorted({s.speaker for s in segments} - known):
        session.add(Speaker(recording_id=recording_id, label=label))
    return transcript


# ----------------------------------------------------------------------------- corrections


# ----------------------------------------------------------------------------- exports
