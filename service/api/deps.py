"""Shared dependencies and parameters of the routers: who is calling, and may they.

The caller comes from the bearer token or the pages' session cookie (with the CSRF
header for changes); ``require(...)`` lets only the given roles through. Tokens
themselves (issue, check, revoke) are ``service.auth``'s.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.auth import (
    ADMIN,
    AUTHORING,
    CSRF_HEADER,
    EDITORIAL,
    EVERYONE,
    RESEARCH,
    SAFE_METHODS,
    SESSION_COOKIE,
    STAFF,
    TokenRefused,
    authenticate,
    csrf_token,
)
from service.db import DB_UNAVAILABLE_ERRORS
from service.models.users import Role, User

log = logging.getLogger("sourcebook.db")
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token>")


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one session per request, on the app's engine."""
    engine: Engine = request.app.state.engine
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        try:
            session.close()
        except DB_UNAVAILABLE_ERRORS as exc:
            # The connection died under the request (the database went away): the
            # closing ROLLBACK cannot be sent, and the server has already dropped the
            # transaction. Raising here, after the response has started, would make the
            # server reset the client's connection instead of answering.
            log.warning("discarding a session whose connection died: %s",
                        str(exc).splitlines()[0][:300])
            session.invalidate()


SessionDep = Annotated[Session, Depends(get_session)]


def current_user(
    request: Request,
    session: SessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The caller, from the bearer token or the web page's session cookie; else 401."""
    token = creds.credentials if creds is not None else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Missing token: send 'Authorization: Bearer <token>'. "
            "Create one with `sourcebook users create NAME --role ROLE`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        user, _ = authenticate(session, key=request.app.state.token_key, token=token,
                               ttl=request.app.state.settings.token_ttl)
    except TokenRefused as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": "Bearer"}) from None
    # A page that refuses this user (403, 404) still shows them their navigation.
    request.state.user = user
    if creds is None and request.method not in SAFE_METHODS:
        # Only the cookie authenticated this request: a browser sends it to us even when
        # another site made the request, so require proof that one of our pages did.
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, csrf_token(request.app.state.token_key, token)):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Cookie-authenticated changes need the {CSRF_HEADER} header that the "
                "Sourcebook pages send; API clients should send 'Authorization: Bearer "
                "<token>' instead.",
            )
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(*roles: Role) -> Callable[[User], User]:
    """A dependency that lets only ``roles`` through, with a 403 that says who may."""
    allowed = ", ".join(r.value for r in roles)

    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Your role '{user.role.value}' may not do this; it needs one of: {allowed}. "
                "Ask an admin for a token with that role.",
            )
        return user

    return check


Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip")]

AnyUser = Annotated[User, Depends(require(*EVERYONE))]
Researcher = Annotated[User, Depends(require(*RESEARCH))]
Editor = Annotated[User, Depends(require(*EDITORIAL))]
Author = Annotated[User, Depends(require(*AUTHORING))]
Staff = Annotated[User, Depends(require(*STAFF))]
Admin = Annotated[User, Depends(require(*ADMIN))]
