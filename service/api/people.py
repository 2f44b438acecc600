"""/api/v1/people: the people interviews are with and about."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from service.api.deps import AnyUser, Limit, Offset, Researcher, SessionDep
from service.crud import people as crud
from service.errors import not_found
from service.models.base import Page
from service.models.people import Person, PersonCreate, PersonPublic, PersonUpdate

router = APIRouter(prefix="/people", tags=["people"])


def _get(session: SessionDep, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise not_found("person", person_id)
    return person


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PersonPublic)
def create_person(data: PersonCreate, session: SessionDep, user: Researcher) -> PersonPublic:
    """Create a person."""
    return PersonPublic.of(crud.create_person(session, data=data, actor=user))


@router.get("", response_model=Page[PersonPublic])
def list_people(
    session: SessionDep,
    user: AnyUser,
    limit: Limit = 100,
    offset: Offset = 0,
    q: str | None = Query(None, max_length=200, description="Filter on name or organisation"),
) -> Page[PersonPublic]:
    """List people."""
    rows, count = crud.list_people(session, q=q, limit=limit, offset=offset)
    return Page(data=[PersonPublic.of(p) for p in rows], count=count)


@router.get("/{person_id}", response_model=PersonPublic)
def read_person(person_id: int, session: SessionDep, user: AnyUser) -> PersonPublic:
    """Read one person."""
    return PersonPublic.of(_get(session, person_id))


@router.patch("/{person_id}", response_model=PersonPublic)
def update_person(
    person_id: int, data: PersonUpdate, session: SessionDep, user: Researcher
) -> PersonPublic:
    """Change a person's fields."""
    person = _get(session, person_id)
    return PersonPublic.of(crud.update_person(session, person=person, data=data, actor=user))


@router.delete("/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_person(person_id: int, session: SessionDep, user: Researcher) -> Response:
    """Delete a person (their speaker labels become unnamed)."""
    crud.delete_person(session, person=_get(session, person_id), actor=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
