"""/api/v1/glossary: terms and their aliases, which search expands names to."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from service import search as engine
from service.api.deps import AnyUser, Limit, Offset, SessionDep, Staff
from service.crud import glossary as crud
from service.errors import not_found
from service.models.base import Page
from service.models.glossary import (
    ExpandedTerm,
    GlossaryCreate,
    GlossaryPublic,
    GlossaryTerm,
    GlossaryUpdate,
)
from service.search.aliases import describe, expand_query

router = APIRouter(prefix="/glossary", tags=["glossary"])


class Expansion(BaseModel):
    """What a query's terms stand for in search now."""

    q: str
    expanded: list[ExpandedTerm]


def _get(session: SessionDep, term_id: int) -> GlossaryTerm:
    term = session.get(GlossaryTerm, term_id)
    if term is None:
        raise not_found("glossary term", term_id)
    return term


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GlossaryPublic)
def create_term(data: GlossaryCreate, session: SessionDep, user: Staff) -> GlossaryPublic:
    """Add a term (a person, an organisation, a product) with its other names.

    Search finds any of the names from the next query on; nothing is reindexed.
    People's names and `alt_names` are searched by already: add a term for what they do
    not hold (闫总, an organisation's Chinese and English names, its products).
    """
    return crud.to_public(crud.create_term(session, data=data, actor=user))


@router.get("", response_model=Page[GlossaryPublic])
def list_terms(session: SessionDep, user: AnyUser, limit: Limit = 100, offset: Offset = 0,
               q: str | None = Query(None, max_length=100, description="Filter on the term"),
               ) -> Page[GlossaryPublic]:
    """List the glossary, by term."""
    rows, count = crud.list_terms(session, q=q, limit=limit, offset=offset)
    return Page(data=[crud.to_public(t) for t in rows], count=count)


@router.get("/expand", response_model=Expansion)
def expand(session: SessionDep, user: AnyUser,
           q: str = Query(description="A search query")) -> Expansion:
    """What search would look for: each term naming something known, with its other names
    (glossary, people's names and their pinyin) and the people whose speech it matches."""
    parsed = expand_query(session, engine.parse_query(q))
    return Expansion(q=q, expanded=describe(session, [t for t in parsed.terms if t.expanded]))


@router.get("/{term_id}", response_model=GlossaryPublic)
def read_term(term_id: int, session: SessionDep, user: AnyUser) -> GlossaryPublic:
    """Read one term."""
    return crud.to_public(_get(session, term_id))


@router.patch("/{term_id}", response_model=GlossaryPublic)
def update_term(term_id: int, data: GlossaryUpdate, session: SessionDep,
                user: Staff) -> GlossaryPublic:
    """Change a term or its aliases; search uses the change from the next query on."""
    term = _get(session, term_id)
    return crud.to_public(crud.update_term(session, term=term, data=data, actor=user))


@router.delete("/{term_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_term(term_id: int, session: SessionDep, user: Staff) -> Response:
    """Delete a term."""
    crud.delete_term(session, term=_get(session, term_id), actor=user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
