"""Jobs: the source of truth for background work (the queue only delivers)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel

from pipelines.types import Stage
from service.models.base import NEVER_REUSE_IDS, enum_type, json_column, ts_column, utcnow


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


#: A job's stage is its run's (one list of stage names: pipelines.types.Stage).
JobStage = Stage


class JobOptions(SQLModel):
    backend: str | None = Field(default=None, max_length=50,
                                description="faster-whisper or openai-whisper")
    model: str | None = Field(default=None, max_length=200,
                              description="A name from GET /api/v1/models (base, tiny.en ...); "
                              "never a path")
    language: str | None = Field(default=None, max_length=16, description="auto, zh, en ...")
    num_speakers: int | None = Field(default=None, ge=1, le=20)
    min_speakers: int | None = Field(default=None, ge=1, le=20)
    max_speakers: int | None = Field(default=None, ge=1, le=20)


class Job(SQLModel, table=True):
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    recording_id: int = Field(foreign_key="recording.id", ondelete="CASCADE", index=True)
    kind: str = Field(default="transcribe", max_length=50)
    state: JobState = Field(default=JobState.queued, index=True, sa_type=enum_type(JobState))
    stage: JobStage | None = Field(default=None, sa_type=enum_type(JobStage))
    progress: float = 0.0
    attempts: int = 0
    error: str | None = Field(default=None, max_length=5_000)
    options: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    cancel_requested: bool = False
    worker: str | None = Field(default=None, max_length=200)
    heartbeat_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    timings: dict[str, float] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    created_by: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column(index=True))
    started_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


class JobPublic(SQLModel):
    id: int
    recording_id: int
    recording_title: str | None = None
    kind: str
    state: JobState
    stage: JobStage | None
    progress: float
    attempts: int
    error: str | None
    options: dict[str, Any]
    timings: dict[str, float]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
