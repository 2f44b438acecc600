"""Corrections of a transcript by hand: a segment's text or speaker, kept as revisions.

The time span of a segment is never edited (quotes and citations point at it); a
corrected text gets word times estimated over the same span.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from pipelines.align import estimate_words
from pipelines.text import cjk_spaced
from service.crud import audit
from service.crud.transcripts import segment_view, speaker_names, versions
from service.errors import Invalid, not_found
from service.models.recordings import Speaker
from service.models.transcripts import (
    Revision,
    RevisionPublic,
    Segment,
    SegmentCorrection,
    Transcript,
)
from service.models.users import User
from service.visibility import (
    RESTRICTED_TEXT,
    is_redacted_for,
    view_of,
)

LABEL_PATTERN = re.compile(r"SPEAKER_\d{2,3}")


class CorrectionError(Invalid):
    """A correction that cannot be applied."""


def retime_words(text: str, start: float, end: float) -> list[dict[str, Any]]:
    """Words of ``text`` spread over [start, end] in proportion to their lengths, as
    stored word dicts (the one rule is :func:`pipelines.align.estimate_words`)."""
    return [{"start": w.start, "end": w.end, "text": w.text, "probability": w.probability}
            for w in estimate_words(text, start, end)]


def check_speaker(session: Session, recording_id: int, speaker: str) -> bool:
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


def lock_segment(session: Session, segment_id: int) -> Segment:
    """The segment, read after a no-op UPDATE that holds its row until commit: two edits
    of one segment at once then see each other's result, on SQLite and PostgreSQL."""
    session.execute(sa.update(Segment).where(col(Segment.id) == segment_id)
                    .values(edited=Segment.edited))
    segment = session.get(Segment, segment_id, populate_existing=True)
    if segment is None:
        raise not_found("segment", segment_id)
    return segment


def correct_segment(session: Session, *, segment_id: int, text: str | None,
                    speaker: str | None, actor: User) -> tuple[Segment, Revision | None]:
    """Change a segment's text and/or speaker, keeping its time span; one Revision per call.

    A call that changes nothing stores nothing. The row is locked first (a no-op UPDATE),
    so two researchers correcting one segment at once each get a revision whose
    ``before`` is what the other left, on SQLite and PostgreSQL alike.
    """
    segment = lock_segment(session, segment_id)
    if text is not None and not text.strip():
        raise CorrectionError("The corrected text is empty; to withhold a span, ask an "
                              "editor to add a restriction instead.")
    new_text = segment.text if text is None else text.strip()
    new_speaker = segment.speaker if speaker is None else speaker.strip()
    if new_text == segment.text and new_speaker == segment.speaker:
        session.rollback()
        return segment, None
    if new_speaker != segment.speaker and check_speaker(session, segment.recording_id,
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
            before_speaker=r.before_speaker, after_speaker=r.after_speaker, kind=r.kind,
        )
        for r, u in rows
    ], count
