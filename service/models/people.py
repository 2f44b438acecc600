"""People: the speakers, interviewers and others an interview archive is about."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

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


class PersonKind(StrEnum):
    founder = "founder"
    investor = "investor"
    researcher = "researcher"
    journalist = "journalist"
    executive = "executive"
    other = "other"


class PersonBase(SQLModel):
    name: str = Field(min_length=1, max_length=200, index=True)
    alt_names: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    kind: PersonKind = Field(default=PersonKind.other, sa_type=enum_type(PersonKind))
    organisation: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=20_000)


class Person(PersonBase, table=True):
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    #: Consent to biometric processing; a voiceprint is only kept while this is true.
    biometric_consent: bool = False
    voiceprint: list[float] | None = Field(default=None, sa_column=json_column())
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


#: Other spellings and scripts of a name (pinyin, English, traditional): a handful.
AltNames = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=200)]],
    Field(max_length=50),
]


class PersonCreate(PersonBase):
    alt_names: AltNames = Field(default_factory=list)


class PersonUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    alt_names: AltNames | None = None
    kind: PersonKind | None = None
    organisation: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=20_000)

    _not_null = field_validator("name", "alt_names", "kind", mode="before")(reject_null)


class PersonPublic(PersonBase):
    id: int
    biometric_consent: bool
    has_voiceprint: bool = False
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Person) -> PersonPublic:
        data: dict[str, Any] = p.model_dump(exclude={"voiceprint"})
        return cls(**data, has_voiceprint=p.voiceprint is not None)
