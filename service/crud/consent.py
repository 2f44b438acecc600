"""Consent agreements, restrictions, approvals, clearance reports, access reports, erasure.

Each write is audited and commits once. Clearance is never stored: ``clearance`` reads
the facts, hands them to the pure rules in ``service.clearance`` and returns rows.
Audit summaries carry ids, counts and dates only, never interview text.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from pipelines.escaping import csv_text, md_text
from pipelines.export import hms
from service import clearance as rules
from service.crud import audit, voices
from service.filemodes import READ_ONLY_MODE, private_dir
from service.models.audit import AuditEvent, AuditEventPublic
from service.models.base import utcnow
from service.models.chapters import Chapter
from service.models.consent import (
    ApprovalDecision,
    ApprovalHistory,
    ApprovalIn,
    ApprovalPublic,
    Attribution,
    ChapterUse,
    ClearanceReport,
    ClearanceRow,
    ConsentAgreement,
    ConsentCreate,
    ConsentPublic,
    ConsentStatus,
    ConsentUpdate,
    ErasureSummary,
    PersonQuoteUse,
    PersonRecordingUse,
    PersonReport,
    QuoteApproval,
    Restriction,
    RestrictionCreate,
    RestrictionLevel,
    RestrictionPublic,
)
from service.models.people import Person, PersonPublic
from service.models.quotes import ChapterQuote, Quote
from service.models.recordings import Participant, Recording, Speaker
from service.models.transcripts import Revision, Segment, Transcript
from service.models.users import User
from service.storage import Storage

#: The largest signed release accepted (a scanned multi-page PDF fits easily).
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
DOCUMENTS_DIR = "consents"
ERASED_TEXT = "[erased]"

#: Magic bytes of the accepted release formats -> (media type, extension).
DOCUMENT_TYPES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)


class ConsentError(Exception):
    """A request the data does not allow; ``status_code`` says which HTTP answer fits."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


# --- agreements ---------------------------------------------------------------------

def to_public(session: Session, agreement: ConsentAgreement) -> ConsentPublic:
    person = session.get(Person, agreement.person_id)
    data = agreement.model_dump(exclude={"document_path"})
    return ConsentPublic(**data, person_name=person.name if person else None,
                         has_document=agreement.document_path is not None)


def _check_scope(session: Session, person_id: int, recording_id: int | None) -> None:
    if session.get(Person, person_id) is None:
        raise ConsentError(422, f"No person with id {person_id}; create the person first "
                                "with POST /api/v1/people.")
    if recording_id is not None and session.get(Recording, recording_id) is None:
        raise ConsentError(422, f"No recording with id {recording_id}; leave recording_id "
                                "out for an agreement covering all of the person's recordings.")


def _active_in_scope(session: Session, person_id: int, recording_id: int | None,
                     ) -> ConsentAgreement | None:
    scope = (col(ConsentAgreement.recording_id).is_(None) if recording_id is None
             else col(ConsentAgreement.recording_id) == recording_id)
    return session.exec(select(ConsentAgreement).where(
        ConsentAgreement.person_id == person_id, scope,
        ConsentAgreement.status != ConsentStatus.withdrawn,
    )).first()


def create_agreement(session: Session, *, data: ConsentCreate, actor: User,
                     enqueue: voices.Enqueue | None = None) -> ConsentAgreement:
    if data.status == ConsentStatus.withdrawn:
        raise ConsentError(422, "An agreement cannot be created as withdrawn; create it and "
                                "then POST /api/v1/consents/{id}/withdraw with the reason.")
    _check_scope(session, data.person_id, data.recording_id)
    existing = _active_in_scope(session, data.person_id, data.recording_id)
    if existing is not None:
        scope = (f"recording {data.recording_id}" if data.recording_id is not None
                 else "all recordings")
        raise ConsentError(409, f"Consent #{existing.id} already covers person "
                                f"{data.person_id} for {scope}; change it with PATCH "
                                f"/api/v1/consents/{existing.id}, or withdraw it first.")
    agreement = ConsentAgreement.model_validate(data)
    session.add(agreement)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="consent",
                 object_id=agreement.id,
                 summary=_scope_summary(agreement) + f"; status {agreement.status.value}; "
                 f"attribution {agreement.attribution.value}; voiceprint {agreement.voiceprint}")
    jobs = _sync_voiceprint(session, agreement, actor, "agreement created")
    session.commit()
    _enqueue(enqueue, jobs)
    return agreement


