"""Full-text search over the current transcripts, in Chinese and English.

One function, :func:`search`, serves both databases. The index is built on
``segment.search_text`` (``pipelines.text.cjk_spaced``: simplified, lower-cased, every
CJK character a token of its own), so a Chinese word of any length is a *phrase* of
single-character tokens and an English word is one token:

- SQLite: the external-content FTS5 table ``segment_fts`` (``unicode61``) over the
  current segments, with filter tokens (migration 0005);
- PostgreSQL: ``to_tsvector('simple', search_text)`` under a partial GIN index.

Both rank with :func:`_score` (occurrences damped by length) over at most RANK_WINDOW
candidates and count up to COUNT_CAP, so no query pays for every one of its hits.

The user's query never reaches either engine as syntax. :func:`parse_query` reduces it
to a list of phrases of plain alphanumeric tokens (each ANDed with the others) and
each engine's query text is generated from that list, so quotes, ``*``, ``NEAR``,
``OR``, ``-``, parentheses and colons are only ever words or separators.

Snippets are cut from the segment's original text (traditional script, capitals and
punctuation as spoken) with the hits marked «like this»; positions are mapped back
from the folded tokens, character by character.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, SQLModel, col, select

from pipelines.text import cjk_spaced, is_cjk, to_simplified
from service.access import recording_filter
from service.models.people import Person
from service.models.recordings import Recording, Speaker
from service.models.transcripts import Segment, Transcript
from service.models.users import User
from service.visibility import is_redacted_for, withheld_current_segments

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
    "meta_token",
    "parse_query",
    "search",
    "search_results",
    "snippet",
]

MAX_QUERY_CHARS = 500
MAX_PHRASES = 16
#: ``a*`` would make either engine merge the posting lists of every word starting with a.
MIN_PREFIX_CHARS = 2
SNIPPET_CHARS = 80
#: How much text comes before the first hit in a snippet cut from a long segment.
SNIPPET_LEAD = 20
MARK_OPEN = "«"
MARK_CLOSE = "»"
ELLIPSIS = "…"


class QueryError(ValueError):
    """The search query cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Phrase:
    """Tokens that must occur next to each other; with ``prefix``, the last one may go on."""

    tokens: tuple[str, ...]
    prefix: bool = False

    def fts5(self) -> str:
        # Tokens are alphanumeric by construction; doubling quotes is belt and braces.
        body = " ".join(self.tokens).replace('"', '""')
        return f'"{body}"' + (" *" if self.prefix else "")

    def tsquery(self) -> str:
        parts = [f"'{t}'" for t in (tok.replace("'", "''") for tok in self.tokens)]
        if self.prefix:
            parts[-1] += ":*"
        return "(" + " <-> ".join(parts) + ")"


@dataclass(frozen=True)
class ParsedQuery:
    """A user query as phrases that must all occur in a segment."""

    phrases: tuple[Phrase, ...]

    def fts5(self) -> str:
        """FTS5 MATCH text: phrases side by side, which FTS5 reads as AND."""
        return " ".join(p.fts5() for p in self.phrases)

    def tsquery(self) -> str:
        """``to_tsquery`` text: phrases (``<->``) joined with ``&``."""
        return " & ".join(p.tsquery() for p in self.phrases)


# A quoted phrase ("…", “…” or 「…」, optionally followed by * for a prefix) or a run of
# anything else up to whitespace. An unmatched quote falls through to the second
# branch and is dropped as punctuation by cjk_spaced.
_TERM = re.compile(
    r'"(?P<q1>[^"]*)"(?P<s1>\*)?|“(?P<q2>[^”]*)”(?P<s2>\*)?|「(?P<q3>[^」]*)」(?P<s3>\*)?'
    r"|(?P<bare>\S+)"
)


