"""Writing and reading the append-only audit log."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from service.models.audit import AuditEvent
from service.models.users import User


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: int | str | None = None,
    summary: str = "",
) -> AuditEvent:
    """Add an event to the session; it commits with the change it describes.

    ``summary`` must never hold interview content (text, quotes): the log outlives
    erasure of the things it describes.
    """
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        actor=actor.name if actor else "system",
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        summary=summary[:2000],
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    query = select(AuditEvent)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(AuditEvent.id).desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), count
