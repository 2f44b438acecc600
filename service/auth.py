"""Users, roles and API tokens.

Tokens are 256-bit random strings shown once; the database keeps only their
HMAC-SHA256 under a per-installation key, so a stolen database cannot be replayed
and a lookup is one indexed equality. The role table (API.md) is enforced with
``require(...)`` (``service.api.deps``) on every route; object visibility lives in
``service.access``. Nothing here speaks HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.errors import Conflict, Unauthenticated
from service.models.base import utcnow
from service.models.users import ApiToken, Role, User, UserAccount

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

def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


#: The label of the token a web sign-in creates; signing out revokes only such a token.
WEB_SESSION_LABEL = "web session"
#: How long a web sign-in lasts at most (less when SOURCEBOOK_TOKEN_TTL_DAYS is shorter).
WEB_SESSION_LIFETIME = timedelta(days=14)


class TokenRefused(Unauthenticated):
    """The token is unknown, revoked, expired, or its account is disabled; the message
    says which and what to do."""


def create_user(session: Session, *, key: bytes, name: str, role: Role,
                ttl: timedelta | None = None) -> tuple[User, str]:
    """Create a user with a first token; returns the token, which is never stored."""
    if session.exec(select(User).where(User.name == name)).first() is not None:
        raise Conflict(f"a user named {name!r} already exists; pick another name")
    user = User(name=name, role=role)
    session.add(user)
    session.flush()
    token = issue_token(session, key=key, user=user, label="created", ttl=ttl)
    return user, token


def issue_token(session: Session, *, key: bytes, user: User, label: str = "",
                ttl: timedelta | None = None, lifetime: timedelta | None = None) -> str:
    """Add a new token for ``user`` (the caller commits); see :func:`issue`."""
    return issue(session, key=key, user=user, label=label, ttl=ttl, lifetime=lifetime)[0]


def issue(session: Session, *, key: bytes, user: User, label: str = "",
          ttl: timedelta | None = None, lifetime: timedelta | None = None,
          ) -> tuple[str, ApiToken]:
    """A new token for ``user`` and its row (the caller commits).

    It expires after the shorter of ``lifetime`` (this token's own, e.g. a web session's)
    and ``ttl`` (the installation's SOURCEBOOK_TOKEN_TTL_DAYS); never when both are None.
    """
    assert user.id is not None
    token = new_token()
    spans = [d for d in (ttl, lifetime) if d is not None]
    row = ApiToken(user_id=user.id, digest=token_digest(key, token), label=label,
                   expires_at=utcnow() + min(spans) if spans else None)
    session.add(row)
    return token, row


def token_expiry(token: ApiToken, ttl: timedelta | None) -> datetime | None:
    """When ``token`` stops working: its own expiry, or sooner by the installation's TTL.

    The TTL counts from issue for tokens made before it was set too, so turning the
    setting on does end old, never-expiring tokens.
    """
    ends = [t for t in (token.expires_at, token.created_at + ttl if ttl else None)
            if t is not None]
    return min(ends) if ends else None


def csrf_token(key: bytes, token: str) -> str:
    """The value a page must echo in ``X-Sourcebook-CSRF`` when it sends the cookie.

    Derived from the session token, so it needs no storage and changes with the token. A
    cross-site form cannot set a custom header, and a cross-site fetch that sets one needs a
    CORS preflight this app never grants, so the header proves the request came from a page
    of this origin (the SameSite=Strict cookie is the second layer).
    """
    return hmac.new(key, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()[:32]


def authenticate(session: Session, *, key: bytes, token: str,
                 ttl: timedelta | None = None) -> tuple[User, ApiToken]:
    """The user and token row behind ``token``; raises :class:`TokenRefused` with why not."""
    row = session.exec(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)  # type: ignore[arg-type]
        .where(ApiToken.digest == token_digest(key, token))
    ).first()
    if row is None:
        raise TokenRefused("Invalid token: it is not one this server issued. Ask an admin "
                           "for a token (`sourcebook users create` or POST /api/v1/users).")
    api_token, user = row
    if user.disabled:
        raise TokenRefused(f"The account '{user.name}' is disabled. Ask an admin to enable "
                           "it (`sourcebook users enable NAME`).")
    if api_token.revoked:
        raise TokenRefused("This token was revoked. Ask an admin for a new one "
                           "(`sourcebook users token NAME` or POST /api/v1/users/{id}/tokens).")
    now = utcnow()
    expiry = token_expiry(api_token, ttl)
    if expiry is not None and expiry <= now:
        raise TokenRefused(f"This token expired at {expiry:%Y-%m-%d %H:%M} UTC. Sign in again "
                           "with your API token, or ask an admin for a new one "
                           "(`sourcebook users token NAME`).")
    # Only touch the row now and then: a write on every request would serialise
    # all readers on SQLite for a timestamp nobody needs to the second.
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
        api_token.last_used_at = now
        session.add(api_token)
        session.commit()
    return user, api_token


def revoke_tokens(session: Session, *, user: User) -> int:
    """Revoke every token of ``user`` (web sessions too); returns how many were live.

    The caller commits; from then on each of them gets 401 on its next request.
    """
    result = session.execute(
        sa.update(ApiToken)
        .where(col(ApiToken.user_id) == user.id, col(ApiToken.revoked).is_(False))
        .values(revoked=True)
    )
    count: int = result.rowcount  # type: ignore[attr-defined]
    return count


def start_web_session(session: Session, *, key: bytes, user: User,
                      ttl: timedelta | None) -> str:
    """A new token for one browser sign-in (the caller commits).

    The cookie carries this token, never the API token typed into the form, so signing
    out (which revokes it) leaves the user's API clients working. Sessions of this user
    that ended are deleted here, so sign-ins do not pile up rows.
    """
    now = utcnow()
    ended = [t.id for t in session.exec(
        select(ApiToken).where(ApiToken.user_id == user.id,
                               ApiToken.label == WEB_SESSION_LABEL)).all()
             if t.revoked or ((e := token_expiry(t, ttl)) is not None and e <= now)]
    if ended:
        session.execute(sa.delete(ApiToken).where(col(ApiToken.id).in_(ended)))
    return issue_token(session, key=key, user=user, label=WEB_SESSION_LABEL, ttl=ttl,
                       lifetime=WEB_SESSION_LIFETIME)


def end_web_session(session: Session, *, key: bytes, token: str) -> bool:
    """Revoke ``token`` if it is a web session's (the caller commits); True if it was.

    A cookie set before sign-ins had their own tokens holds an API token: that one is
    left alone, since signing out of a browser must not cut off the user's scripts.
    """
    row = session.exec(select(ApiToken).where(
        ApiToken.digest == token_digest(key, token))).first()
    if row is None or row.label != WEB_SESSION_LABEL or row.revoked:
        return False
    row.revoked = True
    session.add(row)
    return True


class LastAdmin(Conflict):
    """The change would leave no enabled admin, so nobody could manage users any more."""


def accounts(session: Session, *, ttl: timedelta | None,
             user_id: int | None = None) -> list[UserAccount]:
    """Users with their state, last use and number of working tokens (admin view)."""
    query = select(User).order_by(col(User.id))
    if user_id is not None:
        query = query.where(User.id == user_id)
    users = session.exec(query).all()
    tokens = session.exec(select(ApiToken).where(
        col(ApiToken.user_id).in_([u.id for u in users]))).all()
    now = utcnow()
    last: dict[int, datetime] = {}
    active: dict[int, int] = {}
    for t in tokens:
        if t.last_used_at is not None and (t.user_id not in last
                                           or t.last_used_at > last[t.user_id]):
            last[t.user_id] = t.last_used_at
        expiry = token_expiry(t, ttl)
        if not t.revoked and (expiry is None or expiry > now):
            active[t.user_id] = active.get(t.user_id, 0) + 1
    return [UserAccount(id=u.id, name=u.name, role=u.role, disabled=u.disabled,
                        created_at=u.created_at, last_used_at=last.get(u.id),
                        active_tokens=active.get(u.id, 0))
            for u in users if u.id is not None]


def update_account(session: Session, *, user: User, role: Role | None = None,
                   disabled: bool | None = None) -> list[str]:
    """Change a user's role or disabled state (the caller audits and commits).

    Returns what changed, for the audit summary. Refuses (:class:`LastAdmin`) to disable
    or demote the last enabled admin, which would lock everyone out of user management.
    """
    changes: list[str] = []
    if role is not None and role != user.role:
        changes.append(f"role {user.role.value} -> {role.value}")
    if disabled is not None and disabled != user.disabled:
        changes.append("disabled" if disabled else "enabled")
    stays_admin = (role or user.role) == Role.admin and not (
        user.disabled if disabled is None else disabled)
    if user.role == Role.admin and not user.disabled and not stays_admin:
        others = session.exec(select(sa.func.count()).select_from(User).where(
            User.role == Role.admin, col(User.disabled).is_(False), User.id != user.id)).one()
        if not others:
            raise LastAdmin(f"'{user.name}' is the last enabled admin; make another user "
                            "admin first (or use `sourcebook users` on the server).")
    if role is not None:
        user.role = role
    if disabled is not None:
        user.disabled = disabled
    session.add(user)
    return changes
