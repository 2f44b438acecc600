"""/api/v1/me and /api/v1/users: who am I, and user management (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from service import auth
from service.api.deps import Admin, AnyUser, SessionDep
from service.crud import audit
from service.errors import not_found
from service.models.base import Page
from service.models.users import (
    TokenCreate,
    TokenIssued,
    TokensRevoked,
    User,
    UserAccount,
    UserCreate,
    UserCreated,
    UserPublic,
    UserUpdate,
)

router = APIRouter(tags=["users"])


@router.get("/me", response_model=UserPublic)
def read_me(user: AnyUser) -> User:
    """The caller's id, name and role."""
    return user


def _user(session: SessionDep, user_id: int) -> User:
    found = session.get(User, user_id)
    if found is None:
        raise not_found("user", user_id)
    return found


def _account(request: Request, session: SessionDep, user_id: int) -> UserAccount:
    return auth.accounts(session, ttl=request.app.state.settings.token_ttl, user_id=user_id)[0]


@router.get("/users", response_model=Page[UserAccount])
def list_users(request: Request, session: SessionDep, user: Admin) -> Page[UserAccount]:
    """List users with their role, whether they are disabled, and their last use."""
    rows = auth.accounts(session, ttl=request.app.state.settings.token_ttl)
    return Page(data=rows, count=len(rows))


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserCreated)
def create_user(
    data: UserCreate, request: Request, session: SessionDep, user: Admin
) -> UserCreated:
    """Create a user; the token is in this response only."""
    new, token = auth.create_user(
        session, key=request.app.state.token_key, name=data.name, role=data.role,
        ttl=request.app.state.settings.token_ttl,
    )
    audit.record(session, actor=user, action="create", object_type="user", object_id=new.id,
                 summary=f"role {new.role.value}")
    session.commit()
    assert new.id is not None
    return UserCreated(id=new.id, name=new.name, role=new.role, token=token)


@router.get("/users/{user_id}", response_model=UserAccount)
def read_user(user_id: int, request: Request, session: SessionDep, user: Admin) -> UserAccount:
    """One user, with state and last use."""
    _user(session, user_id)
    return _account(request, session, user_id)


@router.patch("/users/{user_id}", response_model=UserAccount)
def update_user(user_id: int, data: UserUpdate, request: Request, session: SessionDep,
                user: Admin) -> UserAccount:
    """Change a user's role, or disable (enable) the account: a disabled user's tokens
    give 401 until it is enabled again."""
    target = _user(session, user_id)
    changes = auth.update_account(session, user=target, role=data.role,
                                  disabled=data.disabled)
    if changes:
        audit.record(session, actor=user, action="update", object_type="user",
                     object_id=user_id, summary="; ".join(changes))
    session.commit()
    return _account(request, session, user_id)


@router.post("/users/{user_id}/revoke", response_model=TokensRevoked)
def revoke_user_tokens(user_id: int, session: SessionDep, user: Admin) -> TokensRevoked:
    """End every token of a user (API tokens and web sign-ins): each gets 401 from its
    next request. Issue a new one with POST /users/{id}/tokens."""
    target = _user(session, user_id)
    count = auth.revoke_tokens(session, user=target)
    audit.record(session, actor=user, action="revoke", object_type="user", object_id=user_id,
                 summary=f"{count} token(s) revoked")
    session.commit()
    assert target.id is not None
    return TokensRevoked(user_id=target.id, name=target.name, revoked=count)


@router.post("/users/{user_id}/tokens", status_code=status.HTTP_201_CREATED,
             response_model=TokenIssued)
def issue_user_token(user_id: int, request: Request, session: SessionDep, user: Admin,
                     data: TokenCreate | None = None) -> TokenIssued:
    """Issue a new token for a user; it is in this response only."""
    target = _user(session, user_id)
    label = (data.label if data else "").strip() or "admin"
    if label == auth.WEB_SESSION_LABEL:
        # Signing out revokes tokens with this label; an API token must never carry it.
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"The label '{label}' is reserved for web sign-ins; pick another.")
    token, row = auth.issue(session, key=request.app.state.token_key, user=target,
                            label=label, ttl=request.app.state.settings.token_ttl)
    audit.record(session, actor=user, action="token", object_type="user", object_id=user_id,
                 summary=f"token issued ({label})")
    session.commit()
    assert target.id is not None
    return TokenIssued(user_id=target.id, name=target.name, role=target.role, label=label,
                       token=token, expires_at=row.expires_at)
