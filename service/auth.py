"""Users, roles and API tokens.

Tokens are 256-bit random strings shown once; the database keeps only their
HMAC-SHA256 under a per-installation key, so a stolen database cannot be replayed
and a lookup is one indexed equality. The role table (API.md) is enforced with
``require(...)`` on every route; object visibility lives in ``service.access``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session, select

from service.db import SessionDep
from service.models.base import utcnow
from service.models.users import ApiToken, Role, User

TOKEN_PREFIX = "sb_"  # noqa: S105 - a prefix, not a secret
#: The web pages keep the token in this HttpOnly cookie (service.web).
SESSION_COOKIE = "sourcebook_token"
#: Cookie-authenticated requests that change data must carry this header (see csrf_token).
CSRF_HEADER = "X-Sourcebook-CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LAST_USED_RESOLUTION = timedelta(minutes=5)

#: Who may do what (API.md). Admin is in every group.
EVERYONE = (Role.researcher, Role.author, Role.editor, Role.admin)
RESEARCH = (Role.researcher, Role.admin)
EDITORIAL = (Role.editor, Role.admin)
AUTHORING = (Role.author, Role.editor, Role.admin)
STAFF = (Role.researcher, Role.editor, Role.admin)
ADMIN = (Role.admin,)

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <token>")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def create_user(session: Session, *, key: bytes, name: str, role: Role) -> tuple[User, str]:
    """Create a user with a first token; returns the token, which is never stored."""
    if session.exec(select(User).where(User.name == name)).first() is not None:
        raise ValueError(f"a user named {name!r} already exists; pick another name")
    user = User(name=name, role=role)
    session.add(user)
    session.flush()
    token = issue_token(session, key=key, user=user, label="created")
    return user, token


def issue_token(session: Session, *, key: bytes, user: User, label: str = "") -> str:
    """Add a new token for ``user`` (the caller commits)."""
    assert user.id is not None
    token = new_token()
    session.add(ApiToken(user_id=user.id, digest=token_digest(key, token), label=label))
    return token


def csrf_token(key: bytes, token: str) -> str:
    """The value a page must echo in ``X-Sourcebook-CSRF`` when it sends the cookie.

    Derived from the session token, so it needs no storage and changes with the token. A
    cross-site form cannot set a custom header, and a cross-site fetch that sets one needs a
    CORS preflight this app never grants, so the header proves the request came from a page
    of this origin (the SameSite=Strict cookie is the second layer).
    """
    return hmac.new(key, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()[:32]


def user_for_token(session: Session, *, key: bytes, token: str) -> User | None:
    row = session.exec(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)  # type: ignore[arg-type]
        .where(ApiToken.digest == token_digest(key, token))
    ).first()
    if row is None:
        return None
    api_token, user = row
    if api_token.revoked or user.disabled:
        return None
    now = utcnow()
    # Only touch the row now and then: a write on every request would serialise
    # all readers on SQLite for a timestamp nobody needs to the second.
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
        api_token.last_used_at = now
        session.add(api_token)
        session.commit()
    return user


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
    user = user_for_token(session, key=request.app.state.token_key, token=token)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Invalid or revoked token: ask an admin for a new one "
            "(`sourcebook users create` or POST /api/v1/users).",
            headers={"WWW-Authenticate": "Bearer"},
        )
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