def parse_query(q: str) -> ParsedQuery:
    """Turn what a user typed into phrases, or raise :class:`QueryError`.

    Whitespace separates terms and every term is a phrase (``MoE 架构`` is
    ``"moe" AND "架 构"``); a quoted part is one phrase; a trailing ``*`` on an English
    word asks for a prefix. Everything is folded the way the index is (simplified
    script, lower case, punctuation dropped), and words such as AND, OR, NOT or NEAR
    are searched for as words.
    """
    text = q.strip()
    if not text:
        raise QueryError("The search query is empty. Give a word or phrase in q, e.g. q=闫俊杰.")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"The search query is {len(text)} characters long; the limit is "
            f"{MAX_QUERY_CHARS}. Search for a shorter phrase."
        )
    phrases: list[Phrase] = []
    for m in _TERM.finditer(text):
        quoted = next((m[g] for g in ("q1", "q2", "q3") if m[g] is not None), None)
        raw = quoted if quoted is not None else m["bare"]
        starred = any(m[g] for g in ("s1", "s2", "s3")) or raw.rstrip().endswith("*")
        tokens = tuple(cjk_spaced(raw).split())
        if not tokens:
            continue
        prefix = starred and not is_cjk(tokens[-1])
        if prefix and len(tokens[-1]) < MIN_PREFIX_CHARS:
            raise QueryError(
                f"The prefix {tokens[-1]!r}* is too short: give at least {MIN_PREFIX_CHARS} "
                "letters before '*'."
            )
        phrase = Phrase(tokens, prefix)
        if phrase not in phrases:
            phrases.append(phrase)
    if not phrases:
        raise QueryError(
            "The search query has no letters, digits or Chinese characters to search for "
            "(punctuation and operators alone match nothing). Give a word or phrase."
        )
    if len(phrases) > MAX_PHRASES:
        raise QueryError(
            f"The search query has {len(phrases)} separate terms; the limit is {MAX_PHRASES}. "
            'Put words that belong together in quotes, e.g. "deep research".'
        )
    return ParsedQuery(tuple(phrases))


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


#: Counting stops here: past it the count is a lower bound (``count_exact`` false). An
#: exact count of a word in half the archive costs a pass over half a million postings.
COUNT_CAP = 10_000
#: When more segments match than this, relevance is computed over the newest
#: RANK_WINDOW matches and the rest follow newest first: scoring reads each candidate's
#: row, ~5 us a hit, so ranking 200 000 hits would take a second.
RANK_WINDOW = 2_000


@dataclass(frozen=True)
class SearchResults:
    """One page of hits and what the count and order mean."""

    hits: list[SearchHit]
    count: int
    #: False when more than COUNT_CAP segments match: ``count`` is then COUNT_CAP.
    count_exact: bool = True
    #: Set when only the newest N matches were ranked by relevance (see RANK_WINDOW).
    ranked_within: int | None = None


def meta_token(kind: str, value: str | int) -> str:
    """A filter token of ``segment_fts.search_meta``, encoded as migration 0005 does:
    ``r`` recording id, ``p`` person id, ``l`` language (hex of its UTF-8)."""
    if kind in ("r", "p"):
        return f"{kind}{int(value)}"
    # SQLite's hex(): the UTF-8 bytes, upper case (FTS5 folds tokens to lower case).
    return kind + str(value).encode("utf-8").hex().upper()


def _ids(session: Session, query: Any) -> list[int]:
    """A query's single column as a list, on the bare connection: the ORM's per-row
    handling was most of the cost of the up to COUNT_CAP ids a search reads."""
    return list(session.connection().execute(query).scalars().all())


def _invisible_recordings(session: Session, user: User) -> list[int]:
    visible = recording_filter(user)
    if visible is True:
        return []
    return _ids(session, sa.select(col(Recording.id)).where(~visible))


def _person_labels(session: Session, person_id: int) -> list[tuple[int, str]]:
    return [(r, label) for r, label in session.connection().execute(
        sa.select(col(Speaker.recording_id), col(Speaker.label))
        .where(col(Speaker.person_id) == person_id)).all()]


