"""The append-only audit log."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from service.models.base import ts_column, utcnow


class AuditEvent(SQLModel, table=True):
    """Who did what to which object, when. Never updated or deleted (triggers enforce it).

    No foreign keys: an event must outlive the user and the object it names, and its
    summary never holds interview content, so erasing a recording leaves it intact.
    """

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=ts_column(index=True))
    actor_id: int | None = Field(default=None, index=True)
    actor: str = Field(default="system", max_length=200)
    action: str = Field(max_length=50, index=True)
    object_type: str = Field(max_length=50)
    object_id: str | None = Field(default=None, max_length=50)
    summary: str = Field(default="", max_length=2_000)


#: The table whose ids each ``object_type`` names (the tables that never reuse an id,
#: ``NEVER_REUSE_IDS``); a restore moves each id counter past the ids the log names.
OBJECT_TABLES: dict[str, str] = {
    "user": "user", "token": "apitoken", "person": "person", "recording": "recording",
    "job": "job", "transcript": "transcript", "segment": "segment", "chapter": "chapter",
    "quote": "quote", "consent": "consentagreement", "restriction": "restriction",
}


class AuditEventPublic(SQLModel):
    id: int
    at: datetime
    actor_id: int | None
    actor: str
    action: str
    object_type: str
    object_id: str | None
    summary: str
