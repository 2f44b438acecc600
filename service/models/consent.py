"""Consent agreements, restrictions on time ranges, and quote approvals."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from service.models.audit import AuditEventPublic
from service.models.base import NEVER_REUSE_IDS, enum_type, ts_column, utcnow
from service.models.clock import ClockSeconds
from service.models.people import PersonPublic


class ConsentStatus(StrEnum):
    pending = "pending"
    granted = "granted"
    withdrawn = "withdrawn"


class ConsentForm(StrEnum):
    signed = "signed"
    verbal_on_tape = "verbal-on-tape"
    email = "email"


class Attribution(StrEnum):
    on_record = "on_record"
    background = "background"
    deep_background = "deep_background"
    off_record = "off_record"


class RestrictionLevel(StrEnum):
    off_record = "off_record"
    background = "background"
    deep_background = "deep_background"
    embargo = "embargo"


class ApprovalDecision(StrEnum):
    requested = "requested"
    approved = "approved"
    rejected = "rejected"


class ConsentAgreement(SQLModel, table=True):
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", ondelete="CASCADE", index=True)
    #: None: the agreement covers every recording of the person.
    recording_id: int | None = Field(
        default=None, foreign_key="recording.id", ondelete="CASCADE", index=True
    )
    status: ConsentStatus = Field(default=ConsentStatus.pending, sa_type=enum_type(ConsentStatus))
    form: ConsentForm = Field(default=ConsentForm.signed, sa_type=enum_type(ConsentForm))
    signed_at: date | None = None
    attribution: Attribution = Field(
        default=Attribution.on_record, sa_type=enum_type(Attribution)
    )
    descriptor: str | None = Field(default=None, max_length=500)
    approval_required: bool = False
    #: Consent to voice recognition (biometric processing): a voiceprint is kept only
    #: while a granted agreement of the person says so.
    voiceprint: bool = False
    embargo_until: date | None = None
    notes: str | None = Field(default=None, max_length=20_000)
    document_path: str | None = Field(default=None, max_length=500)
    document_sha256: str | None = Field(default=None, max_length=64)
    document_type: str | None = Field(default=None, max_length=100)
    withdrawn_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    withdrawal_reason: str | None = Field(default=None, max_length=5_000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class Restriction(SQLModel, table=True):
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", ondelete="CASCADE", index=True)
    start: float
    end: float
    level: RestrictionLevel = Field(sa_type=enum_type(RestrictionLevel))
    until: date | None = None
    imposed_by: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=5_000)
    created_by: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class QuoteApproval(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    quote_id: int = Field(foreign_key="quote.id", ondelete="CASCADE", index=True)
    decision: ApprovalDecision = Field(
        default=ApprovalDecision.requested, sa_type=enum_type(ApprovalDecision)
    )
    approved_text: str | None = None
    requested_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    decided_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    decided_by: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")


# --- API schemas -------------------------------------------------------------------

class ConsentBase(SQLModel):
    person_id: int
    #: None: the agreement covers every recording of the person.
    recording_id: int | None = None
    form: ConsentForm = ConsentForm.signed
    signed_at: date | None = None
    attribution: Attribution = Attribution.on_record
    descriptor: str | None = Field(default=None, max_length=500)
    approval_required: bool = False
    #: Consent to voice recognition: enrolment of the person's voice and suggestions of
    #: their name for unnamed speakers. False (the default) keeps no voiceprint.
    voiceprint: bool = False
    embargo_until: date | None = None
    notes: str | None = Field(default=None, max_length=20_000)


class ConsentCreate(ConsentBase):
    #: ``withdrawn`` is reached only through POST /consents/{id}/withdraw, which keeps
    #: the date and the reason; creating a record in that state would have neither.
    status: ConsentStatus = ConsentStatus.pending


class ConsentUpdate(SQLModel):
    status: ConsentStatus | None = None
    form: ConsentForm | None = None
    signed_at: date | None = None
    attribution: Attribution | None = None
    descriptor: str | None = Field(default=None, max_length=500)
    approval_required: bool | None = None
    voiceprint: bool | None = None
    embargo_until: date | None = None
    notes: str | None = Field(default=None, max_length=20_000)


class ConsentPublic(ConsentBase):
    id: int
    status: ConsentStatus
    person_name: str | None = None
    recording_title: str | None = None
    has_document: bool = False
    document_sha256: str | None = None
    document_type: str | None = None
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class WithdrawIn(SQLModel):
    reason: str = Field(min_length=1, max_length=5_000)


class RestrictionCreate(SQLModel):
    start: ClockSeconds = Field(ge=0)
    end: ClockSeconds = Field(gt=0)
    level: RestrictionLevel
    until: date | None = None
    imposed_by: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=5_000)


class RestrictionPublic(SQLModel):
    id: int
    recording_id: int
    recording_title: str | None = None
    start: float
    end: float
    level: RestrictionLevel
    until: date | None
    imposed_by: str | None
    reason: str | None
    created_by: int | None
    created_at: datetime


class ApprovalIn(SQLModel):
    decision: ApprovalDecision
    #: For ``approved``: the text the interviewee approved; default: the quote's text as
    #: it is used now (its edited text, else its verbatim text).
    approved_text: str | None = Field(default=None, max_length=100_000)


class ApprovalPublic(SQLModel):
    id: int
    quote_id: int
    decision: ApprovalDecision
    approved_text: str | None
    requested_at: datetime
    decided_at: datetime | None
    decided_by: int | None
    #: Whether the quote's text in use still equals the approved text.
    matches_current_text: bool | None = None


class ApprovalHistory(SQLModel):
    current: ApprovalPublic | None
    history: list[ApprovalPublic]


class ClearanceRow(SQLModel):
    """One quote as used in one chapter, assessed for a publication date."""

    quote_id: int
    chapter_id: int
    chapter: str
    usage: str
    person_id: int | None
    speaker: str | None
    recording_id: int | None
    recording_title: str | None = None
    start: float
    end: float
    status: str
    attribution: str | None
    attribution_level: str | None
    reasons: list[str]
    reason_codes: list[str]
    agreement_id: int | None
    #: The text that would be printed; withheld (None) for blocked quotes, so that a
    #: report sent outside the team never carries words that may not be printed.
    excerpt: str | None = None


class ClearanceReport(SQLModel):
    data: list[ClearanceRow]
    count: int
    as_of: date
    chapter_id: int | None
    totals: dict[str, int]


class Withdrawal(SQLModel):
    """A withdrawn agreement and the quote uses it blocks."""

    consent: ConsentPublic
    impact: list[ClearanceRow]


class ChapterUse(SQLModel):
    chapter_id: int
    chapter: str
    usage: str


class PersonRecordingUse(SQLModel):
    recording_id: int
    title: str
    recorded_at: datetime | None
    participant_roles: list[str]
    speaker_labels: list[str]
    transcript_versions: int
    #: Segments spoken by the person, over every transcript version.
    segments: int
    segment_texts: list[dict[str, object]] | None = None


class PersonQuoteUse(SQLModel):
    quote_id: int
    recording_id: int | None
    recording_title: str | None = None
    start: float
    end: float
    verbatim: str
    edited: str | None
    translation: str | None
    chapters: list[ChapterUse]


class ErasureSummary(SQLModel):
    person_id: int
    segments_redacted: int
    transcript_versions: int
    revisions_deleted: int
    quotes_deleted: int
    documents_removed: int
    voiceprint_removed: bool
    speaker_embeddings_removed: int
    suggestions_removed: int = 0
    consents_closed: int


class PersonReport(SQLModel):
    """Everything held about a person and where it is used: an access request's answer."""

    generated_at: datetime
    person: PersonPublic
    recordings: list[PersonRecordingUse]
    quotes: list[PersonQuoteUse]
    consents: list[ConsentPublic]
    approvals: list[ApprovalPublic]
    audit_events: list[AuditEventPublic]
