"""Users and their API tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from service.models.base import NEVER_REUSE_IDS, enum_type, ts_column, utcnow


class Role(StrEnum):
    researcher = "researcher"
    author = "author"
    editor = "editor"
    admin = "admin"


class UserBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Field(sa_type=enum_type(Role))


class User(UserBase, table=True):
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(min_length=1, max_length=200, unique=True)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())


class ApiToken(SQLModel, table=True):
    """A bearer token, stored only as its HMAC-SHA256 digest."""

    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    digest: str = Field(max_length=64, unique=True)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=ts_column())
    last_used_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))
    revoked: bool = False


class UserCreate(UserBase):
    pass


class UserPublic(UserBase):
    id: int


class UserCreated(UserPublic):
    """Returned once, at creation: the only time the token is shown."""

    token: str