def _sqlite_page(session: Session, parsed: ParsedQuery, user: User, *,
                 person_id: int | None, recording_id: int | None, language: str | None,
                 limit: int, offset: int) -> tuple[list[int], int, bool, int | None]:
    """Ids of one page, the count, whether it is exact, and the rank window if any.

    Everything is answered by ``segment_fts`` alone: it holds only current segments, and
    its ``search_meta`` tokens carry recording, language and the mapped person, so
    filters and visibility are more terms of the MATCH (recording ``r…``, language
    ``l…``, person ``p…``, and NOT the recordings the user may not see).
    Segments withheld from authors are left out by rowid; there are few of them.
    """
    match = f"search_text : ({parsed.fts5()})"
    required: list[str] = []
    if recording_id is not None:
        required.append(meta_token("r", recording_id))
    if language:
        required.append(meta_token("l", language))
    if person_id is not None:
        required.append(meta_token("p", person_id))
    if required:
        match = f"({match}) AND search_meta : ({' AND '.join(required)})"
    excluded = [meta_token("r", r) for r in _invisible_recordings(session, user)]
    if excluded:
        match = f"({match}) NOT search_meta : ({' OR '.join(excluded)})"

    fts = sa.table("segment_fts", sa.column("rowid", sa.Integer))
    fts_col: sa.ColumnClause[Any] = sa.literal_column("segment_fts")
    where: list[Any] = [fts_col.op("MATCH")(sa.bindparam("fts_query", match, type_=sa.String))]
    if is_redacted_for(user):
        hidden = withheld_current_segments().cte("hidden").prefix_with("MATERIALIZED")
        where.append(fts.c.rowid.not_in(sa.select(hidden.c.id)))
    capped = sa.select(fts.c.rowid).where(*where).limit(COUNT_CAP + 1).subquery()
    count = int(session.connection().execute(
        sa.select(sa.func.count()).select_from(capped)).scalar_one())
    exact = count <= COUNT_CAP
    count = min(count, COUNT_CAP)
    if count == 0:
        return [], 0, True, None
    # Ranked: every match, or the newest RANK_WINDOW of them; then the others newest
    # first, so paging stays consistent across the window's edge. The candidates come
    # from the index alone, and only they are read from the segment table for scoring.
    windowed = count > RANK_WINDOW
    candidates = sa.select(fts.c.rowid.label("id")).where(*where)
    if windowed:
        candidates = candidates.order_by(fts.c.rowid.desc()).limit(RANK_WINDOW)
    ranked = candidates.cte("candidates").prefix_with("MATERIALIZED")
    page: list[int] = []
    if offset < RANK_WINDOW:
        page = _ids(session, sa.select(col(Segment.id))
                    .where(col(Segment.id).in_(sa.select(ranked.c.id)))
                    .order_by(_score(parsed, sa.func.length, 100.0).desc(), col(Segment.id))
                    .limit(limit).offset(offset))
    if windowed and len(page) < limit:
        page += _ids(session, sa.select(fts.c.rowid).where(*where)
                     .order_by(fts.c.rowid.desc()).limit(limit - len(page))
                     .offset(RANK_WINDOW + max(0, offset - RANK_WINDOW)))
    return page, count, exact, RANK_WINDOW if windowed else None


def _score(parsed: ParsedQuery, length: Any, long_segment: float) -> Any:
    """Relevance from ``search_text``: each phrase's occurrences, damped by length.

    bm25's shape (tf / (tf + k * length)) without its IDF: FTS5's bm25() computes the
    IDF by running every phrase over the whole index first (24 ms for 模型 at 1 M
    segments, even with a filter leaving 200 hits), and PostgreSQL's ts_rank re-parses
    every hit. Occurrences are counted by what replace() removes; the needle has no
    trailing space, so back-to-back repeats ("闫 俊 杰 闫 俊 杰") all count, and that it
    also counts "agents" for "agent" only nudges the order of true matches.
    ``long_segment`` is the length (in ``length``'s unit) that halves a single hit's
    weight: about 100 Chinese characters.
    """
    score: Any = sa.literal(0.0)
    damping = 0.5 + length(col(Segment.search_text)) / long_segment
    for n, phrase in enumerate(parsed.phrases):
        needle: Any = sa.bindparam(f"needle_{n}", " " + " ".join(phrase.tokens))
        spaced = sa.literal(" ") + col(Segment.search_text)
        removed = length(sa.func.replace(spaced, needle, ""))
        tf = sa.cast((length(spaced) - removed) / length(needle), sa.Float)
        score = score + tf / (tf + damping)
    return score


