"""Quotes: frozen spans of a transcript, their drift, citations and chapter links.

How ``verbatim`` is cut from the current transcript version over ``[start, end]``:

- a segment takes part when it overlaps the span;
- from a segment whose words have real times (``words_timed`` "asr" or "aligned"), only
  the words whose midpoint lies inside the span are taken, so a span can start or end
  mid-sentence;
- from a segment whose words are ``estimated`` (a correction or import not aligned yet,
  or one alignment failed on) the whole text is taken: its inner timing is unknown, and
  the creation response says so (``whole_segments``);
- the quote's ``start`` and ``end`` are then snapped to what was taken (first word or
  segment start, last word or segment end), so the citation's timestamp is where the
  words begin, and the drift check can cut the same span from a later version.

Consecutive pieces of one speaker are joined like ASR tokens (no spaces inside Chinese);
a speaker change starts a new line (only with ``allow_multiple_speakers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from pipelines.text import join_tokens, needs_space_between, normalise_for_match
from service import citations
from service.access import can_see_recording, recording_filter
from service.crud import audit
from service.crud.chapters import chapter_labels, subtree_ids
from service.crud.sources import source_of
from service.crud.transcripts import NoTranscript, get_transcript, speaker_names
from service.errors import Conflict, Forbidden, Invalid, NotFound
from service.models.base import utcnow
from service.models.chapters import Chapter
from service.models.people import Person
from service.models.quotes import (
    ChapterQuote,
    ChapterQuoteCreate,
    Quote,
    QuoteChapterLink,
    QuoteCreate,
    QuotePublic,
    QuoteUpdate,
)
from service.models.recordings import Recording
from service.models.transcripts import Segment, Transcript
from service.models.users import User
from service.visibility import (
    HIDDEN_LEVELS,
    RESTRICTED_TEXT,
    is_redacted_for,
    view_of,
    views,
)

#: Seconds of slack past the end of the media: ASR end times can overshoot a little.
DURATION_SLACK = 0.5
_EPS = 1e-6


@dataclass(frozen=True)
class Piece:
    segment: Segment
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Extract:
    pieces: list[Piece]

    @property
    def start(self) -> float:
        return self.pieces[0].start

    @property
    def end(self) -> float:
        return self.pieces[-1].end

    @property
    def speakers(self) -> list[str]:
        out: list[str] = []
        for p in self.pieces:
            if not out or out[-1] != p.segment.speaker:
                out.append(p.segment.speaker)
        return out

    @property
    def text(self) -> str:
        lines: list[str] = []
        last_speaker: str | None = None
        for p in self.pieces:
            piece = p.text.strip()
            if not piece:
                continue
            if p.segment.speaker != last_speaker or not lines:
                lines.append(piece)
            else:
                sep = " " if needs_space_between(lines[-1], piece) else ""
                lines[-1] = lines[-1] + sep + piece
            last_speaker = p.segment.speaker
        return "\n".join(lines)


def extract(session: Session, *, transcript_id: int, start: float, end: float) -> Extract:
    """The words of one transcript version over ``[start, end]`` (rules in the module doc)."""
    segments = session.exec(
        select(Segment)
        .where(Segment.transcript_id == transcript_id, col(Segment.end) > start + _EPS,
               col(Segment.start) < end - _EPS)
        .order_by(col(Segment.idx))
    ).all()
    pieces: list[Piece] = []
    for s in segments:
        if s.words_timed != "estimated" and s.words:
            words = [w for w in s.words
                     if start - _EPS <= (float(w["start"]) + float(w["end"])) / 2 <= end + _EPS]
            if not words:
                continue
            text = join_tokens(str(w["text"]) for w in words)
            pieces.append(Piece(s, text, float(words[0]["start"]), float(words[-1]["end"])))
        elif s.text.strip():
            pieces.append(Piece(s, s.text, s.start, s.end))
    return Extract(pieces)


def whole_segment_reason(session: Session, quote: Quote) -> str | None:
    """Why ``quote`` took whole segments instead of exactly its words, if it did."""
    if quote.transcript_id is None:
        return None
    ext = extract(session, transcript_id=quote.transcript_id, start=quote.start, end=quote.end)
    whole = [p.segment for p in ext.pieces if p.segment.words_timed == "estimated"]
    if not whole:
        return None
    at = ", ".join(f"{s.start:.1f} s" for s in whole[:5])
    return (f"The segment(s) at {at} have estimated word times (a correction or an import "
            "not aligned to the audio yet, or where alignment failed), so the quote holds "
            "them whole. Once aligned, quote the span again for exactly its words.")


def _hidden_overlap(session: Session, recording_id: int, pieces: Sequence[Piece]) -> bool:
    view = view_of(session, recording_id, redact=True)
    return any(view.hides_words(p.segment, p.segment.words, p.start, p.end) for p in pieces)


def _span_from_segments(session: Session, user: User, ids: list[int]
                        ) -> tuple[Recording, Transcript, float, float]:
    rows = session.exec(select(Segment).where(col(Segment.id).in_(ids))).all()
    # A segment of a recording the caller may not see is missing, before anything else
    # is said about it (which recording, which version): otherwise the error would
    # tell an invisible segment from one that does not exist.
    visible = {r.id for r in session.exec(select(Recording).where(
        col(Recording.id).in_({s.recording_id for s in rows}))).all()
        if can_see_recording(user, r)}
    found = {s.id: s for s in rows if s.recording_id in visible}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"No segment with id {missing[0]} (or you may not see it).")
    recordings = {s.recording_id for s in rows}
    recording = session.get(Recording, next(iter(recordings)))
    assert recording is not None
    if len(recordings) > 1:
        raise Invalid("The segments belong to different recordings; a quote comes from "
                      "one recording.")
    transcript = _current(session, recording)
    stale = [s.id for s in rows if s.transcript_id != transcript.id]
    if stale:
        raise Conflict(f"Segment {stale[0]} is from an older transcript version; the current "
                       f"version is {transcript.version}. Reload the transcript and pick "
                       "segments from it.")
    ordered = sorted(rows, key=lambda s: s.idx)
    if ordered[-1].idx - ordered[0].idx + 1 != len(ordered):
        raise Invalid("The segments are not adjacent; a quote is one continuous span. "
                      "Make one quote per passage.")
    return recording, transcript, ordered[0].start, ordered[-1].end


def _current(session: Session, recording: Recording) -> Transcript:
    assert recording.id is not None
    try:
        return get_transcript(session, recording_id=recording.id)
    except NoTranscript as exc:
        raise Conflict(f"{exc} A quote needs a transcript to take its words from.") from None


def create_quote(session: Session, *, data: QuoteCreate, actor: User) -> Quote:
    """Freeze a quote from the current transcript version (one commit, audited)."""
    if data.segment_ids and data.recording_id is None and data.start is None:
        recording, transcript, start, end = _span_from_segments(
            session, actor, sorted(set(data.segment_ids)))
    elif data.segment_ids:
        raise Invalid("Give either {recording_id, start, end} or {segment_ids}, not both.")
    else:
        if data.recording_id is None or data.start is None or data.end is None:
            raise Invalid("Give {recording_id, start, end} (seconds) or {segment_ids: [...]}.")
        found = session.get(Recording, data.recording_id)
        if found is None or not can_see_recording(actor, found):
            raise NotFound(f"No recording with id {data.recording_id} (or you may not see "
                           "it). It may have been deleted.")
        recording = found
        start, end = data.start, data.end
        if start >= end:
            raise Invalid(f"start ({start:g} s) must be before end ({end:g} s).")
        if end > recording.duration + DURATION_SLACK:
            raise Invalid(f"The span {start:g}–{end:g} s lies outside the recording, which "
                          f"is {recording.duration:.1f} s long.")
        transcript = _current(session, recording)
    assert recording.id is not None and transcript.id is not None
    ext = extract(session, transcript_id=transcript.id, start=start, end=end)
    if not ext.pieces:
        raise Invalid(f"No transcribed speech between {start:g} s and {end:g} s in version "
                      f"{transcript.version}; widen the span.")
    if is_redacted_for(actor) and _hidden_overlap(session, recording.id, ext.pieces):
        raise Forbidden("This span overlaps a passage withheld from authors (a restricted "
                        "span, or speech its speaker agreed to off the record), which your "
                        "role may not quote. Ask an editor.")
    speakers = ext.speakers
    if len(speakers) > 1 and not data.allow_multiple_speakers:
        change = next(p for p in ext.pieces if p.segment.speaker != speakers[0])
        raise Invalid(f"The span crosses a speaker change ({speakers[0]} → "
                      f"{change.segment.speaker} at {change.start:.1f} s). Quote each "
                      "speaker separately, or set allow_multiple_speakers: true.")
    names = speaker_names(session, recording.id)
    persons = {names.get(s, (None, None))[0] for s in speakers}
    _check_translator(data.translation, data.translator, None)
    quote = Quote(
        recording_id=recording.id, transcript_id=transcript.id,
        transcript_version=transcript.version, start=round(ext.start, 3),
        end=round(ext.end, 3), speaker="+".join(speakers)[:50],
        person_id=persons.pop() if len(persons) == 1 else None, verbatim=ext.text,
        edited=data.edited, translation=data.translation, translator=data.translator,
        allow_multiple_speakers=data.allow_multiple_speakers, created_by=actor.id,
    )
    session.add(quote)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="quote", object_id=quote.id,
                 summary=f"recording {recording.id} {citations.hms(quote.start)}-"
                 f"{citations.hms(quote.end)}, transcript version {transcript.version}")
    session.commit()
    return quote


def _check_translator(translation: str | None, translator: str | None,
                      stored: str | None) -> None:
    if translation and not (translator or stored):
        raise Invalid("A translation needs the translator's name: add 'translator'.")


def get_quote(session: Session, *, user: User, quote_id: int) -> Quote:
    """The quote if it exists and its recording is visible to ``user`` (else 404)."""
    quote = session.get(Quote, quote_id)
    if quote is not None and quote.recording_id is not None:
        recording = session.get(Recording, quote.recording_id)
        if recording is None or not can_see_recording(user, recording):
            quote = None
    if quote is None:
        raise NotFound(f"No quote with id {quote_id} (or you may not see it).")
    return quote


def get_editable_quote(session: Session, *, user: User, quote_id: int) -> Quote:
    """The quote if ``user`` may change it: visible (else 404, like a missing one) and
    not withheld from them (else 403). Editing, deleting and unlinking all ask this."""
    quote = get_quote(session, user=user, quote_id=quote_id)
    if is_withheld(session, quote, user):
        raise Forbidden("This quote lies in a passage withheld from you, so you may not "
                        "change, delete or unlink it; ask an editor.")
    return quote


def update_quote(session: Session, *, quote: Quote, data: QuoteUpdate, actor: User) -> Quote:
    changes = data.model_dump(exclude_unset=True)
    if quote.recording_id is None and changes:
        raise Conflict("The recording of this quote was deleted; its text was erased and "
                       "cannot be edited.")
    _check_translator(changes.get("translation"), changes.get("translator"), quote.translator)
    changed = sorted(k for k, v in changes.items() if getattr(quote, k) != v)
    for key in changed:
        setattr(quote, key, changes[key])
    if changed:
        quote.updated_at = utcnow()
        session.add(quote)
        # Field names only: the log outlives erasure and must not hold interview text.
        audit.record(session, actor=actor, action="update", object_type="quote",
                     object_id=quote.id, summary="changed " + ", ".join(changed))
        session.commit()
    return quote


def delete_quote(session: Session, *, quote: Quote, actor: User) -> None:
    audit.record(session, actor=actor, action="delete", object_type="quote", object_id=quote.id)
    session.delete(quote)
    session.commit()


def citation(session: Session, *, quote: Quote, style: citations.Style, actor: User) -> str:
    """A citation string; each request is audited (issue 6: who cited what, when)."""
    if quote.recording_id is None:
        raise Conflict("The recording of this quote was deleted; it can no longer be cited.")
    text = citations.cite(source_of(session, quote), style)
    audit.record(session, actor=actor, action="citation", object_type="quote",
                 object_id=quote.id, summary=f"style {style}")
    session.commit()
    return text


def current_text(session: Session, quote: Quote) -> tuple[str, int] | None:
    """What the current transcript says over the quote's span, with its version."""
    if quote.recording_id is None:
        return None
    try:
        transcript = get_transcript(session, recording_id=quote.recording_id)
    except NoTranscript:
        return None
    assert transcript.id is not None
    ext = extract(session, transcript_id=transcript.id, start=quote.start, end=quote.end)
    return ext.text, transcript.version


