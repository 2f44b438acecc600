"""Search, quotes and chapters, and the editors' consent and clearance page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, col, select

from service import search as engine
from service.access import get_recording, recording_filter
from service.api.deps import AnyUser, Author, Editor, Offset, SessionDep
from service.clearance import facts
from service.crud import chapters as chapter_crud
from service.crud import consent as consent_crud
from service.crud import people as people_crud
from service.crud import quotes as quote_crud
from service.crud import recordings as rec_crud
from service.errors import NotFound, not_found
from service.models.chapters import ChapterNode
from service.models.consent import (
    Attribution,
    ConsentAgreement,
    ConsentForm,
    ConsentPublic,
    ConsentStatus,
    RestrictionLevel,
    RestrictionPublic,
)
from service.models.glossary import ExpandedTerm
from service.models.people import Person
from service.models.quotes import ChapterQuote, Quote, Usage
from service.models.recordings import Recording
from service.models.users import User
from service.search.aliases import describe
from service.web import hints
from service.web.common import PageRoute, render, templates

router = APIRouter(route_class=PageRoute, include_in_schema=False)
#: Chapters are named on every page as the API names them ("第七章 技术豪赌").
templates.env.filters["chapter_label"] = chapter_crud.chapter_label

RESULTS_PER_PAGE = 20

#: A select left at "Anyone" sends an empty value; the API's int filters would 422 on it.
OptionalId = Annotated[str | None, Query(max_length=20, pattern=r"^\d*$")]


def _id(value: str | None) -> int | None:
    return int(value) if value else None
#: Quotes per page: crud.quotes.to_public costs about 3.5 ms a quote (drift check,
#: citation, links), so a page of 20 keeps the page well under 300 ms.
QUOTES_SHOWN = 20


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, session: SessionDep, user: AnyUser,
                q: str = Query("", max_length=1000),
                person: OptionalId = None, recording: OptionalId = None,
                language: str | None = Query(None, max_length=16),
                offset: Offset = 0) -> HTMLResponse:
    """One box and filters; each hit links to its moment in the transcript."""
    person_id, recording_id = _id(person), _id(recording)
    # An empty filter field arrives as "": treat it as no filter, like the API's absence.
    language = language or None
    if recording_id is not None:
        get_recording(session, user, recording_id)
    if person_id is not None and session.get(Person, person_id) is None:
        raise not_found("person", person_id)
    hits: list[engine.SearchHit] = []
    count, error = 0, None
    expanded: list[ExpandedTerm] = []
    if q.strip():
        try:
            found = engine.search_results(
                session, user=user, q=q, person_id=person_id, recording_id=recording_id,
                language=language, limit=RESULTS_PER_PAGE, offset=offset)
            hits, count = found.hits, found.count
            expanded = describe(session, found.expanded)
        except engine.QueryError as exc:
            error = str(exc)
    people = people_crud.list_people(session, limit=1000)[0]
    recordings = session.exec(
        select(Recording.id, Recording.title).where(recording_filter(user))
        .order_by(col(Recording.id).desc()).limit(1000)).all()
    return render(request, user, "search.html", {
        "q": q, "hits": hits, "count": count, "error": error, "offset": offset,
        "page_size": RESULTS_PER_PAGE, "person_id": person_id, "recording_id": recording_id,
        "language": language or "", "people": people, "recordings": recordings,
        "open": engine.MARK_OPEN, "close": engine.MARK_CLOSE, "expanded": expanded,
        "hints": hints.no_results(q, person_id=person_id, recording_id=recording_id,
                                  language=language)
        if q.strip() and not count and error is None else [],
    })


def _flatten(nodes: list[ChapterNode], depth: int = 0) -> list[tuple[int, ChapterNode]]:
    out: list[tuple[int, ChapterNode]] = []
    for node in nodes:
        out.append((depth, node))
        out.extend(_flatten(node.children, depth + 1))
    return out


@router.get("/chapters", response_class=HTMLResponse)
def chapters_page(request: Request, session: SessionDep, user: Author,
                  offset: Offset = 0) -> HTMLResponse:
    """The chapter tree with each chapter's quotes, the quote list, and draft checking."""
    tree = chapter_crud.tree(session, user=user)
    rows, quote_count = quote_crud.list_quotes(session, user=user, limit=QUOTES_SHOWN,
                                               offset=offset)
    quotes = [quote_crud.to_public(session, q, user=user) for q in rows]
    return render(request, user, "chapters.html", {
        "nodes": _flatten(tree.data), "quotes": quotes, "quote_count": quote_count,
        "by_chapter": _linked_quotes(session, user), "usages": list(Usage), "offset": offset,
        "page_size": QUOTES_SHOWN,
    })


@dataclass(frozen=True)
class LinkedQuote:
    """What the chapter tree shows of a linked quote (the quote list has the rest)."""

    recording_id: int | None
    start: float
    verbatim: str
    edited: str | None
    speaker: str
    person_name: str | None


