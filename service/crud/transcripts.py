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

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Field, Session, SQLModel, col, select

from pipelines.export import FORMATS, MEDIA_TYPES, ExportDoc, ExportSegment, render
from pipelines.text import word_tokens as word_tokens  # re-exported; the tokenizer lives there
from pipelines.types import Timing
from service.importers import Cue, Parsed
from service.models.consent import RestrictionLevel
from service.models.people import Person
from service.models.recordings import Participant, Recording, Speaker
from service.models.transcripts import (
    CarryConflict,
    Revision,
    Segment,
    SegmentPublic,
    Transcript,
    TranscriptPublic,
    TranscriptSpeaker,
)
from service.models.users import User
from service.visibility import (
    RESTRICTED_TEXT,
    RecordingView,
    is_redacted_for,
    readable_text,
    view_of,
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


class SegmentView(SegmentPublic):
    """A segment as one user may read it (API.md's fields plus the restriction mark)."""

    #: The strictest restriction or withholding agreement over the segment, for every
    #: role; for authors a withheld segment also has text "[restricted]" and no words.
    restricted: RestrictionLevel | None = None
    #: When the restriction marked lifts (an embargo's "closed until"), if it does.
    restricted_until: date | None = None


class TranscriptView(TranscriptPublic):
    segments: list[SegmentView]  # type: ignore[assignment]
    #: Versions of this recording that hold corrections, so that a newer machine version
    #: never hides the fact that an older one was corrected.
    corrected_versions: list[int] = Field(default_factory=list)
    #: After an import: the job that times the cues' words against the audio.
    align_job_id: int | None = None


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
        from service.crud.voices import suggestions

        self.names = speaker_names(session, transcript.recording_id)
        sounds_like = suggestions(session, transcript.recording_id)
        self.speakers = [
            TranscriptSpeaker(label=label, person_id=self.names.get(label, (None, None))[0],
                              name=self.names.get(label, (None, None))[1],
                              suggestion=sounds_like.get(label))
            for label in sorted(labels | set(self.names))
        ]
        self.view = view_of(session, transcript.recording_id,
                            redact=user is not None and is_redacted_for(user))

    def fields(self) -> dict[str, Any]:
        t = self.transcript
        assert t.id is not None
        return {
            "id": t.id, "recording_id": t.recording_id, "version": t.version,
            "versions": versions(self.session, t.recording_id),
            "corrected_versions": corrected_versions(self.session, t.recording_id),
            "backend": t.backend, "model": t.model, "language": t.language,
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
    from pipelines.text import cjk_spaced

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


# ----------------------------------------------------------------------------- speakers

class SpeakerMapError(ValueError):
    """A speaker map naming a label or a person that does not exist (a 422)."""


def speaker_map(session: Session, recording_id: int) -> list[TranscriptSpeaker]:
    from service.crud.voices import suggestions

    names = speaker_names(session, recording_id)
    sounds_like = suggestions(session, recording_id)
    return [TranscriptSpeaker(label=label, person_id=pid, name=name,
                              suggestion=sounds_like.get(label))
            for label, (pid, name) in sorted(names.items())]


def set_speakers(session: Session, *, recording_id: int, mapping: dict[str, int | None],
                 actor: User, enqueue: Callable[[int], None] | None = None,
                 ) -> list[TranscriptSpeaker]:
    """Map labels to people (``None`` unmaps); labels not in ``mapping`` keep theirs.

    Naming is also where voice recognition's consent rules apply (service.crud.voices):
    a label named as a consenting person is enrolled in their voiceprint (or, without an
    embedding, a worker job recomputes it: ``enqueue`` gets its id after the commit); one
    named as anyone else loses its embedding.
    """
    from service.crud import voices
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
    from service.crud import audit

    audit.record(session, actor=actor, action="speakers", object_type="recording",
                 object_id=recording_id,
                 summary="; ".join(changes) if changes else "no change")
    voice = voices.on_named(session, renamed, actor=actor)
    session.commit()
    if enqueue is not None:
        for job_id in voice.jobs:
            enqueue(job_id)
    return speaker_map(session, recording_id)


# ----------------------------------------------------------------------------- corrections

LABEL_PATTERN = re.compile(r"SPEAKER_\d{2,3}")


class CorrectionError(ValueError):
    """A correction that cannot be applied (a 422)."""


def retime_words(text: str, start: float, end: float) -> list[dict[str, Any]]:
    """Words of ``text`` spread over [start, end] in proportion to their lengths, as
    stored word dicts (the one rule is :func:`pipelines.align.estimate_words`)."""
    from pipelines.align import estimate_words

    return [{"start": w.start, "end": w.end, "text": w.text, "probability": w.probability}
            for w in estimate_words(text, start, end)]


class SegmentCorrection(SegmentView):
    """A corrected segment with where it sits and what the correction recorded."""

    recording_id: int
    transcript_id: int
    version: int
    latest_version: int
    revision_id: int | None = None
    warning: str | None = None
    #: The job that times the corrected words against the audio (GET /jobs/{id});
    #: until it finishes, ``words_timed`` is "estimated".
    align_job_id: int | None = None


def _check_speaker(session: Session, recording_id: int, speaker: str) -> bool:
    """True if ``speaker`` is a new label to add to the map; raises if not allowed."""
    known = set(session.exec(select(Speaker.label).where(Speaker.recording_id == recording_id)))
    if speaker in known:
        return False
    if LABEL_PATTERN.fullmatch(speaker):
        return True
    raise CorrectionError(
        f"{speaker!r} is not a speaker label of recording {recording_id}. Use one of: "
        f"{', '.join(sorted(known)) or 'none'}, or a new label such as SPEAKER_07; to name "
        "a speaker, map the label to a person with PUT /recordings/{id}/speakers."
    )


def correct_segment(session: Session, *, segment_id: int, text: str | None,
                    speaker: str | None, actor: User) -> tuple[Segment, Revision | None]:
    """Change a segment's text and/or speaker, keeping its time span; one Revision per call.

    A call that changes nothing stores nothing. The row is locked first (a no-op UPDATE),
    so two researchers correcting one segment at once each get a revision whose
    ``before`` is what the other left, on SQLite and PostgreSQL alike.
    """
    from pipelines.text import cjk_spaced

    session.execute(sa.update(Segment).where(col(Segment.id) == segment_id)
                    .values(edited=Segment.edited))
    segment = session.get(Segment, segment_id, populate_existing=True)
    if segment is None:
        raise LookupError(segment_id)
    if text is not None and not text.strip():
        raise CorrectionError("The corrected text is empty; to withhold a span, ask an "
                              "editor to add a restriction instead.")
    new_text = segment.text if text is None else text.strip()
    new_speaker = segment.speaker if speaker is None else speaker.strip()
    if new_text == segment.text and new_speaker == segment.speaker:
        session.rollback()
        return segment, None
    if new_speaker != segment.speaker and _check_speaker(session, segment.recording_id,
                                                         new_speaker):
        session.add(Speaker(recording_id=segment.recording_id, label=new_speaker))
    revision = Revision(
        segment_id=segment_id, user_id=actor.id, before_text=segment.text, after_text=new_text,
        before_speaker=segment.speaker, after_speaker=new_speaker,
    )
    if new_text != segment.text:
        segment.text = new_text
        # Same transaction as the text: SQLite's trigger re-indexes on this column and
        # PostgreSQL's GIN index is on an expression over it.
        segment.search_text = cjk_spaced(new_text)
        segment.words = retime_words(new_text, segment.start, segment.end)
        segment.words_timed = "estimated"  # until the alignment job has timed them
    segment.speaker = new_speaker
    segment.edited = True
    session.add(segment)
    session.add(revision)
    session.flush()
    what = [k for k, changed in (("text", revision.before_text != revision.after_text),
                                 ("speaker", revision.before_speaker != revision.after_speaker))
            if changed]
    from service.crud import audit

    audit.record(session, actor=actor, action="correct", object_type="segment",
                 object_id=segment_id,
                 summary=f"recording {segment.recording_id}, changed {' and '.join(what)}")
    session.commit()
    session.refresh(segment)
    return segment, revision


def correction_view(session: Session, *, segment: Segment, revision: Revision | None,
                    user: User) -> SegmentCorrection:
    transcript = session.get(Transcript, segment.transcript_id)
    assert transcript is not None
    latest = max(versions(session, segment.recording_id))
    warning = None
    if transcript.version != latest:
        warning = (
            f"This segment belongs to version {transcript.version}, not the latest version "
            f"{latest}. The correction is kept on version {transcript.version} (read it with "
            f"?version={transcript.version}); version {latest} is unchanged."
        )
    view = segment_view(segment, speaker_names(session, segment.recording_id),
                        view_of(session, segment.recording_id, redact=is_redacted_for(user)))
    return SegmentCorrection(
        **view.model_dump(), recording_id=segment.recording_id,
        transcript_id=segment.transcript_id, version=transcript.version, latest_version=latest,
        revision_id=revision.id if revision else None, warning=warning,
    )


class RevisionPublic(SQLModel):
    id: int
    segment_id: int
    user_id: int | None
    user: str | None
    created_at: datetime
    before_text: str
    after_text: str
    before_speaker: str
    after_speaker: str


def list_revisions(session: Session, *, segment: Segment, user: User, limit: int = 100,
                   offset: int = 0) -> tuple[list[RevisionPublic], int]:
    """A segment's revisions, newest first; text withheld where the segment is hidden."""
    count = session.exec(
        select(func.count()).select_from(Revision).where(Revision.segment_id == segment.id)
    ).one()
    rows = session.exec(
        select(Revision, User).join(User, col(User.id) == Revision.user_id, isouter=True)
        .where(Revision.segment_id == segment.id)
        .order_by(col(Revision.id).desc()).limit(limit).offset(offset)
    ).all()
    # Withheld if the segment is withheld now: a revision's text is the same speech.
    view = view_of(session, segment.recording_id, redact=is_redacted_for(user))
    hidden = view.hides(segment.start, segment.end, segment.speaker) or any(
        view.hides(segment.start, segment.end, r.before_speaker)
        or view.hides(segment.start, segment.end, r.after_speaker) for r, _ in rows)
    return [
        RevisionPublic(
            id=r.id or 0, segment_id=r.segment_id, user_id=r.user_id,
            user=u.name if u else None, created_at=r.created_at,
            before_text=RESTRICTED_TEXT if hidden else r.before_text,
            after_text=RESTRICTED_TEXT if hidden else r.after_text,
            before_speaker=r.before_speaker, after_speaker=r.after_speaker,
        )
        for r, u in rows
    ], count


# ----------------------------------------------------------------------------- imports

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
    from service.crud import audit

    audit.record(session, actor=actor, action="import", object_type="transcript",
                 object_id=transcript.id,
                 summary=f"recording {recording_id}, version {transcript.version}, "
                         f"{parsed.format}, {len(segments)} segments")
    session.commit()
    session.refresh(transcript)
    return transcript


# ----------------------------------------------------------------------------- exports

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
    """Render an export and audit it; raises NoTranscript, ValueError for a bad format."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    assert recording.id is not None
    transcript = get_transcript(session, recording_id=recording.id, version=version)
    doc = export_doc(session, recording=recording, transcript=transcript, redact=redact)
    content = render(doc, fmt)
    from service.crud import audit

    audit.record(session, actor=actor, action="export", object_type="recording",
                 object_id=recording.id,
                 summary=f"{fmt}, version {transcript.version}, "
                         f"{'redacted' if redact else 'full'} ({via})")
    session.commit()
    stem = f"{_slug(recording.title)}-v{transcript.version}"
    return ExportFile(content=content, media_type=MEDIA_TYPES[fmt], filename=f"{stem}.{fmt}",
                      ascii_filename=f"recording-{recording.id}-v{transcript.version}.{fmt}")
