"""/api/v1/me and /api/v1/users: who am I, and user management (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlmodel import col, select

from service import auth
from service.api.deps import Admin, AnyUser
from service.crud import audit
from service.db import SessionDep
from service.models.base import Page
from service.models.users import User, UserCreate, UserCreated, UserPublic

router = APIRouter(tags=["users"])


@router.get("/me", response_model=UserPublic)
def read_me(user: AnyUser) -> User:
    """The caller's id, name and role."""
    return user


@router.get("/users", response_model=Page[UserPublic])
def list_users(session: SessionDep, user: Admin) -> Page[UserPublic]:
    """List users."""
    rows = session.exec(select(User).order_by(col(User.id))).all()
    return Page(data=[UserPublic.model_validate(u) for u in rows], count=len(rows))


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserCreated)
def create_user(
    data: UserCreate, request: Request, session: SessionDep, user: Admin
) -> UserCreated:
    """Create a user; the token is in this response only."""
    try:
        new, token = auth.create_user(
            session, key=request.app.state.token_key, name=data.name, role=data.role
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    audit.record(session, actor=user, action="create", object_type="user", object_id=new.id,
                 summary=f"role {new.role.value}")
    session.commit()
    assert new.id is not None
    return UserCreated(id=new.id, name=new.name, role=new.role, token=token)