def is_withheld(session: Session, quote: Quote, user: User) -> bool:
    """Whether the quote's text overlaps a span hidden from ``user`` today."""
    return quote.id in withheld_ids(session, [quote], user)


def withheld_ids(session: Session, quotes: Sequence[Quote], user: User) -> set[int | None]:
    """The ids of ``quotes`` whose text overlaps a span hidden from ``user`` today (one
    query for all of them)."""
    if not is_redacted_for(user):
        return set()
    seen = views(session, {q.recording_id for q in quotes if q.recording_id is not None},
                 redact=True)
    out: set[int | None] = set()
    for q in quotes:
        view = seen.get(q.recording_id) if q.recording_id is not None else None
        if view is None or not view.withholds_anything:
            continue
        span = view.span_level(q.start, q.end)
        if (span is not None and span.level in HIDDEN_LEVELS) or any(
                view.hides_words(s, s.words, q.start, q.end) for s in _segments_under(session, q)):
            out.add(q.id)
    return out


def _segments_under(session: Session, quote: Quote) -> Sequence[Any]:
    """The segments a quote's text came from (its version), and what the current version
    says over the same time: the quote is withheld if any of them is."""
    version = (col(Segment.transcript_id) == quote.transcript_id
               if quote.transcript_id is not None else sa.false())
    return session.exec(
        select(Segment).where(
            col(Segment.recording_id) == quote.recording_id,
            sa.or_(version, col(Segment.is_current)),
            col(Segment.start) < quote.end, col(Segment.end) > quote.start)).all()