def _linked_quotes(session: Session, user: User,
                   ) -> dict[int, list[tuple[LinkedQuote, Usage]]]:
    """Every chapter's linked quotes the caller may see, in one query.

    Not from the paged quote list: a chapter must show all its quotes whichever page of
    the list is open. Text under a span hidden from the caller is withheld as in the API.
    """
    rows = session.exec(
        select(ChapterQuote.chapter_id, ChapterQuote.usage, Quote, Person.name)
        .join(Quote, col(Quote.id) == col(ChapterQuote.quote_id))
        .outerjoin(Recording, col(Recording.id) == col(Quote.recording_id))
        .outerjoin(Person, col(Person.id) == col(Quote.person_id))
        .where(col(Quote.recording_id).is_(None) | recording_filter(user))
        .order_by(col(ChapterQuote.chapter_id), col(Quote.id))
    ).all()
    withheld = quote_crud.withheld_ids(session, [quote for _, _, quote, _ in rows], user)
    out: dict[int, list[tuple[LinkedQuote, Usage]]] = {}
    for chapter_id, usage, quote, name in rows:
        verbatim, edited, _ = quote_crud.shown_text(quote, hidden=quote.id in withheld)
        out.setdefault(chapter_id, []).append((LinkedQuote(
            recording_id=quote.recording_id, start=quote.start, verbatim=verbatim,
            edited=edited, speaker=quote.speaker, person_name=name), Usage(usage)))
    return out


def _quote_texts(session: Session, user: User, quote_ids: set[int]) -> dict[int, str]:
    """Each quote's text as ``user`` may read it (its edited text, else its verbatim),
    ``[restricted]`` where the one rule of service.visibility withholds it."""
    if not quote_ids:
        return {}
    quotes = session.exec(select(Quote).where(col(Quote.id).in_(quote_ids))).all()
    withheld = quote_crud.withheld_ids(session, quotes, user)
    out: dict[int, str] = {}
    for q in quotes:
        assert q.id is not None
        verbatim, edited, _ = quote_crud.shown_text(q, hidden=q.id in withheld)
        out[q.id] = edited or verbatim
    return out


@router.get("/consent", response_class=HTMLResponse)
def consent_page(request: Request, session: SessionDep, user: Editor,
                 recording: OptionalId = None,
                 chapter: OptionalId = None,
                 as_of: date | None = Query(None),
                 impact: int | None = Query(None, description="An agreement's withdrawal "
                                                              "impact")) -> HTMLResponse:
    """Agreements and restrictions per recording, clearance per chapter, withdrawal impact."""
    recording_id, chapter_id = _id(recording), _id(chapter)
    recordings = session.exec(select(Recording.id, Recording.title)
                              .order_by(col(Recording.id).desc()).limit(1000)).all()
    shown = None
    agreements: list[ConsentPublic] = []
    restrictions: list[RestrictionPublic] = []
    if recording_id is not None:
        shown = rec_crud.to_public(session, get_recording(session, user, recording_id))
        person_ids = {p.person_id for p in shown.participants} | {
            s.person_id for s in shown.speakers if s.person_id is not None}
        rows = session.exec(select(ConsentAgreement).where(
            col(ConsentAgreement.person_id).in_(person_ids)
            | (ConsentAgreement.recording_id == recording_id)
        ).order_by(col(ConsentAgreement.id))).all()
        # Agreements for other recordings of the same people do not apply here.
        agreements = [consent_crud.to_public(session, a) for a in rows
                      if a.recording_id in (None, recording_id)]
        restrictions = [consent_crud.restriction_public(r, shown.title) for r in
                        consent_crud.list_restrictions(session, recording_id=recording_id)]
    day = as_of or date.today()
    try:
        report = facts.clearance_view(session, as_of=day, chapter_id=chapter_id)
    except NotFound as exc:
        raise not_found("chapter", chapter_id or 0) from exc
    impact_rows = None
    impact_agreement = None
    if impact is not None:
        agreement = session.get(ConsentAgreement, impact)
        if agreement is None:
            raise not_found("consent agreement", impact)
        impact_agreement = consent_crud.to_public(session, agreement)
        impact_rows = consent_crud.withdrawal_impact(session, agreement=agreement, as_of=day)
    tree = chapter_crud.tree(session, user=user)
    people = people_crud.list_people(session, limit=1000)[0]
    # The recording's own people head the person menu: an agreement recorded here is
    # almost always one of theirs.
    taking_part = ({p.person_id for p in shown.participants}
                   | {s.person_id for s in shown.speakers if s.person_id is not None}
                   if shown is not None else set())
    return render(request, user, "consent.html", {
        "recordings": recordings, "recording": shown, "recording_id": recording_id,
        "agreements": agreements, "restrictions": restrictions, "report": report,
        "chapter_id": chapter_id, "as_of": day, "nodes": _flatten(tree.data),
        "impact_rows": impact_rows, "impact_agreement": impact_agreement,
        "people_here": [p for p in people if p.id in taking_part],
        "people_elsewhere": [p for p in people if p.id not in taking_part],
        "quote_texts": _quote_texts(session, user, {row.quote_id for row in
                                                     [*report.data, *(impact_rows or [])]}),
        "statuses": [s for s in ConsentStatus if s != ConsentStatus.withdrawn],
        "forms": list(ConsentForm), "attributions": list(Attribution),
        "levels": list(RestrictionLevel),
    })