def _sync_voiceprint(session: Session, agreement: ConsentAgreement, actor: User | None,
                     why: str) -> list[int]:
    """Voice recognition follows the person's agreements at once (service.crud.voices)."""
    person = session.get(Person, agreement.person_id)
    if person is None:
        return []
    return voices.sync_consent(session, person, actor=actor,
                               why=f"consent #{agreement.id} {why}").jobs


def _enqueue(enqueue: voices.Enqueue | None, jobs: list[int]) -> None:
    if enqueue is not None:
        for job_id in jobs:
            enqueue(job_id)


def _scope_summary(a: ConsentAgreement) -> str:
    scope = f"recording {a.recording_id}" if a.recording_id is not None else "all recordings"
    return f"person {a.person_id}, {scope}"


def list_agreements(
    session: Session, *, person_id: int | None = None, recording_id: int | None = None,
    status: ConsentStatus | None = None, limit: int = 100, offset: int = 0,
) -> tuple[list[ConsentAgreement], int]:
    query = select(ConsentAgreement)
    if person_id is not None:
        query = query.where(ConsentAgreement.person_id == person_id)
    if recording_id is not None:
        query = query.where(ConsentAgreement.recording_id == recording_id)
    if status is not None:
        query = query.where(ConsentAgreement.status == status)
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(ConsentAgreement.id)).limit(limit).offset(offset)).all()
    return list(rows), count


def update_agreement(session: Session, *, agreement: ConsentAgreement, data: ConsentUpdate,
                     actor: User, enqueue: voices.Enqueue | None = None) -> ConsentAgreement:
    changes = data.model_dump(exclude_unset=True)
    if agreement.status == ConsentStatus.withdrawn:
        raise ConsentError(409, f"Consent #{agreement.id} was withdrawn and is kept as it was; "
                                "record a new agreement with POST /api/v1/consents.")
    if changes.get("status") == ConsentStatus.withdrawn:
        raise ConsentError(422, "Withdraw with POST /api/v1/consents/{id}/withdraw and a "
                                "reason, so that the date and reason are kept.")
    for key in ("status", "form", "attribution", "approval_required", "voiceprint"):
        if key in changes and changes[key] is None:
            raise ConsentError(422, f"'{key}' cannot be null.")
    for key, value in changes.items():
        setattr(agreement, key, value)
    agreement.updated_at = utcnow()
    session.add(agreement)
    audit.record(session, actor=actor, action="update", object_type="consent",
                 object_id=agreement.id, summary="fields: " + ", ".join(sorted(changes)))
    jobs = _sync_voiceprint(session, agreement, actor, "updated")
    session.commit()
    _enqueue(enqueue, jobs)
    return agreement


def withdraw_agreement(session: Session, *, agreement: ConsentAgreement, reason: str,
                       actor: User, as_of: date | None = None,
                       ) -> tuple[ConsentAgreement, list[ClearanceRow]]:
    """Withdraw, keeping the record; returns the quote uses that this blocks."""
    if agreement.status == ConsentStatus.withdrawn:
        raise ConsentError(409, f"Consent #{agreement.id} was already withdrawn on "
                                f"{agreement.withdrawn_at:%Y-%m-%d}.")
    agreement.status = ConsentStatus.withdrawn
    agreement.withdrawn_at = utcnow()
    agreement.withdrawal_reason = reason
    agreement.updated_at = agreement.withdrawn_at
    session.add(agreement)
    session.flush()
    impact = withdrawal_impact(session, agreement=agreement, as_of=as_of)
    # The reason may quote the interviewee; the log keeps only the count.
    audit.record(session, actor=actor, action="withdraw", object_type="consent",
                 object_id=agreement.id,
                 summary=_scope_summary(agreement) + f"; {len(impact)} quote use(s) blocked")
    _sync_voiceprint(session, agreement, actor, "withdrawn")
    session.commit()
    return agreement, impact


def withdrawal_impact(session: Session, *, agreement: ConsentAgreement,
                      as_of: date | None = None) -> list[ClearanceRow]:
    """The quote uses in chapters that rest on this agreement, assessed as if withdrawn.

    For an agreement still in force this answers "what would a withdrawal block?"; for a
    withdrawn one, "what did it block?".
    """
    assert agreement.id is not None
    quotes = select(Quote).where(Quote.person_id == agreement.person_id)
    if agreement.recording_id is not None:
        quotes = quotes.where(Quote.recording_id == agreement.recording_id)
    ids = {q.id for q in session.exec(quotes) if q.id is not None}
    rows = clearance(session, as_of=as_of or date.today(), quote_ids=ids,
                     withdrawn_override=agreement.id)
    return [r for r in rows if r.agreement_id == agreement.id]


