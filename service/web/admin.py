"""The access page: admins create users, see each one's last use, and end their access.

Everything it changes goes through /api/v1/users (service.api.users) from its script, so
the page can never do more than the API allows; this module only lists.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from service import auth
from service.api.deps import Admin, SessionDep
from service.models.users import Role
from service.web.common import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/access", response_class=HTMLResponse)
def access_page(request: Request, session: SessionDep, user: Admin) -> HTMLResponse:
    """Users with their role, state and last use; create, revoke and disable here."""
    accounts = auth.accounts(session, ttl=request.app.state.settings.token_ttl)
    return render(request, user, "access.html", {
        "accounts": accounts, "roles": list(Role), "me": user.id,
    })
