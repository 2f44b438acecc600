"""The glossary page: terms and their aliases, which search expands names to."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from service.api.deps import AnyUser, SessionDep
from service.auth import STAFF
from service.crud import glossary as crud
from service.models.glossary import TermKind
from service.web.common import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/glossary", response_class=HTMLResponse)
def glossary_page(request: Request, session: SessionDep, user: AnyUser) -> HTMLResponse:
    """Every term with its aliases and pinyin; staff add, change and delete them here."""
    rows, count = crud.list_terms(session, limit=crud.MAX_TERMS)
    can_change = user.role in STAFF
    return render(request, user, "glossary.html", {
        "terms": [crud.to_public(t) for t in rows], "count": count, "kinds": list(TermKind),
        "can_change": can_change,
        "suggestions": crud.unlisted_organisations(session) if can_change else [],
    })