def _postgres_segment_filters(session: Session, user: User, *, person_id: int | None,
                              recording_id: int | None, language: str | None) -> list[Any]:
    conds: list[Any] = [col(Segment.is_current)]
    if recording_id is not None:
        conds.append(col(Segment.recording_id) == recording_id)
    invisible = _invisible_recordings(session, user)
    if invisible:
        conds.append(col(Segment.recording_id).not_in(invisible))
    if language:
        conds.append(col(Segment.language) == language)
    if person_id is not None:
        pairs = _person_labels(session, person_id)
        # The recordings first: their index narrows the rows before the label test.
        conds.append(col(Segment.recording_id).in_(sorted({r for r, _ in pairs}) or [-1]))
        conds.append(sa.or_(sa.false(), *(
            sa.and_(col(Segment.recording_id) == r, col(Segment.speaker) == label)
            for r, label in pairs)))
    if is_redacted_for(user):
        # Withheld segments are few (restricted spans cover minutes): materialised once
        # and hashed, not a correlated subquery per hit of a common word.
        hidden = withheld_current_segments().cte("hidden").prefix_with("MATERIALIZED")
        conds.append(col(Segment.id).not_in(sa.select(hidden.c.id)))
    return conds


_COLUMNS = (
    col(Segment.id), col(Segment.recording_id), col(Segment.transcript_id),
    col(Segment.start), col(Segment.end), col(Segment.speaker), col(Segment.text),
    col(Segment.language),
)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _postgres_page(session: Session, parsed: ParsedQuery, conds: list[Any], *, limit: int,
                   offset: int) -> tuple[list[int], int, bool, int | None]:
    """GIN finds segments with every token; LIKE on the spaced text checks the phrases.

    A phrase tsquery (``<->``) makes PostgreSQL recheck each candidate by running
    ``to_tsvector`` on it again (GIN keeps no positions), about 50-150 us a row; with
    a plain AND of tokens the GIN answer is exact, and the phrase test is a LIKE on
    ``search_text``, whose tokens are single-space separated, at about 1 us a row.
    Ranking likewise avoids ``ts_rank`` (another ``to_tsvector`` per hit): it counts
    each phrase's occurrences and damps them by segment length, as bm25 does. The
    GIN index is partial (current segments only), so ``is_current`` is in ``conds``.
    Counting and ranking are bounded as on SQLite (COUNT_CAP, RANK_WINDOW).
    """
    tokens: list[str] = []
    for phrase in parsed.phrases:
        for i, tok in enumerate(phrase.tokens):
            term = f"'{tok.replace(chr(39), chr(39) * 2)}'"
            if phrase.prefix and i == len(phrase.tokens) - 1:
                term += ":*"
            if term not in tokens:
                tokens.append(term)
    # Must be the GIN index's expression exactly, or PostgreSQL scans every segment.
    vector = sa.func.to_tsvector(sa.literal_column("'simple'"), col(Segment.search_text))
    tsquery = sa.func.to_tsquery(
        sa.literal_column("'simple'"),
        sa.bindparam("ts_query", " & ".join(tokens), type_=sa.Text),
    )
    padded = sa.literal(" ") + col(Segment.search_text) + sa.literal(" ")
    where: list[Any] = [vector.op("@@")(tsquery), *conds]
    for n, phrase in enumerate(parsed.phrases):
        if len(phrase.tokens) > 1:
            text = " ".join(phrase.tokens)
            tail = "" if phrase.prefix else " "
            pattern: Any = sa.bindparam(f"like_{n}", f"% {_like_escape(text)}{tail}%")
            where.append(padded.like(pattern, escape="\\"))
    # octet_length is O(1) where char_length walks the UTF-8; ~300 bytes of search_text
    # is a long segment (100 Chinese characters).
    score = _score(parsed, sa.func.octet_length, 300.0)
    # One pass over the GIN bitmap gives the count and, when it is exact, every match:
    # building the bitmap of two common characters alone costs ~250 ms at 1 M segments,
    # so it is not repeated for the window.
    found = _ids(session, sa.select(col(Segment.id)).where(*where).limit(COUNT_CAP + 1))
    exact = len(found) <= COUNT_CAP
    count = min(len(found), COUNT_CAP)
    if count == 0:
        return [], 0, True, None
    windowed = count > RANK_WINDOW
    rest: list[int] = []
    if exact:
        found.sort(reverse=True)
        candidates, rest = found[:RANK_WINDOW], found[RANK_WINDOW:]
    else:
        candidates = _newest_matches(session, where)
    boundary = min(candidates)
    # The candidates are scored by primary key: no third pass over the GIN bitmap.
    in_window = col(Segment.id) == sa.func.any(
        sa.bindparam("candidates", candidates, type_=postgresql.ARRAY(sa.Integer)))
    page: list[int] = []
    if offset < RANK_WINDOW:
        ranked = (sa.select(col(Segment.id).label("id"), score.label("score"))
                  .where(in_window).cte().prefix_with("MATERIALIZED"))
        page = _ids(session, sa.select(ranked.c.id)
                    .order_by(ranked.c.score.desc(), ranked.c.id).limit(limit).offset(offset))
    if windowed and len(page) < limit:
        skip = max(0, offset - RANK_WINDOW)
        if exact:
            page += rest[skip:skip + limit - len(page)]
        else:
            page += _ids(session, sa.select(col(Segment.id))
                         .where(*where, col(Segment.id) < boundary)
                         .order_by(col(Segment.id).desc()).limit(limit - len(page))
                         .offset(skip))
    return page, count, exact, RANK_WINDOW if windowed else None