def attach_document(session: Session, *, storage: Storage, agreement: ConsentAgreement,
                    tmp_path: Path, size: int, sha256: str, actor: User) -> ConsentAgreement:
    """Check a received file by its bytes and store it as the agreement's signed release.

    The file is placed under ``consents/`` with a server-made name before the commit and
    removed again if the commit fails; a replaced release is deleted only after it.
    """
    if size == 0:
        raise ConsentError(400, "The uploaded file is empty (0 bytes).")
    with tmp_path.open("rb") as f:
        head = f.read(16)
    kind = next(((mt, ext) for magic, mt, ext in DOCUMENT_TYPES if head.startswith(magic)),
                None)
    if kind is None:
        raise ConsentError(415, "The signed release must be a PDF, PNG or JPEG file (checked "
                                "by its content, not its name). Scan or export it as PDF.")
    media_type, ext = kind
    target_dir = private_dir(storage.root / DOCUMENTS_DIR)
    target = target_dir / f"{agreement.id}-{secrets.token_hex(8)}.{ext}"
    tmp_path.replace(target)
    target.chmod(READ_ONLY_MODE)
    old = agreement.document_path
    agreement.document_path = str(target.relative_to(storage.root))
    agreement.document_sha256 = sha256
    agreement.document_type = media_type
    agreement.updated_at = utcnow()
    session.add(agreement)
    audit.record(session, actor=actor, action="attach-document", object_type="consent",
                 object_id=agreement.id,
                 summary=f"{media_type}, {size} bytes, sha256 {sha256}"
                 + ("; replaced the previous release" if old else ""))
    try:
        session.commit()
    except BaseException:
        session.rollback()
        target.unlink(missing_ok=True)
        raise
    if old:
        storage.path_of(old).unlink(missing_ok=True)
    return agreement


def document_file(storage: Storage, agreement: ConsentAgreement) -> Path | None:
    if agreement.document_path is None:
        return None
    path = storage.path_of(agreement.document_path)
    return path if path.is_file() else None


# --- restrictions -------------------------------------------------------------------

def restriction_public(r: Restriction) -> RestrictionPublic:
    return RestrictionPublic.model_validate(r, from_attributes=True)


def create_restriction(session: Session, *, recording: Recording, data: RestrictionCreate,
                       actor: User) -> Restriction:
    if data.end <= data.start:
        raise ConsentError(422, f"A restriction needs start < end (got {data.start} to "
                                f"{data.end} seconds).")
    if data.level == RestrictionLevel.embargo and data.until is None:
        raise ConsentError(422, "An embargo needs 'until': the date from which the span may "
                                "be published (YYYY-MM-DD).")
    assert recording.id is not None
    restriction = Restriction(recording_id=recording.id, start=data.start, end=data.end,
                              level=data.level, until=data.until, imposed_by=data.imposed_by,
                              reason=data.reason, created_by=actor.id)
    session.add(restriction)
    session.flush()
    audit.record(session, actor=actor, action="create", object_type="restriction",
                 object_id=restriction.id,
                 summary=f"recording {recording.id}, {data.start:.2f}-{data.end:.2f} s, "
                 f"{data.level.value}" + (f" until {data.until}" if data.until else ""))
    session.commit()
    return restriction


def list_restrictions(session: Session, *, recording_id: int) -> list[Restriction]:
    return list(session.exec(
        select(Restriction).where(Restriction.recording_id == recording_id)
        .order_by(col(Restriction.start), col(Restriction.id))).all())


def delete_restriction(session: Session, *, restriction: Restriction, actor: User) -> None:
    audit.record(session, actor=actor, action="delete", object_type="restriction",
                 object_id=restriction.id,
                 summary=f"recording {restriction.recording_id}, {restriction.start:.2f}-"
                 f"{restriction.end:.2f} s, {restriction.level.value}")
    session.delete(restriction)
    session.commit()


# --- approvals ----------------------------------------------------------------------

def text_used(quote: Quote) -> str:
    return quote.edited if quote.edited is not None else quote.verbatim


