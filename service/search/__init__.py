"""Full-text search over the current transcripts, in Chinese and English.

One function, :func:`search`, serves both databases. The index is built on
``segment.search_text`` (``pipelines.text.cjk_spaced``: simplified, lower-cased, every
CJK character a token of its own), so a Chinese word of any length is a *phrase* of
single-character tokens and an English word is one token:

- SQLite (``service.search.sqlite``): FTS5 over the current segments;
- PostgreSQL (``service.search.postgres``): a partial GIN index.

A term naming a person or organisation is expanded at query time to its other names
(``service.search.aliases``: people's names and the team's glossary).

Both rank with ``query.relevance`` (occurrences damped by length) over at most
RANK_WINDOW candidates and count up to COUNT_CAP (``scope``), so no query pays for
every one of its hits. What the user typed is parsed in ``query`` and never reaches
either engine as syntax; the snippets with their marked hits are ``snippet``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from service.models.people import Person
from service.models.recordings import Recording, Speaker
from service.models.transcripts import Segment, Transcript
from service.models.users import User
from service.search.aliases import expand_query
from service.search.postgres import postgres_page, segment_filters
from service.search.query import (
    MAX_PHRASES,
    MAX_QUERY_CHARS,
    MIN_PREFIX_CHARS,
    ParsedQuery,
    Phrase,
    QueryError,
    Term,
    parse_query,
)
from service.search.scope import COUNT_CAP, RANK_WINDOW
from service.search.snippet import MARK_CLOSE, MARK_OPEN, SNIPPET_CHARS, snippet
from service.search.sqlite import meta_token, sqlite_page

__all__ = [
    "COUNT_CAP",
    "MARK_CLOSE",
    "MARK_OPEN",
    "MAX_PHRASES",
    "MAX_QUERY_CHARS",
    "MIN_PREFIX_CHARS",
    "RANK_WINDOW",
    "SNIPPET_CHARS",
    "ParsedQuery",
    "Phrase",
    "QueryError",
    "SearchHit",
    "SearchResults",
    "Term",
    "meta_token",
    "parse_query",
    "search",
    "search_results",
    "snippet",
]


class SearchHit(SQLModel):
    segment_id: int
    recording_id: int
    recording_title: str
    transcript_version: int
    start: float
    end: float
    speaker: str
    person_id: int | None
    name: str | None
    text: str
    language: str
    snippet: str


@dataclass(frozen=True)
class SearchResults:
    """One page of hits and what the count and order mean."""

    hits: list[SearchHit]
    count: int
    #: False when more than COUNT_CAP segments match: ``count`` is then COUNT_CAP.
    count_exact: bool = True
    #: Set when only the newest N matches were ranked by relevance (see RANK_WINDOW).
    ranked_within: int | None = None
    #: The query's terms that named a person or glossary term, with their other names.
    expanded: tuple[Term, ...] = ()


_COLUMNS = (
    col(Segment.id), col(Segment.recording_id), col(Segment.transcript_id),
    col(Segment.start), col(Segment.end), col(Segment.speaker), col(Segment.text),
    col(Segment.language),
)


def search(session: Session, **kwargs: Any) -> tuple[list[SearchHit], int]:
    """:func:`search_results` as (hits, count)."""
    found = search_results(session, **kwargs)
    return found.hits, found.count


def search_results(
    session: Session,
    *,
    user: User,
    q: str,
    person_id: int | None = None,
    recording_id: int | None = None,
    language: str | None = None,
    limit: int = 20,
    offset: int = 0,
    aliases: bool = True,
) -> SearchResults:
    """One page of the best-matching segments ``user`` may read, and how many match.

    With ``aliases``, a term that names a person or a glossary term also finds its
    other names, and a person's name their speech (``service.search.aliases``).
    Raises :class:`QueryError` for a query that cannot be searched.
    """
    parsed = parse_query(q)
    if aliases:
        parsed = expand_query(session, parsed)
    expanded = tuple(t for t in parsed.terms if t.expanded)
    if session.get_bind().dialect.name == "sqlite":
        ids, count, exact, window = sqlite_page(
            session, parsed, user, person_id=person_id, recording_id=recording_id,
            language=language, limit=limit, offset=offset)
    else:
        conds = segment_filters(session, user, person_id=person_id,
                                          recording_id=recording_id, language=language)
        ids, count, exact, window = postgres_page(session, parsed, conds, limit=limit,
                                                   offset=offset)
    if not ids:
        return SearchResults([], count, exact, window, expanded)
    by_id = {r.id: r for r in session.connection().execute(
        sa.select(*_COLUMNS).where(col(Segment.id).in_(ids))).all()}
    rows = [by_id[i] for i in ids if i in by_id]
    names = _speaker_names(session, {r.recording_id for r in rows})
    about = {
        t_id: (version, title) for t_id, version, title in session.connection().execute(
            sa.select(col(Transcript.id), col(Transcript.version), col(Recording.title))
            .join(Recording, col(Recording.id) == col(Transcript.recording_id))
            .where(col(Transcript.id).in_({r.transcript_id for r in rows}))
        ).all()
    }
    hits = []
    for r in rows:
        person, name = names.get((r.recording_id, r.speaker), (None, None))
        version, title = about[r.transcript_id]
        hits.append(SearchHit(
            segment_id=r.id, recording_id=r.recording_id, recording_title=title,
            transcript_version=version, start=r.start, end=r.end, speaker=r.speaker,
            person_id=person, name=name, text=r.text, language=r.language,
            snippet=snippet(r.text, parsed),
        ))
    return SearchResults(hits, count, exact, window, expanded)


def _speaker_names(session: Session, recording_ids: set[int],
                   ) -> dict[tuple[int, str], tuple[int | None, str | None]]:
    """(recording, label) -> (person_id, name), read now so that remapping shows at once."""
    if not recording_ids:
        return {}
    rows = session.connection().execute(
        select(Speaker.recording_id, Speaker.label, Speaker.person_id, Person.name)
        .join(Person, col(Person.id) == col(Speaker.person_id), isouter=True)
        .where(col(Speaker.recording_id).in_(recording_ids))
    ).all()
    return {(rec, label): (pid, name) for rec, label, pid, name in rows}


