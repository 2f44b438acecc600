"""May this quote be printed on this date, and how must it be attributed?

Pure rules: no database, no I/O. ``service.clearance.facts`` gathers the facts into the
frozen dataclasses below; ``assess`` decides. Every rule that fires adds a reason, so
an editor sees everything that stands in the way at once rather than one problem per
round trip.

The rules, in the vocabulary of oral-history and journalism practice:

- The speaker must be identified (``Quote.person_id``), and the source recording must
  still exist.
- The applicable agreement is the recording-specific one for (person, recording) if
  there is one, else the person-wide one (``recording_id`` None); within a scope the
  newest wins. None, ``pending`` or ``withdrawn`` blocks.
- An agreement embargo later than the publication date blocks.
- Agreement attribution: ``on_record`` attributes by name; ``background`` by the agreed
  descriptor only (no descriptor blocks); ``deep_background`` and ``off_record`` block:
  the information may inform the book, but nothing may be quoted.
- Restrictions overlapping the quote's [start, end] and in force on the publication
  date: ``off_record`` and ``deep_background`` block; ``embargo`` blocks; ``background``
  forces attribution by descriptor. The strictest wins; all are reported.
- Approval: when the agreement requires it, the quote needs an approval whose text
  equals the text used (edited, else verbatim). Requested or missing approval, or an
  approval of other text, gives ``needs_approval``. A rejection blocks, required or not.

A restriction's ``until`` is the day it lifts: it is in force on every earlier day, so
"embargo until 2026-06-01" blocks publication on 31 May and allows it on 1 June. The
agreement's ``embargo_until`` reads the same way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from service.models.consent import (
    ApprovalDecision,
    Attribution,
    ConsentStatus,
    RestrictionLevel,
)


class Status(StrEnum):
    cleared = "cleared"
    needs_approval = "needs_approval"
    blocked = "blocked"


class Code(StrEnum):
    """Machine-readable reason codes (the messages are for people)."""

    source_deleted = "source_deleted"
    unidentified_speaker = "unidentified_speaker"
    no_agreement = "no_agreement"
    agreement_pending = "agreement_pending"
    agreement_withdrawn = "agreement_withdrawn"
    agreement_embargo = "agreement_embargo"
    agreement_deep_background = "agreement_deep_background"
    agreement_off_record = "agreement_off_record"
    background_without_descriptor = "background_without_descriptor"
    restriction_off_record = "restriction_off_record"
    restriction_deep_background = "restriction_deep_background"
    restriction_embargo = "restriction_embargo"
    restriction_background = "restriction_background"
    approval_missing = "approval_missing"
    approval_pending = "approval_pending"
    approval_text_changed = "approval_text_changed"
    approval_rejected = "approval_rejected"


@dataclass(frozen=True)
class AgreementFacts:
    id: int
    status: ConsentStatus
    attribution: Attribution
    #: None: covers every recording of the person.
    recording_id: int | None = None
    descriptor: str | None = None
    approval_required: bool = False
    embargo_until: date | None = None


@dataclass(frozen=True)
class RestrictionFacts:
    id: int
    start: float
    end: float
    level: RestrictionLevel
    until: date | None = None


@dataclass(frozen=True)
class ApprovalFacts:
    """The latest approval decision recorded for the quote."""

    decision: ApprovalDecision
    approved_text: str | None = None


@dataclass(frozen=True)
class QuoteFacts:
    quote_id: int
    recording_id: int | None
    start: float
    end: float
    person_id: int | None
    person_name: str | None
    verbatim: str
    edited: str | None = None
    #: Every agreement of the quote's speaker (any scope); ``assess`` picks the one
    #: that applies.
    agreements: tuple[AgreementFacts, ...] = ()
    #: Every restriction on the quote's recording; ``assess`` picks what overlaps.
    restrictions: tuple[RestrictionFacts, ...] = ()
    approval: ApprovalFacts | None = None

    @property
    def text_used(self) -> str:
        return self.edited if self.edited is not None else self.verbatim


@dataclass(frozen=True)
class Reason:
    code: Code
    message: str
    #: The status this reason alone would give.
    status: Status


@dataclass(frozen=True)
class Clearance:
    status: Status
    #: The name or the agreed descriptor to print; None when blocked.
    attribution: str | None
    #: ``on_record`` (by name) or ``background`` (by descriptor); None when blocked.
    attribution_level: Attribution | None
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    agreement_id: int | None = None

    @property
    def codes(self) -> tuple[Code, ...]:
        return tuple(r.code for r in self.reasons)


#: Strictest first: the order in which restrictions win over one another.
RESTRICTION_ORDER = (
    RestrictionLevel.off_record,
    RestrictionLevel.deep_background,
    RestrictionLevel.embargo,
    RestrictionLevel.background,
)


def applicable_agreement(
    agreements: Iterable[AgreementFacts], recording_id: int | None
) -> AgreementFacts | None:
    """The recording-specific agreement if any, else the person-wide one; newest first."""
    pool = list(agreements)
    specific = [a for a in pool if recording_id is not None and a.recording_id == recording_id]
    general = [a for a in pool if a.recording_id is None]
    for candidates in (specific, general):
        if candidates:
            return max(candidates, key=lambda a: a.id)
    return None


def in_force(until: date | None, as_of: date) -> bool:
    """Whether something that lifts on ``until`` (None: never) still holds on ``as_of``."""
    return until is None or as_of < until


def overlapping(
    restrictions: Iterable[RestrictionFacts], start: float, end: float, as_of: date
) -> list[RestrictionFacts]:
    """Restrictions in force on ``as_of`` that overlap [start, end], strictest first."""
    hits = [
        r for r in restrictions
        if r.start < end and r.end > start and in_force(r.until, as_of)
    ]
    return sorted(hits, key=lambda r: (RESTRICTION_ORDER.index(r.level), r.start, r.id))


def same_text(a: str, b: str) -> bool:
    """Approved text must be the text used; only Unicode form and outer spaces may differ."""
    return unicodedata.normalize("NFC", a).strip() == unicodedata.normalize("NFC", b).strip()


def _span(r: RestrictionFacts) -> str:
    return f"{r.start:.1f}-{r.end:.1f} s"


def _agreement_reasons(a: AgreementFacts | None, as_of: date) -> list[Reason]:
    blocked = Status.blocked
    if a is None:
        return [Reason(Code.no_agreement, "no consent agreement covers this speaker and "
                       "recording; record one with POST /consents", blocked)]
    out: list[Reason] = []
    if a.status == ConsentStatus.pending:
        out.append(Reason(Code.agreement_pending,
                          f"consent #{a.id} is still pending; it must be granted", blocked))
    elif a.status == ConsentStatus.withdrawn:
        out.append(Reason(Code.agreement_withdrawn, f"consent #{a.id} was withdrawn", blocked))
    if a.embargo_until is not None and in_force(a.embargo_until, as_of):
        out.append(Reason(Code.agreement_embargo,
                          f"consent #{a.id} embargoes publication until {a.embargo_until}",
                          blocked))
    if a.attribution == Attribution.deep_background:
        out.append(Reason(Code.agreement_deep_background,
                          f"consent #{a.id} is deep background: the information may be used "
                          "but nothing may be quoted or attributed", blocked))
    elif a.attribution == Attribution.off_record:
        out.append(Reason(Code.agreement_off_record,
                          f"consent #{a.id} is off the record: nothing may be quoted",
                          blocked))
    return out


def _restriction_reasons(hits: Sequence[RestrictionFacts]) -> list[Reason]:
    out: list[Reason] = []
    for r in hits:
        where = f"restriction #{r.id} ({_span(r)})"
        if r.level == RestrictionLevel.off_record:
            out.append(Reason(Code.restriction_off_record,
                              f"{where} is off the record", Status.blocked))
        elif r.level == RestrictionLevel.deep_background:
            out.append(Reason(Code.restriction_deep_background,
                              f"{where} is deep background: nothing may be quoted",
                              Status.blocked))
        elif r.level == RestrictionLevel.embargo:
            until = f"until {r.until}" if r.until else "with no end date"
            out.append(Reason(Code.restriction_embargo,
                              f"{where} is embargoed {until}", Status.blocked))
        else:
            out.append(Reason(Code.restriction_background,
                              f"{where} is on background: attribute only by the agreed "
                              "descriptor", Status.cleared))
    return out


def _approval_reasons(q: QuoteFacts, required: bool) -> list[Reason]:
    ap = q.approval
    if ap is not None and ap.decision == ApprovalDecision.rejected:
        return [Reason(Code.approval_rejected,
                       "the interviewee rejected this quote", Status.blocked)]
    if not required:
        return []
    if ap is None:
        return [Reason(Code.approval_missing, "the agreement requires quote approval; "
                       "request it with POST /quotes/{id}/approval", Status.needs_approval)]
    if ap.decision == ApprovalDecision.requested:
        return [Reason(Code.approval_pending, "approval was requested and is awaiting an "
                       "answer", Status.needs_approval)]
    if ap.approved_text is None or not same_text(ap.approved_text, q.text_used):
        return [Reason(Code.approval_text_changed, "the text used differs from the approved "
                       "text; ask for approval of the current wording", Status.needs_approval)]
    return []


def assess(q: QuoteFacts, *, as_of: date) -> Clearance:
    """The clearance of one quote for publication on ``as_of``, with every reason."""
    reasons: list[Reason] = []
    if q.recording_id is None:
        reasons.append(Reason(Code.source_deleted,
                              "the source recording was deleted", Status.blocked))
    agreement: AgreementFacts | None = None
    if q.person_id is None:
        reasons.append(Reason(Code.unidentified_speaker, "the speaker is not identified; name "
                              "the speaker before the quote can be cleared", Status.blocked))
    else:
        agreement = applicable_agreement(q.agreements, q.recording_id)
        reasons += _agreement_reasons(agreement, as_of)
    hits = overlapping(q.restrictions, q.start, q.end, as_of)
    reasons += _restriction_reasons(hits)

    by_descriptor = (
        (agreement is not None and agreement.attribution == Attribution.background)
        or any(r.level == RestrictionLevel.background for r in hits)
    )
    descriptor = (agreement.descriptor or "").strip() if agreement is not None else ""
    if by_descriptor and agreement is not None and not descriptor:
        reasons.append(Reason(Code.background_without_descriptor,
                              f"background attribution needs an agreed descriptor; consent "
                              f"#{agreement.id} has none", Status.blocked))
    reasons += _approval_reasons(q, agreement is not None and agreement.approval_required)

    statuses = {r.status for r in reasons}
    agreement_id = agreement.id if agreement is not None else None
    if Status.blocked in statuses:
        return Clearance(Status.blocked, None, None, tuple(reasons), agreement_id)
    status = Status.needs_approval if Status.needs_approval in statuses else Status.cleared
    if by_descriptor:
        return Clearance(status, descriptor, Attribution.background, tuple(reasons),
                         agreement_id)
    return Clearance(status, q.person_name, Attribution.on_record, tuple(reasons), agreement_id)
