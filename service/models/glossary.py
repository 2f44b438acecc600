"""The glossary: a term (a person, an organisation, a product) and its other names.

Search expands a query that names a term into all of the term's names at query time
(``service.search.aliases``), so an edit here takes effect on the next search, with no
reindex. People's names and ``alt_names`` are read live beside these terms; a term
holds what the people table does not: nicknames (闫总), organisations and products.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints, field_validator
from sqlmodel import Field, SQLModel

from service.models.base import (
    NEVER_REUSE_IDS,
    enum_type,
    json_column,
    reject_null,
    ts_column,
    utcnow,
)


class TermKind(StrEnum):
    person = "person"
    organisation = "organisation"
    product = "product"
    other = "other"


#: Other names of a term; bounded so that one term cannot make every search expensive.
MAX_ALIASES = 30


Aliases = Annotated[
    list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]],
    Field(max_length=MAX_ALIASES),
]


class GlossaryBase(SQLModel):
    term: str = Field(min_length=1, max_length=100, index=True)
    aliases: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    kind: TermKind = Field(default=TermKind.other, sa_type=enum_type(TermKind))
    notes: str | None = Field(default=None, max_length=2000)


class GlossaryTerm(GlossaryBase, table=True):
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class GlossaryCreate(GlossaryBase):
    term: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=100)]
    aliases: Aliases = Field(default_factory=list)


class GlossaryUpdate(SQLModel):
    term: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=100)] | None = None
    aliases: Aliases | None = None
    kind: TermKind | None = None
    notes: str | None = Field(default=None, max_length=2000)

    _not_null = field_validator("term", "aliases", "kind", mode="before")(reject_null)


class GlossaryPublic(GlossaryBase):
    id: int
    #: Pinyin without tones of the Chinese names among term and aliases (derived).
    pinyin: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class ExpandedTerm(SQLModel):
    """A term of the query that names something known, and what else it searched for."""

    typed: str = Field(description="The term as searched (folded: simplified, lower case)")
    alternatives: list[str] = Field(description="Its other names, searched for too")
    people: list[str] = Field(
        default_factory=list, description="People whose own speech this term matches too")
    person_ids: list[int] = Field(default_factory=list)
