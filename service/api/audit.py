"""/api/v1/audit/log: the append-only event log (editors and admins)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from service.api.deps import Editor, Limit, Offset, SessionDep
from service.crud import audit as crud
from service.models.audit import AuditEventPublic
from service.models.base import Page

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/log", response_model=Page[AuditEventPublic])
def read_audit_log(
    session: SessionDep,
    user: Editor,
    limit: Limit = 100,
    offset: Offset = 0,
    object_type: str | None = Query(None, max_length=50),
    object_id: str | None = Query(None, max_length=50),
    actor: str | None = Query(None, max_length=200),
    action: str | None = Query(None, max_length=50),
) -> Page[AuditEventPublic]:
    """Read the audit log, newest first."""
    rows, count = crud.list_events(
        session, object_type=object_type, object_id=object_id, actor=actor, action=action,
        limit=limit, offset=offset,
    )
    return Page(data=[AuditEventPublic.model_validate(e) for e in rows], count=count)