def _newest_matches(session: Session, where: list[Any]) -> list[int]:
    """The ids of the newest RANK_WINDOW matches (or of all, if there are fewer).

    GIN returns matches unordered, so "the newest N" would otherwise mean fetching every
    match from the heap to sort it. Ids grow with time, so a range of recent ids is
    tried first and widened fourfold until it holds N matches: PostgreSQL ANDs the
    GIN bitmap with the primary-key range and reads only the rows in it.
    """
    top = session.connection().execute(sa.select(sa.func.max(Segment.id))).scalar_one() or 0
    span = 8 * RANK_WINDOW
    while True:
        lo = top - span
        # MATERIALIZED: with an ORDER BY id in the same query the planner may walk the
        # primary key backwards and run to_tsvector on every row it passes (seconds).
        in_range = (sa.select(col(Segment.id).label("id"))
                    .where(*where, col(Segment.id) > lo).cte().prefix_with("MATERIALIZED"))
        ids = _ids(session, sa.select(in_range.c.id).order_by(in_range.c.id.desc())
                   .limit(RANK_WINDOW))
        if len(ids) == RANK_WINDOW or lo <= 0:
            return ids or [0]
        span *= 4


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
) -> SearchResults:
    """One page of the best-matching segments ``user`` may read, and how many match.

    Raises :class:`QueryError` for a query that cannot be searched.
    """
    parsed = parse_query(q)
    if session.get_bind().dialect.name == "sqlite":
        ids, count, exact, window = _sqlite_page(
            session, parsed, user, person_id=person_id, recording_id=recording_id,
            language=language, limit=limit, offset=offset)
    else:
        conds = _postgres_segment_filters(session, user, person_id=person_id,
                                          recording_id=recording_id, language=language)
        ids, count, exact, window = _postgres_page(session, parsed, conds, limit=limit,
                                                   offset=offset)
    if not ids:
        return SearchResults([], count, exact, window)
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
    return SearchResults(hits, count, exact, window)


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