def approval_public(a: QuoteApproval, quote: Quote) -> ApprovalPublic:
    assert a.id is not None
    matches = (rules.same_text(a.approved_text, text_used(quote))
               if a.decision == ApprovalDecision.approved and a.approved_text is not None
               else None)
    return ApprovalPublic(id=a.id, quote_id=a.quote_id, decision=a.decision,
                          approved_text=a.approved_text, requested_at=a.requested_at,
                          decided_at=a.decided_at, decided_by=a.decided_by,
                          matches_current_text=matches)


def approvals_of(session: Session, *, quote: Quote) -> ApprovalHistory:
    rows = session.exec(select(QuoteApproval).where(QuoteApproval.quote_id == quote.id)
                        .order_by(col(QuoteApproval.id))).all()
    history = [approval_public(a, quote) for a in rows]
    return ApprovalHistory(current=history[-1] if history else None, history=history)


def record_approval(session: Session, *, quote: Quote, data: ApprovalIn, actor: User,
                    ) -> QuoteApproval:
    """Add a decision to the quote's approval history; the newest one counts."""
    if data.decision != ApprovalDecision.approved and data.approved_text is not None:
        raise ConsentError(422, "approved_text goes only with decision 'approved'.")
    last = session.exec(select(QuoteApproval).where(QuoteApproval.quote_id == quote.id)
                        .order_by(col(QuoteApproval.id).desc())).first()
    now = utcnow()
    requested_at = (last.requested_at if last is not None
                    and last.decision == ApprovalDecision.requested
                    and data.decision != ApprovalDecision.requested else now)
    approved_text = None
    if data.decision == ApprovalDecision.approved:
        approved_text = data.approved_text if data.approved_text is not None else text_used(
            quote)
    assert quote.id is not None
    row = QuoteApproval(
        quote_id=quote.id, decision=data.decision, approved_text=approved_text,
        requested_at=requested_at,
        decided_at=None if data.decision == ApprovalDecision.requested else now,
        decided_by=None if data.decision == ApprovalDecision.requested else actor.id,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="approval", object_type="quote",
                 object_id=quote.id, summary=f"decision {data.decision.value}")
    session.commit()
    return row


# --- clearance ----------------------------------------------------------------------

def chapter_label(chapter: Chapter) -> str:
    return f"{chapter.number} {chapter.title}" if chapter.number else chapter.title


def chapter_subtree(session: Session, chapter_id: int) -> set[int]:
    """The chapter and everything below it (a part's report covers its chapters)."""
    children: dict[int | None, list[int]] = {}
    for cid, parent in session.exec(select(Chapter.id, Chapter.parent_id)).all():
        if cid is not None:
            children.setdefault(parent, []).append(cid)
    found, todo = set(), [chapter_id]
    while todo:
        cid = todo.pop()
        if cid not in found:
            found.add(cid)
            todo.extend(children.get(cid, []))
    return found


def _facts(session: Session, quotes: Sequence[Quote], withdrawn_override: int | None,
           ) -> dict[int, rules.QuoteFacts]:
    person_ids = {q.person_id for q in quotes if q.person_id is not None}
    recording_ids = {q.recording_id for q in quotes if q.recording_id is not None}
    quote_ids = {q.id for q in quotes if q.id is not None}
    names = dict(session.exec(select(Person.id, Person.name)
                              .where(col(Person.id).in_(person_ids))).all()) if person_ids else {}
    agreements: dict[int, list[rules.AgreementFacts]] = {}
    if person_ids:
        for a in session.exec(select(ConsentAgreement)
                              .where(col(ConsentAgreement.person_id).in_(person_ids))):
            assert a.id is not None
            status = ConsentStatus.withdrawn if a.id == withdrawn_override else a.status
            agreements.setdefault(a.person_id, []).append(rules.AgreementFacts(
                id=a.id, status=status, attribution=a.attribution, recording_id=a.recording_id,
                descriptor=a.descriptor, approval_required=a.approval_required,
                embargo_until=a.embargo_until))
    restrictions: dict[int, list[rules.RestrictionFacts]] = {}
    if recording_ids:
        for r in session.exec(select(Restriction)
                              .where(col(Restriction.recording_id).in_(recording_ids))):
            assert r.id is not None
            restrictions.setdefault(r.recording_id, []).append(rules.RestrictionFacts(
                id=r.id, start=r.start, end=r.end, level=r.level, until=r.until))
    approvals: dict[int, rules.ApprovalFacts] = {}
    if quote_ids:
        for ap in session.exec(select(QuoteApproval)
                               .where(col(QuoteApproval.quote_id).in_(quote_ids))
                               .order_by(col(QuoteApproval.id))):
            approvals[ap.quote_id] = rules.ApprovalFacts(ap.decision, ap.approved_text)
    out: dict[int, rules.QuoteFacts] = {}
    for q in quotes:
        assert q.id is not None
        out[q.id] = rules.QuoteFacts(
            quote_id=q.id, recording_id=q.recording_id, start=q.start, end=q.end,
            person_id=q.person_id, person_name=names.get(q.person_id),
            verbatim=q.verbatim, edited=q.edited,
            agreements=tuple(agreements.get(q.person_id, ())) if q.person_id else (),
            restrictions=tuple(restrictions.get(q.recording_id, ())) if q.recording_id else (),
            approval=approvals.get(q.id),
        )
    return out


