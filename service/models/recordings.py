"""Recordings, their participants and the speaker labels found in them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import field_validator
from sqlmodel import Field, SQLModel

from service.models.base import (
    NEVER_REUSE_IDS,
    enum_type,
    json_column,
    reject_null,
    ts_column,
    utcnow,
)


class RecordingSource(StrEnum):
    interview = "interview"
    podcast = "podcast"
    talk = "talk"
    panel = "panel"
    other = "other"


class RecordingStatus(StrEnum):
    queued = "queued"
    processing = "processing"
    transcribed = "transcribed"
    failed = "failed"


class Access(StrEnum):
    """``team``: every signed-in role; ``private``: its uploader, editors and admins."""

    team = "team"
    private = "private"


class ParticipantRole(StrEnum):
    interviewer = "interviewer"
    interviewee = "interviewee"
    host = "host"
    other = "other"


class RecordingBase(SQLModel):
    title: str = Field(min_length=1, max_length=500)
    recorded_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    location: str | None = Field(default=None, max_length=500)
    language: str | None = Field(default=None, max_length=16, description="Hint: auto, zh, en ...")
    source: RecordingSource = Field(
        default=RecordingSource.interview, sa_type=enum_type(RecordingSource)
    )
    num_speakers: int | None = Field(default=None, ge=1, le=20)
    notes: str | None = Field(default=None, max_length=20_000)
    access: Access = Field(default=Access.team, sa_type=enum_type(Access))


class Recording(RecordingBase, table=True):
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    status: RecordingStatus = Field(
        default=RecordingStatus.queued, sa_type=enum_type(RecordingStatus)
    )
    sha256: str = Field(max_length=64, unique=True)
    size_bytes: int
    duration: float
    format_name: str = Field(max_length=100)
    codec: str = Field(max_length=100)
    sample_rate: int
    channels: int
    #: The name the file had on the uploader's machine: metadata only, never a path.
    original_filename: str | None = Field(default=None, max_length=500)
    #: Paths relative to the recordings root.
    media_path: str = Field(max_length=500)
    normalised_path: str | None = Field(default=None, max_length=500)
    normalised_sha256: str | None = Field(default=None, max_length=64)
    created_by: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(index=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class Participant(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("recording_id", "person_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", ondelete="CASCADE", index=True)
    person_id: int = Field(foreign_key="person.id", ondelete="CASCADE", index=True)
    role: ParticipantRole = Field(
        default=ParticipantRole.interviewee, sa_type=enum_type(ParticipantRole)
    )


class Speaker(SQLModel, table=True):
    """A diarization label of a recording, optionally mapped to a Person.

    The map is per recording, so it applies to every transcript version, and names
    are joined at read time: remapping reaches every read, search and export at once.
    """

    __table_args__ = (sa.UniqueConstraint("recording_id", "label"),)

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", ondelete="CASCADE", index=True)
    label: str = Field(max_length=50)
    person_id: int | None = Field(
        default=None, foreign_key="person.id", ondelete="SET NULL", index=True
    )
    #: The label's speaker embedding (diarization's centroid, or recomputed from the audio).
    #: Biometric once the label is named: kept only while that person consents to voice
    #: recognition (service.crud.voices). Never leaves the server.
    embedding: list[float] | None = Field(default=None, sa_column=json_column())
    #: The model that made ``embedding``: only embeddings of one model are comparable.
    #: None for embeddings stored before migration 0009 (recomputed when needed).
    embedding_model: str | None = Field(default=None, max_length=200)
    #: The consenting person this label sounds like (pipelines.voices.match), recomputed
    #: after every transcription and whenever voiceprints change. No foreign key: it is
    #: cleared by the code that changes voiceprints, and a dangling id reads as none.
    suggestion_person_id: int | None = None
    suggestion_similarity: float | None = None


class ParticipantIn(SQLModel):
    person_id: int
    role: ParticipantRole = ParticipantRole.interviewee


class ParticipantPublic(ParticipantIn):
    name: str


class RecordingMeta(RecordingBase):
    """The ``meta`` part of an upload."""

    participants: list[ParticipantIn] = Field(default_factory=list, max_length=50)


class RecordingUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    recorded_at: datetime | None = None
    location: str | None = Field(default=None, max_length=500)
    language: str | None = Field(default=None, max_length=16)
    source: RecordingSource | None = None
    num_speakers: int | None = Field(default=None, ge=1, le=20)
    notes: str | None = Field(default=None, max_length=20_000)
    access: Access | None = None
    participants: list[ParticipantIn] | None = Field(default=None, max_length=50)

    _not_null = field_validator("title", "source", "access", mode="before")(reject_null)


class SpeakerPublic(SQLModel):
    label: str
    person_id: int | None
    name: str | None


class RecordingPublic(RecordingBase):
    id: int
    status: RecordingStatus
    sha256: str
    size_bytes: int
    duration: float
    format_name: str
    codec: str
    sample_rate: int
    channels: int
    original_filename: str | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    participants: list[ParticipantPublic] = Field(default_factory=list)
    speakers: list[SpeakerPublic] = Field(default_factory=list)
