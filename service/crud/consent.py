"""Consent agreements (with their signed releases), restrictions and quote approvals.

Each write is audited and commits once. Audit summaries carry ids, counts and dates
only, never interview text. What these records mean for the book is judged in
``service.clearance``; access reports and erasure are ``service.crud.person_data``'s.
"""

from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.clearance import rules
from service.clearance.facts import clearance
from service.crud import audit, voices
from service.errors import Conflict, Invalid, Malformed, Unsupported
from service.filemodes import READ_ONLY_MODE, private_dir
from service.models.base import utcnow
from service.models.consent import (
    ApprovalDecision,
    ApprovalHistory,
    ApprovalIn,
    ApprovalPublic,
    ClearanceRow,
    ConsentAgreement,
    ConsentCreate,
    ConsentPublic,
    ConsentStatus,
    ConsentUpdate,
    QuoteApproval,
    Restriction,
    RestrictionCreate,
    RestrictionLevel,
    RestrictionPublic,
)
from service.models.people import Person
from service.models.quotes import Quote
from service.models.recordings import Recording
from service.models.users import User
from service.storage import Storage

#: The largest signed release accepted (a scanned multi-page PDF fits easily).
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
DOCUMENTS_DIR = "consents"

#: Magic bytes of the accepted release formats -> (media type, extension).
DOCUMENT_TYPES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)


# --- agreements ---------------------------------------------------------------------

def to_public(session: Session, agreement: ConsentAgreement) -> ConsentPublic:
    person = session.get(Person, agreement.person_id)
    recording = (session.get(Recording, agreement.recording_id)
                 if agreement.recording_id is not None else None)
    data = agreement.model_dump(exclude={"document_path"})
    return ConsentPublic(**data, person_name=person.name if person else None,
                         recording_title=recording.title if recording else None,
                         has_document=agreement.document_path is not None)


def _check_scope(session: Session, person_id: int, recording_id: int | None) -> None:
    if session.get(Person, person_id) is None:
        raise Invalid(f"No person with id {person_id}; create the person first "
                      "with POST /api/v1/people.")
    if recording_id is not None and session.get(Recording, recording_id) is None:
        raise Invalid(f"No recording with id {recording_id}; leave recording_id "
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
        raise Invalid("An agreement cannot be created as withdrawn; create it and "
                      "then POST /api/v1/consents/{id}/withdraw with the reason.")
    _check_scope(session, data.person_id, data.recording_id)
    existing = _active_in_scope(session, data.person_id, data.recording_id)
    if existing is not None:
        scope = (f"recording {data.recording_id}" if data.recording_id is not None
                 else "all recordings")
        raise Conflict(f"Consent #{existing.id} already covers person "
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
        raise Conflict(f"Consent #{agreement.id} was withdrawn and is kept as it was; "
                       "record a new agreement with POST /api/v1/consents.")
    if changes.get("status") == ConsentStatus.withdrawn:
        raise Invalid("Withdraw with POST /api/v1/consents/{id}/withdraw and a "
                      "reason, so that the date and reason are kept.")
    for key in ("status", "form", "attribution", "approval_required", "voiceprint"):
        if key in changes and changes[key] is None:
            raise Invalid(f"'{key}' cannot be null.")
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
        raise Conflict(f"Consent #{agreement.id} was already withdrawn on "
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
        raise Malformed("The uploaded file is empty (0 bytes).")
    with tmp_path.open("rb") as f:
        head = f.read(16)
    kind = next(((mt, ext) for magic, mt, ext in DOCUMENT_TYPES if head.startswith(magic)),
                None)
    if kind is None:
        raise Unsupported("The signed release must be a PDF, PNG or JPEG file (checked "
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

#: How far past the stored duration a restriction may end: the duration is what the
#: container said at upload, which can be a fraction of a second off the decoded audio.
DURATION_SLACK_S = 0.5


def _clock(seconds: float) -> str:
    """``20.4`` -> ``0:20``, ``3725`` -> ``1:02:05``: as the pages show times."""
    total = int(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def restriction_public(r: Restriction, recording_title: str | None = None,
                       ) -> RestrictionPublic:
    """A restriction for display: the caller has its recording at hand for the title."""
    public = RestrictionPublic.model_validate(r, from_attributes=True)
    public.recording_title = recording_title
    return public


def create_restriction(session: Session, *, recording: Recording, data: RestrictionCreate,
                       actor: User) -> Restriction:
    if data.end <= data.start:
        raise Invalid(f"A restriction needs start < end (got {data.start} to "
                      f"{data.end} seconds).")
    if data.level == RestrictionLevel.embargo and data.until is None:
        raise Invalid("An embargo needs 'until': the date from which the span may "
                      "be published (YYYY-MM-DD).")
    if recording.duration > 0 and data.end > recording.duration + DURATION_SLACK_S:
        raise Invalid(f"This recording is {_clock(recording.duration)} long "
                      f"({recording.duration:.1f} s); a restriction must end by then "
                      f"(got {data.start:g}-{data.end:g} s). Times are seconds from the "
                      "start of the recording.")
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
        raise Invalid("approved_text goes only with decision 'approved'.")
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
