"""The book's outline: parts, chapters and sections."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from service.models.base import NEVER_REUSE_IDS, enum_type, reject_null, ts_column, utcnow


class ChapterKind(StrEnum):
    book = "book"
    part = "part"
    chapter = "chapter"
    section = "section"


class ChapterBase(SQLModel):
    kind: ChapterKind = Field(default=ChapterKind.chapter, sa_type=enum_type(ChapterKind))
    number: str | None = Field(default=None, max_length=50)
    title: str = Field(min_length=1, max_length=500)
    summary: str | None = Field(default=None, max_length=20_000)
    manuscript: str | None = None
    parent_id: int | None = None
    position: int = 0


class Chapter(ChapterBase, table=True):
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    parent_id: int | None = Field(
        default=None, foreign_key="chapter.id", ondelete="CASCADE", index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


#: A chapter's manuscript: far more than a long chapter (~100 000 characters) needs.
MAX_MANUSCRIPT_CHARS = 1_000_000


class ChapterCreate(ChapterBase):
    manuscript: str | None = Field(default=None, max_length=MAX_MANUSCRIPT_CHARS)


class ChapterUpdate(SQLModel):
    kind: ChapterKind | None = None
    number: str | None = Field(default=None, max_length=50)
    title: str | None = Field(default=None, min_length=1, max_length=500)
    summary: str | None = Field(default=None, max_length=20_000)
    manuscript: str | None = Field(default=None, max_length=MAX_MANUSCRIPT_CHARS)
    parent_id: int | None = None
    position: int | None = None

    _not_null = field_validator("kind", "position", mode="before")(reject_null)


class ChapterPublic(ChapterBase):
    """One node with its full manuscript (``GET /chapters/{id}``)."""

    id: int
    created_at: datetime
    updated_at: datetime
    #: Titles from the root down to the parent, for display ("第二编 › 第六章").
    path: list[str] = Field(default_factory=list)
    children: list[int] = Field(default_factory=list)
    quote_count: int = 0


class ChapterNode(SQLModel):
    """A node of the tree (``GET /chapters``): no manuscript, only its size."""

    id: int
    kind: ChapterKind
    number: str | None
    title: str
    summary: str | None = None
    parent_id: int | None
    position: int
    manuscript_chars: int = 0
    quote_count: int = 0
    children: list[ChapterNode] = Field(default_factory=list)


class ChapterTree(SQLModel):
    data: list[ChapterNode]
    #: Every node in the tree, not only the roots.
    count: int


class ChapterImportNote(SQLModel):
    line: int
    text: str


class ChapterImportResult(ChapterTree):
    created: int
    updated: int
    unchanged: int
    #: Nodes already stored that this document does not mention; kept (with their quote
    #: links) until deleted by hand.
    not_in_document: list[int] = Field(default_factory=list)
    #: Drafting notes (bold lines after a closing rule) left out of manuscripts.
    notes: list[ChapterImportNote] = Field(default_factory=list)


class ChapterUse(SQLModel):
    """A chapter that depends on a recording or a person, with the quotes that make it so."""

    chapter_id: int
    kind: ChapterKind
    number: str | None
    title: str
    path: list[str] = Field(default_factory=list)
    quote_ids: list[int] = Field(default_factory=list)
    usages: list[str] = Field(default_factory=list)
ChapterNode.model_rebuild()
