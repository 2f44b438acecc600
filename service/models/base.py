"""Shared column types and helpers for the SQLModel tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ValidationInfo
from sqlalchemy.engine import Dialect

#: ``__table_args__`` of every table whose rows the audit log names by id. A plain SQLite
#: INTEGER PRIMARY KEY hands the id of a deleted last row to the next row, so one audit
#: object id would name two objects; AUTOINCREMENT never reuses an id. PostgreSQL's
#: sequences never go back anyway. Migration 0007 rebuilt the existing SQLite tables.
NEVER_REUSE_IDS: dict[str, Any] = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on SQLite and PostgreSQL alike.

    SQLite has no time zones; without this, reads would return naive datetimes that
    serialise without an offset and are easy to misread as local time.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def ts_column(*, nullable: bool = False, index: bool = False) -> Any:
    """A UTC timestamp column."""
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


def json_column(*, nullable: bool = True) -> Any:
    """A JSON column (JSON on SQLite, JSONB-compatible JSON on PostgreSQL)."""
    return sa.Column(sa.JSON(), nullable=nullable)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list: ``{"data": [...], "count": N}`` where count is the total."""

    data: list[T]
    count: int


def enum_type(cls: type[Any]) -> sa.Enum:
    """A portable enum column: VARCHAR holding the member's value, no native PG type.

    Native PostgreSQL enums need ALTER TYPE for every new member; the application
    validates values anyway.
    """
    return sa.Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


def reject_null(value: Any, info: ValidationInfo) -> Any:
    """A field of an update body that may be left out but not set to null.

    Use as ``field_validator(*names, mode="before")(reject_null)`` on the fields whose
    column is NOT NULL; without it a null reaches the database as an IntegrityError.
    """
    if value is None:
        raise ValueError(f"'{info.field_name}' cannot be null; leave it out to keep it")
    return value
