"""Quotes: frozen spans of a transcript, and their use in chapters."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from service.models.base import NEVER_REUSE_IDS, enum_type, ts_column, utcnow
from service.models.clock import OptionalClockSeconds


class Usage(StrEnum):
    candidate = "candidate"
    drafted = "drafted"
    published = "published"


class Quote(SQLModel, table=True):
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int | None = Field(
        default=None, foreign_key="recording.id", ondelete="SET NULL", index=True
    )
    transcript_id: int | None = Field(
        default=None, foreign_key="transcript.id", ondelete="SET NULL"
    )
    transcript_version: int
    start: float
    end: float
    speaker: str = Field(max_length=50)
    person_id: int | None = Field(
        default=None, foreign_key="person.id", ondelete="SET NULL", index=True
    )
    #: Frozen at creation from the transcript; never edited.
    verbatim: str
    edited: str | None = None
    translation: str | None = None
    translator: str | None = Field(default=None, max_length=200)
    allow_multiple_speakers: bool = False
    created_by: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class ChapterQuote(SQLModel, table=True):
    chapter_id: int = Field(foreign_key="chapter.id", ondelete="CASCADE", primary_key=True)
    quote_id: int = Field(foreign_key="quote.id", ondelete="CASCADE", primary_key=True, index=True)
    usage: Usage = Field(default=Usage.candidate, sa_type=enum_type(Usage))
    note: str | None = Field(default=None, max_length=5_000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class QuoteCreate(SQLModel):
    """A span ``{recording_id, start, end}`` or adjacent segments ``{segment_ids}``."""

    recording_id: int | None = None
    start: OptionalClockSeconds = Field(default=None, ge=0)
    end: OptionalClockSeconds = Field(default=None, ge=0)
    segment_ids: list[int] | None = Field(default=None, min_length=1, max_length=500)
    allow_multiple_speakers: bool = False
    edited: str | None = Field(default=None, max_length=50_000)
    translation: str | None = Field(default=None, max_length=50_000)
    translator: str | None = Field(default=None, max_length=200)


class QuoteUpdate(SQLModel):
    edited: str | None = Field(default=None, max_length=50_000)
    translation: str | None = Field(default=None, max_length=50_000)
    translator: str | None = Field(default=None, max_length=200)


class QuoteChapterLink(SQLModel):
    chapter_id: int
    #: The chapter's number and title, as people name it ("第七章 技术豪赌").
    chapter_label: str | None = None
    usage: Usage
    note: str | None = None


class QuotePublic(SQLModel):
    id: int
    recording_id: int | None
    recording_title: str | None = None
    transcript_id: int | None
    transcript_version: int
    start: float
    end: float
    person_id: int | None
    person_name: str | None = None
    speaker: str
    verbatim: str
    edited: str | None
    translation: str | None
    translator: str | None
    allow_multiple_speakers: bool
    citation: str | None
    #: The current transcript no longer says ``verbatim`` over this span (None: erased source).
    drift: bool | None = None
    current_version: int | None = None
    #: Set when text is withheld from the caller: "restricted" or "erased".
    withheld: str | None = None
    #: On creation: why the quote holds whole segments rather than exactly the span
    #: (their word times are estimated: a correction or import not aligned yet).
    whole_segments: str | None = None
    chapters: list[QuoteChapterLink] = Field(default_factory=list)
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class ChapterQuoteCreate(SQLModel):
    quote_id: int
    usage: Usage = Usage.candidate
    note: str | None = Field(default=None, max_length=5_000)


class ChapterQuotePublic(SQLModel):
    chapter_id: int
    chapter_label: str | None = None
    quote_id: int
    usage: Usage
    note: str | None
    created_at: datetime


class CitationPublic(SQLModel):
    citation: str
    style: str
