"""/api/v1/quotes: frozen spans of transcripts, their drift and their citations."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Response, status

from service.api.deps import Author, Limit, Offset
from service.crud import quotes as crud
from service.db import SessionDep
from service.models.base import Page
from service.models.quotes import CitationPublic, QuoteCreate, QuotePublic, QuoteUpdate

router = APIRouter(prefix="/quotes", tags=["quotes"])


def _http(exc: crud.QuoteProblem) -> HTTPException:
    return HTTPException(exc.status_code, exc.detail)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=QuotePublic,
             responses={403: {"description": "The span is restricted for your role."},
                        404: {"description": "No such (visible) recording or segment."},
                        409: {"description": "No transcript, or segments of an old version."},
                        422: {"description": "Bad span, or a speaker change."}})
def create_quote(data: QuoteCreate, session: SessionDep, user: Author) -> QuotePublic:
    """Freeze a quote from a time span or from adjacent segments of the current transcript."""
    try:
        quote = crud.create_quote(session, data=data, actor=user)
    except crud.QuoteProblem as exc:
        raise _http(exc) from None
    public = crud.to_public(session, quote, user=user)
    public.whole_segments = crud.whole_segment_reason(session, quote)
    return public


@router.get("", response_model=Page[QuotePublic])
def list_quotes(
    session: SessionDep,
    user: Author,
    limit: Limit = 100,
    offset: Offset = 0,
    person_id: int | None = Query(None, description="Quotes of this person"),
    recording_id: int | None = Query(None, description="Quotes from this recording"),
    chapter_id: int | None = Query(None, description="Quotes linked to this chapter or below"),
) -> Page[QuotePublic]:
    """List the quotes the caller may see."""
    rows, count = crud.list_quotes(session, user=user, person_id=person_id,
                                   recording_id=recording_id, chapter_id=chapter_id,
                                   limit=limit, offset=offset)
    return Page(data=[crud.to_public(session, q, user=user) for q in rows], count=count)


@router.get("/{quote_id}", response_model=QuotePublic)
def read_quote(quote_id: int, session: SessionDep, user: Author) -> QuotePublic:
    """Read a quote, with whether the current transcript still says the same (drift)."""
    try:
        return crud.to_public(session, crud.get_quote(session, user=user, quote_id=quote_id),
                              user=user)
    except crud.QuoteProblem as exc:
        raise _http(exc) from None


@router.patch("/{quote_id}", response_model=QuotePublic)
def update_quote(quote_id: int, data: QuoteUpdate, session: SessionDep,
                 user: Author) -> QuotePublic:
    """Set the edited text, the translation or the translator (each change audited)."""
    try:
        quote = crud.get_editable_quote(session, user=user, quote_id=quote_id)
        crud.update_quote(session, quote=quote, data=data, actor=user)
    except crud.QuoteProblem as exc:
        raise _http(exc) from None
    return crud.to_public(session, quote, user=user)


@router.delete("/{quote_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_quote(quote_id: int, session: SessionDep, user: Author) -> Response:
    """Delete a quote and its chapter links."""
    try:
        crud.delete_quote(session, actor=user,
                          quote=crud.get_editable_quote(session, user=user, quote_id=quote_id))
    except crud.QuoteProblem as exc:
        raise _http(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{quote_id}/citation", response_model=CitationPublic)
def read_citation(
    quote_id: int,
    session: SessionDep,
    user: Author,
    style: Literal["chicago", "short"] = Query("chicago", description="chicago or short"),
) -> CitationPublic:
    """Cite a quote: person, interviewer(s), place, date, recording and timestamp."""
    try:
        quote = crud.get_quote(session, user=user, quote_id=quote_id)
        return CitationPublic(citation=crud.citation(session, quote=quote, style=style,
                                                     actor=user), style=style)
    except crud.QuoteProblem as exc:
        raise _http(exc) from None
