"""/api/v1/search: full-text search over the current transcripts."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import Field

from service import search as engine
from service.access import get_recording
from service.api.deps import AnyUser, Limit, Offset, SessionDep
from service.errors import not_found
from service.models.base import Page
from service.models.glossary import ExpandedTerm
from service.models.people import Person
from service.search.aliases import describe

router = APIRouter(tags=["search"])


class SearchPage(Page[engine.SearchHit]):
    count_exact: bool = Field(
        True, description=f"False when more than {engine.COUNT_CAP} segments match: "
        f"`count` is then {engine.COUNT_CAP}, a lower bound. Narrow the query or add filters.")
    ranked_within: int | None = Field(
        None, description="Set when the query matched so many segments that relevance was "
        "computed over the newest N matches only (the rest follow, newest first); null when "
        "every match was ranked.")
    expanded: list[ExpandedTerm] = Field(
        default_factory=list, description="Terms of the query that name a person or a "
        "glossary term, and the other names (and people's speech) searched for them.")

DESCRIPTION = f"""
Searches the **current** transcript version of every recording the caller may see.

**Query (`q`)**: Chinese of any length (`闫`, `模型`, `数据飞轮`), English words and
phrases, and both mixed. Whitespace separates terms and every term must occur (AND):
`MoE 架构` finds segments with both. Quote a phrase to keep its words together:
`"deep research"`. Chinese needs no quotes; its characters are always matched in order.
An English word ending in `*` is a prefix (`transform*`, at least {engine.MIN_PREFIX_CHARS}
letters). Traditional script matches simplified (`閆俊傑` finds `闫俊杰`); case,
full-width letters and punctuation are ignored. Words such as AND, OR, NOT and NEAR
are searched for as words, not operators.

**Names**: a term that is a name of a person or of a glossary term (`GET /glossary`)
also finds its other names, and a person's name also finds what that person said:
`Yan Junjie`, `yanjunjie`, `閆俊傑` and `闫总` all find `闫俊杰`. Chinese names of people
match their pinyin without tones. Segments with what was typed rank first, then those
with another name, then the person's speech without the name; `expanded` lists what
each term stood for. `aliases=false` searches only what was typed.

An empty query, or one of only punctuation, gives 422; so does one longer than
{engine.MAX_QUERY_CHARS} characters or with more than
{engine.MAX_PHRASES} terms.

**Results** are ranked by relevance, the same way on both databases: each term's
occurrences in the segment, damped by the segment's length (bm25's shape without its
term weights): more hits in a shorter segment rank higher. A query
matching more than {engine.RANK_WINDOW} segments is ranked over its newest
{engine.RANK_WINDOW} matches, then the rest newest first (`ranked_within` says so);
`count` stops at {engine.COUNT_CAP} (`count_exact` false).
`speaker` is the diarization label; `person_id` and
`name` come from the recording's speaker map as it is now. `snippet` is plain text, about
{engine.SNIPPET_CHARS} characters of the segment's original text around the first hit,
with every hit marked `{engine.MARK_OPEN}like this{engine.MARK_CLOSE}` and `…` where text
was cut. For authors, segments in off-the-record and deep-background spans are left out
of both the results and `count`.
"""


@router.get("/search", response_model=SearchPage, description=DESCRIPTION)
def search_segments(
    session: SessionDep,
    user: AnyUser,
    q: str = Query(description="Words or phrases to find; see above."),
    person_id: int | None = Query(None, description="Only what this person said"),
    recording_id: int | None = Query(None, description="Only this recording"),
    language: str | None = Query(
        None, max_length=16, description="Only segments in this language (zh, en, …)"
    ),
    aliases: bool = Query(
        True, description="Expand names of people and glossary terms to their other names"),
    limit: Limit = 20,
    offset: Offset = 0,
) -> SearchPage:
    """Find segments by words or phrases, ranked by relevance."""
    if recording_id is not None:
        get_recording(session, user, recording_id)
    if person_id is not None and session.get(Person, person_id) is None:
        raise not_found("person", person_id)
    found = engine.search_results(
        session, user=user, q=q, person_id=person_id, recording_id=recording_id,
        language=language, limit=limit, offset=offset, aliases=aliases,
    )
    return SearchPage(data=found.hits, count=found.count, count_exact=found.count_exact,
                      ranked_within=found.ranked_within,
                      expanded=describe(session, found.expanded))