# --- snippets ---------------------------------------------------------------------------


def _is_word_char(ch: str) -> bool:
    # The same rule as pipelines.text.cjk_spaced, so tokens here line up with the index.
    return ch.isalnum() or unicodedata.category(ch) in ("Mn", "Mc")


@lru_cache(maxsize=4096)
def _base(token: str) -> str:
    # FTS5's unicode61 (remove_diacritics 2) matches "cafe" with "café": compare alike.
    decomposed = unicodedata.normalize("NFD", token)
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def _folded_pieces(text: str) -> list[str]:
    """For each character of ``text``, what it becomes in the index (maybe several chars)."""
    pieces = [unicodedata.normalize("NFKC", ch) for ch in text]
    joined = "".join(pieces)
    simplified = to_simplified(joined)
    if len(simplified) == len(joined):
        # OpenCC converts in context (乾隆 keeps 乾, 乾燥 becomes 干燥) and almost always
        # char for char, so the whole-text conversion is distributed back.
        out, pos = [], 0
        for piece in pieces:
            out.append(simplified[pos:pos + len(piece)].lower())
            pos += len(piece)
        return out
    return [to_simplified(piece).lower() for piece in pieces]


def tokens_with_spans(text: str) -> list[tuple[str, int, int]]:
    """The index tokens of ``text`` with the [start, end) of each in the original text."""
    tokens: list[tuple[str, int, int]] = []
    word: list[str] = []
    word_start = 0
    word_end = 0

    def flush() -> None:
        if word:
            # cjk_spaced normalises whole words, composing e + U+0301 into é.
            tokens.append((unicodedata.normalize("NFC", "".join(word)), word_start, word_end))
            word.clear()

    for i, piece in enumerate(_folded_pieces(text)):
        for ch in piece:
            if is_cjk(ch):
                flush()
                tokens.append((ch, i, i + 1))
            elif _is_word_char(ch):
                if not word:
                    word_start = i
                word.append(ch)
                word_end = i + 1
            else:
                flush()
    flush()
    return tokens


def _hits(tokens: Sequence[tuple[str, int, int]], phrases: Sequence[Phrase],
          ) -> list[tuple[int, int]]:
    bases = [_base(t) for t, _, _ in tokens]
    spans: list[tuple[int, int]] = []
    for phrase in phrases:
        want = [_base(t) for t in phrase.tokens]
        n = len(want)
        for i in range(len(bases) - n + 1):
            if bases[i:i + n - 1] != want[:-1]:
                continue
            last = bases[i + n - 1]
            if last == want[-1] or (phrase.prefix and last.startswith(want[-1])):
                spans.append((tokens[i][1], tokens[i + n - 1][2]))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def snippet(text: str, parsed: ParsedQuery, width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``text`` around the first hit, hits marked «…».

    Cut from the original text, so the reader sees the script and spelling that was
    spoken (閆俊傑 is marked when 闫俊杰 was searched for).
    """
    hits = _hits(tokens_with_spans(text), parsed.phrases)
    if len(text) <= width:
        lo, hi = 0, len(text)
    elif hits:
        first_start, first_end = hits[0]
        lo = max(0, first_start - SNIPPET_LEAD)
        hi = min(len(text), max(lo + width, first_end))
        lo = max(0, min(lo, hi - width))
    else:
        lo, hi = 0, width
    out: list[str] = [ELLIPSIS] if lo > 0 else []
    pos = lo
    for a, b in hits:
        a, b = max(a, lo), min(b, hi)
        if a >= b:
            continue
        out += [text[pos:a], MARK_OPEN, text[a:b], MARK_CLOSE]
        pos = b
    out.append(text[pos:hi])
    if hi < len(text):
        out.append(ELLIPSIS)
    return "".join(out)