def shown_text(quote: Quote, *, hidden: bool) -> tuple[str, str | None, str | None]:
    """(verbatim, edited, translation) as a reader sees them: withheld under a hidden span."""
    if not hidden:
        return quote.verbatim, quote.edited, quote.translation
    return (RESTRICTED_TEXT, RESTRICTED_TEXT if quote.edited else quote.edited,
            RESTRICTED_TEXT if quote.translation else quote.translation)


def to_public(session: Session, quote: Quote, *, user: User) -> QuotePublic:
    assert quote.id is not None
    links = session.exec(
        select(ChapterQuote).where(ChapterQuote.quote_id == quote.id)
        .order_by(col(ChapterQuote.chapter_id))
    ).all()
    person = session.get(Person, quote.person_id) if quote.person_id else None
    recording = session.get(Recording, quote.recording_id) if quote.recording_id else None
    labels = chapter_labels(session, {link.chapter_id for link in links})
    withheld: str | None = None
    drift: bool | None = None
    version: int | None = None
    if quote.recording_id is None:
        withheld = "erased"
    elif is_withheld(session, quote, user):
        withheld = "restricted"
    else:
        now = current_text(session, quote)
        if now is not None:
            version = now[1]
            drift = normalise_for_match(now[0]) != normalise_for_match(quote.verbatim)
        else:
            drift = True
    verbatim, edited, translation = shown_text(quote, hidden=withheld == "restricted")
    return QuotePublic(
        id=quote.id, recording_id=quote.recording_id,
        recording_title=recording.title if recording else None,
        transcript_id=quote.transcript_id,
        transcript_version=quote.transcript_version, start=quote.start, end=quote.end,
        person_id=quote.person_id, person_name=person.name if person else None,
        speaker=quote.speaker,
        verbatim=verbatim, edited=edited, translation=translation,
        translator=quote.translator, allow_multiple_speakers=quote.allow_multiple_speakers,
        citation=None if quote.recording_id is None
        else citations.cite(source_of(session, quote), "chicago"),
        drift=drift, current_version=version, withheld=withheld,
        chapters=[QuoteChapterLink(chapter_id=link.chapter_id,
                                   chapter_label=labels.get(link.chapter_id),
                                   usage=link.usage, note=link.note)
                  for link in links],
        created_by=quote.created_by, created_at=quote.created_at, updated_at=quote.updated_at,
    )