def clearance(session: Session, *, as_of: date, chapter_id: int | None = None,
              quote_ids: Iterable[int] | None = None, withdrawn_override: int | None = None,
              ) -> list[ClearanceRow]:
    """Assess every quote use in chapters (optionally one chapter's subtree, or some quotes).

    ``withdrawn_override`` assesses as if that agreement were withdrawn (impact previews).
    """
    query = (select(ChapterQuote, Quote, Chapter)
             .join(Quote, col(Quote.id) == ChapterQuote.quote_id)
             .join(Chapter, col(Chapter.id) == ChapterQuote.chapter_id))
    if chapter_id is not None:
        query = query.where(col(ChapterQuote.chapter_id).in_(chapter_subtree(session,
                                                                             chapter_id)))
    if quote_ids is not None:
        ids = set(quote_ids)
        if not ids:
            return []
        query = query.where(col(ChapterQuote.quote_id).in_(ids))
    links = session.exec(query).all()
    quotes = list({q.id: q for _, q, _ in links}.values())
    facts = _facts(session, quotes, withdrawn_override)
    position = {cid: i for i, cid in enumerate(_chapter_order(session))}
    recording_ids = {q.recording_id for q in quotes if q.recording_id is not None}
    titles = dict(session.exec(select(Recording.id, Recording.title).where(
        col(Recording.id).in_(recording_ids))).all()) if recording_ids else {}
    rows: list[ClearanceRow] = []
    for link, quote, chapter in links:
        assert quote.id is not None and chapter.id is not None
        fact = facts[quote.id]
        result = rules.assess(fact, as_of=as_of)
        excerpt = None if result.status == rules.Status.blocked else fact.text_used
        rows.append(ClearanceRow(
            quote_id=quote.id, chapter_id=chapter.id, chapter=chapter_label(chapter),
            usage=link.usage.value, person_id=quote.person_id, speaker=fact.person_name,
            recording_id=quote.recording_id, recording_title=titles.get(quote.recording_id),
            start=quote.start, end=quote.end, status=result.status.value,
            attribution=result.attribution,
            attribution_level=result.attribution_level.value if result.attribution_level
            else None,
            reasons=[r.message for r in result.reasons],
            reason_codes=[r.code.value for r in result.reasons],
            agreement_id=result.agreement_id, excerpt=excerpt,
        ))
    rows.sort(key=lambda r: (position.get(r.chapter_id, 0), r.start, r.quote_id))
    return rows


def _chapter_order(session: Session) -> list[int]:
    """Chapter ids in reading order (depth first by position), for stable reports."""
    children: dict[int | None, list[Chapter]] = {}
    for c in session.exec(select(Chapter)).all():
        children.setdefault(c.parent_id, []).append(c)
    order: list[int] = []

    def walk(parent: int | None) -> None:
        for c in sorted(children.get(parent, []), key=lambda c: (c.position, c.id or 0)):
            assert c.id is not None
            order.append(c.id)
            walk(c.id)

    walk(None)
    return order


def totals(rows: Sequence[ClearanceRow]) -> dict[str, int]:
    counts = {s.value: 0 for s in rules.Status}
    for r in rows:
        counts[r.status] += 1
    return counts


def clearance_view(session: Session, *, as_of: date, chapter_id: int | None,
                   ) -> ClearanceReport:
    """The clearance of a chapter (or the book), as the consent page shows it: not
    audited, since every page load (and the reload after each consent saved) would
    otherwise add an event."""
    if chapter_id is not None and session.get(Chapter, chapter_id) is None:
        raise ConsentError(404, f"No chapter with id {chapter_id}. List chapters with GET "
                                "/api/v1/chapters.")
    rows = clearance(session, as_of=as_of, chapter_id=chapter_id)
    return ClearanceReport(data=rows, count=len(rows), as_of=as_of, chapter_id=chapter_id,
                           totals=totals(rows))


