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
    #: Derived from the person's consent agreements (service.crud.voices.sync_consent):
    #: true while a granted, not withdrawn agreement says ``voiceprint: true``. Kept as a
    #: column so that lists of people need no join; only that function writes it.
    biometric_consent: bool = False
    #: ``{"samples": [{"source", "recording_id", "label", "model", "embedding",
    #: "added_at"}, ...]}``: several samples from different recordings, bounded per
    #: embedding model (pipelines.voices.enrol); None without one. Never leaves the server.
    voiceprint: dict[str, Any] | None = Field(default=None, sa_column=json_column())
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
        vp = p.voiceprint
        return cls(**data, has_voiceprint=isinstance(vp, dict) and bool(vp.get("samples")))
