"""Everything held about one person: the access report, and erasure on request.

Audit summaries carry ids and counts only, never interview text (the log outlives the
erasure).
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from service.crud import audit, voices
from service.crud.chapters import chapter_label
from service.crud.consent import approval_public, to_public
from service.filemodes import private_dir
from service.models.audit import AuditEvent, AuditEventPublic
from service.models.base import utcnow
from service.models.chapters import Chapter
from service.models.consent import (
    ApprovalPublic,
    ChapterUse,
    ConsentAgreement,
    ConsentStatus,
    ErasureSummary,
    PersonQuoteUse,
    PersonRecordingUse,
    PersonReport,
    QuoteApproval,
)
from service.models.people import Person, PersonPublic
from service.models.quotes import ChapterQuote, Quote
from service.models.recordings import Participant, Recording, Speaker
from service.models.transcripts import Revision, Segment, Transcript
from service.models.users import User
from service.storage import Storage

ERASED_TEXT = "[erased]"


def _person_labels(session: Session, person_id: int) -> list[Speaker]:
    return list(session.exec(select(Speaker).where(Speaker.person_id == person_id)).all())


def _segments_of(labels: Sequence[Speaker]) -> sa.ColumnElement[bool]:
    """SQL: segments whose (recording, speaker label) is mapped to the person."""
    return sa.or_(*(sa.and_(col(Segment.recording_id) == s.recording_id,
                            col(Segment.speaker) == s.label) for s in labels))


def person_report(session: Session, *, person: Person, actor: User,
                  include_segments: bool = False) -> PersonReport:
    """Everything held about a person and where it is used (the request is audited)."""
    assert person.id is not None
    pid = person.id
    labels = _person_labels(session, pid)
    roles: dict[int, list[str]] = {}
    for p in session.exec(select(Participant).where(Participant.person_id == pid)):
        roles.setdefault(p.recording_id, []).append(p.role.value)
    by_recording: dict[int, list[str]] = {}
    for s in labels:
        by_recording.setdefault(s.recording_id, []).append(s.label)
    recordings: list[PersonRecordingUse] = []
    for rid in sorted(set(roles) | set(by_recording)):
        rec = session.get(Recording, rid)
        if rec is None:
            continue
        rec_labels = sorted(by_recording.get(rid, []))
        seg_query = select(Segment).where(Segment.recording_id == rid,
                                          col(Segment.speaker).in_(rec_labels))
        segs = list(session.exec(seg_query.order_by(col(Segment.transcript_id),
                                                    col(Segment.idx)))) if rec_labels else []
        versions = session.exec(select(func.count()).where(Transcript.recording_id == rid)).one()
        texts: list[dict[str, object]] | None = None
        if include_segments:
            version_of = dict(session.exec(select(Transcript.id, Transcript.version)
                                           .where(Transcript.recording_id == rid)).all())
            texts = [{"version": version_of.get(s.transcript_id), "start": s.start,
                      "end": s.end, "speaker": s.speaker, "text": s.text} for s in segs]
        recordings.append(PersonRecordingUse(
            recording_id=rid, title=rec.title, recorded_at=rec.recorded_at,
            participant_roles=sorted(roles.get(rid, [])), speaker_labels=rec_labels,
            transcript_versions=versions, segments=len(segs), segment_texts=texts))
    quotes = list(session.exec(select(Quote).where(Quote.person_id == pid)
                               .order_by(col(Quote.id))).all())
    quote_ids = [q.id for q in quotes if q.id is not None]
    uses: dict[int, list[ChapterUse]] = {}
    if quote_ids:
        for link, chapter in session.exec(
                select(ChapterQuote, Chapter).join(Chapter, col(Chapter.id) ==
                                                   ChapterQuote.chapter_id)
                .where(col(ChapterQuote.quote_id).in_(quote_ids))):
            assert chapter.id is not None
            uses.setdefault(link.quote_id, []).append(ChapterUse(
                chapter_id=chapter.id, chapter=chapter_label(chapter), usage=link.usage.value))
    consents = list(session.exec(select(ConsentAgreement)
                                 .where(ConsentAgreement.person_id == pid)
                                 .order_by(col(ConsentAgreement.id))).all())
    approvals: list[ApprovalPublic] = []
    by_id = {q.id: q for q in quotes}
    if quote_ids:
        for ap in session.exec(select(QuoteApproval)
                               .where(col(QuoteApproval.quote_id).in_(quote_ids))
                               .order_by(col(QuoteApproval.id))):
            approvals.append(approval_public(ap, by_id[ap.quote_id]))
    about = [sa.and_(col(AuditEvent.object_type) == "person",
                     col(AuditEvent.object_id) == str(pid))]
    if consents:
        about.append(sa.and_(col(AuditEvent.object_type) == "consent",
                             col(AuditEvent.object_id).in_([str(c.id) for c in consents])))
    if quote_ids:
        about.append(sa.and_(col(AuditEvent.object_type) == "quote",
                             col(AuditEvent.object_id).in_([str(i) for i in quote_ids])))
    events = session.exec(select(AuditEvent).where(sa.or_(*about))
                          .order_by(col(AuditEvent.id))).all()
    quoted_from = {q.recording_id for q in quotes if q.recording_id is not None}
    titles = dict(session.exec(select(Recording.id, Recording.title).where(
        col(Recording.id).in_(quoted_from))).all()) if quoted_from else {}
    report = PersonReport(
        generated_at=utcnow(), person=PersonPublic.of(person), recordings=recordings,
        quotes=[PersonQuoteUse(quote_id=q.id or 0, recording_id=q.recording_id,
                               recording_title=titles.get(q.recording_id), start=q.start,
                               end=q.end, verbatim=q.verbatim, edited=q.edited,
                               translation=q.translation, chapters=uses.get(q.id or 0, []))
                for q in quotes],
        consents=[to_public(session, c) for c in consents],
        approvals=approvals,
        audit_events=[AuditEventPublic.model_validate(e, from_attributes=True)
                      for e in events],
    )
    audit.record(session, actor=actor, action="access-report", object_type="person",
                 object_id=pid, summary=f"{len(recordings)} recording(s), {len(quotes)} "
                 f"quote(s), {len(consents)} consent record(s)"
                 + ("; with segment texts" if include_segments else ""))
    session.commit()
    return report


def erase_person(session: Session, *, storage: Storage, person: Person, actor: User,
                 ) -> ErasureSummary:
    """Erase what the archive holds of a person, keeping only a content-free audit event.

    Removes the voiceprint (and the per-recording speaker embeddings), the signed
    releases (files too), every quote of theirs with its chapter links and approvals,
    and the revisions of their segments; redacts their segments in every transcript
    version to ``[erased]`` with no words and an empty search text (the SQLite FTS
    triggers and the PostgreSQL expression index follow in the same transaction); and
    clears the person's name and notes. Consent records stay as withdrawn shells, so the
    archive still shows that consent ended. Files are moved aside first and deleted only
    after the commit, so a failure leaves everything as it was.
    """
    assert person.id is not None
    pid = person.id
    labels = _person_labels(session, pid)
    seg_filter = _segments_of(labels) if labels else sa.false()
    seg_ids = list(session.exec(select(Segment.id).where(seg_filter)).all())
    versions = session.exec(select(func.count(sa.distinct(col(Segment.transcript_id))))
                            .where(seg_filter)).one() if seg_ids else 0
    revisions = 0
    if seg_ids:
        revisions = session.exec(select(func.count()).where(
            col(Revision.segment_id).in_(seg_ids))).one()
        session.execute(sa.delete(Revision).where(col(Revision.segment_id).in_(seg_ids)))
        session.execute(sa.update(Segment).where(col(Segment.id).in_(seg_ids)).values(
            text=ERASED_TEXT, words=[], words_timed="estimated", search_text="", edited=True))

    quote_filter = [col(Quote.person_id) == pid]
    quote_filter += [sa.and_(col(Quote.recording_id) == s.recording_id,
                             col(Quote.speaker) == s.label) for s in labels]
    quote_ids = list(session.exec(select(Quote.id).where(sa.or_(*quote_filter))).all())
    if quote_ids:
        session.execute(sa.delete(ChapterQuote).where(col(ChapterQuote.quote_id).in_(quote_ids)))
        session.execute(sa.delete(QuoteApproval)
                        .where(col(QuoteApproval.quote_id).in_(quote_ids)))
        session.execute(sa.delete(Quote).where(col(Quote.id).in_(quote_ids)))

    embeddings = 0
    for s in labels:
        if s.embedding is not None:
            embeddings += 1
            s.embedding = None
            session.add(s)

    trash = storage.root / ".trash" / f"person-{pid}-{secrets.token_hex(4)}"
    moved: list[tuple[Path, Path]] = []
    consents = list(session.exec(select(ConsentAgreement)
                                 .where(ConsentAgreement.person_id == pid)).all())
    now = utcnow()
    for c in consents:
        if c.document_path:
            src = storage.path_of(c.document_path)
            if src.exists():
                private_dir(trash)
                dst = trash / src.name
                src.rename(dst)
                moved.append((src, dst))
        c.document_path = c.document_sha256 = c.document_type = None
        c.notes = None
        if c.status != ConsentStatus.withdrawn:
            c.status = ConsentStatus.withdrawn
            c.withdrawn_at = now
        c.withdrawal_reason = "erasure request"
        c.updated_at = now
        session.add(c)

    had_voiceprint = person.voiceprint is not None
    # Every label of theirs just lost its embedding above; this deletes the voiceprint and
    # recomputes every suggestion without them (audited as voiceprint-delete).
    session.flush()
    suggested = len(list(session.exec(select(Speaker.id).where(
        Speaker.suggestion_person_id == pid))))
    voices.forget(session, person, actor=actor, why="erasure request")
    person.name = f"[erased person {pid}]"
    person.alt_names = []
    person.organisation = None
    person.notes = None
    person.updated_at = now
    session.add(person)

    summary = ErasureSummary(
        person_id=pid, segments_redacted=len(seg_ids), transcript_versions=versions,
        revisions_deleted=revisions, quotes_deleted=len(quote_ids),
        documents_removed=len(moved), voiceprint_removed=had_voiceprint,
        speaker_embeddings_removed=embeddings, consents_closed=len(consents),
        suggestions_removed=suggested)
    audit.record(session, actor=actor, action="erase", object_type="person", object_id=pid,
                 summary=", ".join(f"{k} {v}" for k, v in summary.model_dump().items()
                                   if k != "person_id"))
    try:
        session.commit()
    except BaseException:
        session.rollback()
        for src, dst in moved:
            dst.rename(src)
        raise
    shutil.rmtree(trash, ignore_errors=True)
    return summary