def clearance_report(session: Session, *, as_of: date, chapter_id: int | None,
                     actor: User | None, fmt: str) -> ClearanceReport:
    """The clearance as a report taken away (the API, a download, the CLI): audited."""
    report = clearance_view(session, as_of=as_of, chapter_id=chapter_id)
    audit.record(session, actor=actor, action="clearance-report",
                 object_type="chapter" if chapter_id is not None else "book",
                 object_id=chapter_id,
                 summary=f"as of {as_of}, {fmt}: {report.count} quote use(s), "
                 + ", ".join(f"{v} {k}" for k, v in report.totals.items()))
    session.commit()
    return report


CSV_COLUMNS = ("quote_id", "chapter_id", "chapter", "usage", "status", "attribution",
               "attribution_level", "speaker", "person_id", "recording_id", "recording_title",
               "start", "end", "reasons")


def render_csv(report: ClearanceReport) -> str:
    """The report as a spreadsheet; titles and names cannot become formulas (csv_text)."""
    return csv_text(CSV_COLUMNS, (
        [r.quote_id, r.chapter_id, r.chapter, r.usage, r.status, r.attribution or "",
         r.attribution_level or "", r.speaker or "", r.person_id or "", r.recording_id or "",
         r.recording_title or "", f"{r.start:.2f}", f"{r.end:.2f}", "; ".join(r.reasons)]
        for r in report.data))


_STATUS_WORDS = {"cleared": "cleared", "needs_approval": "needs approval", "blocked": "BLOCKED"}


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_markdown(report: ClearanceReport, *, title: str = "Clearance report") -> str:
    """A report an editor can send: the blocked uses first, then every chapter in order.

    Every value from the archive goes through ``md_text``: a title or a name cannot add
    HTML, a link or a table column to the report.
    """
    t = report.totals
    scope = (f"chapter {md_text(report.data[0].chapter)}"
             if report.chapter_id is not None and report.data
             else "the whole book" if report.chapter_id is None
             else f"chapter id {report.chapter_id}")
    lines = [
        f"# {md_text(title)}",
        "",
        f"- Planned publication date: **{report.as_of.isoformat()}**",
        f"- Scope: {scope}",
        f"- Generated: {utcnow():%Y-%m-%d %H:%M} UTC",
        f"- Quote uses: **{report.count}**: {t['cleared']} cleared, "
        f"{t['needs_approval']} need approval, {t['blocked']} blocked",
        "",
    ]
    if report.count == 0:
        lines += ["No quotes are linked to chapters in this scope.", ""]
        return "\n".join(lines)
    blocked = [r for r in report.data if r.status == "blocked"]
    if blocked:
        lines += ["## Blocked: must not be printed", "",
                  "| Chapter | Quote | Usage | Speaker | Why |", "|---|---|---|---|---|"]
        for r in blocked:
            why = "<br>".join(md_text(x) for x in r.reasons)
            lines.append(f"| {md_text(r.chapter)} | #{r.quote_id} | {r.usage} | "
                         f"{md_text(r.speaker or 'unidentified')} | {why} |")
        lines.append("")
    current: int | None = None
    for r in report.data:
        if r.chapter_id != current:
            if current is not None:
                lines.append("")
            current = r.chapter_id
            lines += [f"## {md_text(r.chapter)}", ""]
        where = (f"《{md_text(r.recording_title)}》 {hms(r.start)}–{hms(r.end)}"
                 if r.recording_id is not None else "recording deleted")
        head = f"- **Quote #{r.quote_id}** ({r.usage}; {where}): **{_STATUS_WORDS[r.status]}**"
        if r.attribution:
            how = "by name" if r.attribution_level == Attribution.on_record.value else \
                "by descriptor only"
            head += f"; attribute {how} as “{md_text(r.attribution)}”"
        lines.append(head)
        if r.excerpt:
            lines.append(f"  > {md_text(_short(r.excerpt))}")
        elif r.status == "blocked":
            lines.append("  > (text withheld)")
        lines += [f"  - {md_text(reason)}" for reason in r.reasons]
    lines.append("")
    return "\n".join(lines)


# --- access report and erasure ------------------------------------------------------

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
    report = PersonReport(
        generated_at=utcnow(), person=PersonPublic.of(person), recordings=recordings,
        quotes=[PersonQuoteUse(quote_id=q.id or 0, recording_id=q.recording_id, start=q.start,
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
