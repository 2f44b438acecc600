"""Users and their API tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import field_validator
from sqlmodel import Field, SQLModel

from service.models.base import NEVER_REUSE_IDS, enum_type, reject_null, ts_column, utcnow


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
    #: None: no expiry of its own (SOURCEBOOK_TOKEN_TTL_DAYS may still end it).
    expires_at: datetime | None = Field(default=None, sa_column=ts_column(nullable=True))


class UserCreate(UserBase):
    pass


class UserPublic(UserBase):
    id: int


class UserCreated(UserPublic):
    """Returned once, at creation: the only time the token is shown."""

    token: str


class UserAccount(UserPublic):
    """A user as the admin sees them: state and last use, never a token."""

    disabled: bool
    created_at: datetime
    #: The latest use of any of the user's tokens (recorded to within a few minutes).
    last_used_at: datetime | None
    #: Tokens that would be accepted now (not revoked, not expired).
    active_tokens: int


class UserUpdate(SQLModel):
    """What an admin may change: the role, and whether the account may sign in."""

    role: Role | None = None
    disabled: bool | None = None

    _not_null = field_validator("role", "disabled", mode="before")(reject_null)


class TokenCreate(SQLModel):
    label: str = Field(default="", max_length=100,
                       description="What the token is for, e.g. 'laptop' or 'CI'.")


class TokenIssued(SQLModel):
    """A new token for a user: shown in this response only."""

    user_id: int
    name: str
    role: Role
    label: str
    token: str
    expires_at: datetime | None


class TokensRevoked(SQLModel):
    user_id: int
    name: str
    #: How many tokens stopped working with this call (already revoked ones not counted).
    revoked: int