def list_quotes(session: Session, *, user: User, person_id: int | None = None,
                recording_id: int | None = None, chapter_id: int | None = None,
                limit: int = 100, offset: int = 0) -> tuple[list[Quote], int]:
    """Quotes the caller may see; ``chapter_id`` includes the chapter's sub-sections."""
    query = select(Quote).outerjoin(Recording, col(Recording.id) == col(Quote.recording_id))
    query = query.where((col(Quote.recording_id).is_(None)) | recording_filter(user))
    if person_id is not None:
        query = query.where(Quote.person_id == person_id)
    if recording_id is not None:
        query = query.where(Quote.recording_id == recording_id)
    if chapter_id is not None:
        ids = subtree_ids(session, chapter_id)
        query = query.where(col(Quote.id).in_(
            select(ChapterQuote.quote_id).where(col(ChapterQuote.chapter_id).in_(ids))))
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Quote.id)).limit(limit).offset(offset)).all()
    return list(rows), count


def link_quote(session: Session, *, chapter: Chapter, data: ChapterQuoteCreate,
               actor: User) -> ChapterQuote:
    """Link (or re-link with a new usage) a quote to a chapter; audited."""
    assert chapter.id is not None
    link = session.get(ChapterQuote, (chapter.id, data.quote_id))
    if link is None:
        link = ChapterQuote(chapter_id=chapter.id, quote_id=data.quote_id, usage=data.usage,
                            note=data.note)
    else:
        link.usage, link.note = data.usage, data.note
    session.add(link)
    audit.record(session, actor=actor, action="link", object_type="quote",
                 object_id=data.quote_id, summary=f"chapter {chapter.id}, usage {data.usage.value}")
    session.commit()
    return link


def unlink_quote(session: Session, *, chapter_id: int, quote_id: int, actor: User) -> bool:
    link = session.get(ChapterQuote, (chapter_id, quote_id))
    if link is None:
        return False
    session.delete(link)
    audit.record(session, actor=actor, action="unlink", object_type="quote", object_id=quote_id,
                 summary=f"chapter {chapter_id}")
    session.commit()
    return True
