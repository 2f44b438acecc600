"""Full-text search over the current transcripts, in Chinese and English.

One function, :func:`search`, serves both databases. The index is built on
``segment.search_text`` (``pipelines.text.cjk_spaced``: simplified, lower-cased, every
CJK character a token of its own), so a Chinese word of any length is a *phrase* of
single-character tokens and an English word is one token:

- SQLite: the external-content FTS5 table ``segment_fts`` (``unicode61``), ranked by
  ``bm25``;
- PostgreSQL: ``to_tsvector('simple', search_text)`` under a GIN index, ranked by
  ``ts_rank``.

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
from sqlalchemy.orm import aliased
from sqlmodel import Session, SQLModel, col, select

from pipelines.text import cjk_spaced, is_cjk, to_simplified
from service.access import recording_filter
from service.models.consent import Restriction
from service.models.people import Person
from service.models.recordings import Recording, Speaker
from service.models.transcripts import Segment, Transcript
from service.models.users import User
from service.visibility import HIDDEN_LEVELS, hidden_segment_clause, is_redacted_for

__all__ = [
    "MARK_CLOSE",
    "MARK_OPEN",
    "MAX_PHRASES",
    "MAX_QUERY_CHARS",
    "MIN_PREFIX_CHARS",
    "SNIPPET_CHARS",
    "ParsedQuery",
    "Phrase",
    "QueryError",
    "SearchHit",
    "parse_query",
    "search",
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


def _current_transcripts(user: User, recording_id: int | None, person_id: int | None,
                         ) -> Any:
    """SELECT of the ids of the current transcript version of each visible recording."""
    newer = aliased(Transcript)
    query = (
        sa.select(col(Transcript.id))
        .join(Recording, col(Recording.id) == col(Transcript.recording_id))
        # Only the current version: older ones stay readable but are not searched.
        .where(~sa.exists().where(
            col(newer.recording_id) == col(Transcript.recording_id),
            col(newer.version) > col(Transcript.version),
        ))
    )
    visible = recording_filter(user)
    if visible is not True:
        query = query.where(visible)
    if recording_id is not None:
        query = query.where(col(Transcript.recording_id) == recording_id)
    if person_id is not None:
        # Narrows the hits to the person's recordings before the per-segment label check.
        query = query.where(col(Transcript.recording_id).in_(
            sa.select(col(Speaker.recording_id)).where(col(Speaker.person_id) == person_id)))
    return query


def _segment_filters(user: User, *, person_id: int | None, language: str | None,
                     ) -> list[Any]:
    conds: list[Any] = []
    if language:
        conds.append(col(Segment.language) == language)
    if person_id is not None:
        conds.append(sa.exists().where(
            col(Speaker.recording_id) == col(Segment.recording_id),
            col(Speaker.label) == col(Segment.speaker),
            col(Speaker.person_id) == person_id,
        ))
    if is_redacted_for(user):
        # Inside the query, so hidden segments are neither counted nor ranked. The
        # cheap test of the recording comes first: the span test is a correlated
        # subquery, and running it for every hit of a common word took seconds.
        restricted = sa.select(col(Restriction.recording_id)).where(
            col(Restriction.level).in_([lv.value for lv in HIDDEN_LEVELS]))
        conds.append(sa.or_(col(Segment.recording_id).not_in(restricted),
                            ~hidden_segment_clause()))
    return conds


_COLUMNS = (
    col(Segment.id), col(Segment.recording_id), col(Segment.transcript_id),
    col(Segment.start), col(Segment.end), col(Segment.speaker), col(Segment.text),
    col(Segment.language),
)


def _sqlite_queries(session: Session, parsed: ParsedQuery, conds: list[Any],
                    current: Any, recording_id: int | None) -> tuple[Any, Any]:
    fts = sa.table("segment_fts", sa.column("rowid", sa.Integer))
    fts_col: sa.ColumnClause[Any] = sa.literal_column("segment_fts")
    match = fts_col.op("MATCH")(sa.bindparam("fts_query", parsed.fts5(), type_=sa.String))
    fts_where = [match]
    if recording_id is not None:
        # FTS5 seeks a rowid range in its posting lists; without the range SQLite would
        # walk the recording's segments and run the MATCH once for each (~0.5 ms a row).
        lo, hi = session.execute(
            sa.select(sa.func.min(Segment.id), sa.func.max(Segment.id))
            .where(col(Segment.recording_id) == recording_id)
        ).one()
        fts_where.append(fts.c.rowid.between(lo or 0, hi or 0))

    def hits(*extra: Any) -> Any:
        # MATERIALIZED keeps the full-text index the driving table whatever filters
        # follow: the planner otherwise starts from a filter's index and runs the MATCH
        # once per candidate row.
        return (
            sa.select(fts.c.rowid.label("id"), *extra).where(*fts_where)
            .cte("hits").prefix_with("MATERIALIZED")
        )

    def joined(h: Any) -> Any:
        return h.join(Segment, col(Segment.id) == h.c.id)

    conds = [col(Segment.transcript_id).in_(current), *conds]
    ranked = hits(sa.func.bm25(fts_col).label("rank"))
    rows = (
        sa.select(*_COLUMNS).select_from(joined(ranked)).where(*conds)
        .order_by(ranked.c.rank, col(Segment.id))
    )
    counted = hits()
    count = sa.select(sa.func.count()).select_from(joined(counted)).where(*conds)
    return rows, count


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _postgres_queries(session: Session, parsed: ParsedQuery, conds: list[Any],
                      current: Any) -> tuple[Any, Any]:
    """GIN finds segments with every token; LIKE on the spaced text checks the phrases.

    A phrase tsquery (``<->``) makes PostgreSQL recheck each candidate by running
    ``to_tsvector`` on it again (GIN keeps no positions), about 50-150 us a row; with
    a plain AND of tokens the GIN answer is exact, and the phrase test is a LIKE on
    ``search_text``, whose tokens are single-space separated, at about 1 us a row.
    Ranking likewise avoids ``ts_rank`` (another ``to_tsvector`` per hit): it counts
    each phrase's occurrences and damps them by segment length, as bm25 does.

    The query reads the segment table alone. The planner cannot estimate the LIKE
    and guesses one row, and with a join it then rescans all hits once per
    transcript; so the current transcripts are looked up first and passed as an array.
    """
    transcript_ids = list(session.execute(current).scalars())
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
    where: list[Any] = [vector.op("@@")(tsquery)]
    score: Any = sa.literal(0.0)
    # octet_length is O(1) where char_length walks the UTF-8; ~300 bytes of search_text
    # is a long segment (100 Chinese characters).
    damping = 0.5 + sa.func.octet_length(col(Segment.search_text)) / 300.0
    for n, phrase in enumerate(parsed.phrases):
        text = " ".join(phrase.tokens)
        tail = "" if phrase.prefix else " "
        if len(phrase.tokens) > 1:
            pattern: Any = sa.bindparam(f"like_{n}", f"% {_like_escape(text)}{tail}%")
            where.append(padded.like(pattern, escape="\\"))
        # Occurrences for ranking, counted by what replace() removes. The needle has no
        # trailing space, so back-to-back repeats ("闫 俊 杰 闫 俊 杰") all count; that it
        # also counts "agents" for "agent" only nudges the order of true matches.
        needle: Any = sa.bindparam(f"needle_{n}", " " + text)
        spaced = sa.literal(" ") + col(Segment.search_text)
        removed = sa.func.octet_length(sa.func.replace(spaced, needle, ""))
        tf = sa.cast(
            (sa.func.octet_length(spaced) - removed) / sa.func.octet_length(needle), sa.Float
        )
        score = score + tf / (tf + damping)
    where.append(col(Segment.transcript_id) == sa.func.any(
        sa.bindparam("transcripts", transcript_ids, type_=postgresql.ARRAY(sa.Integer))))
    rows = (
        sa.select(*_COLUMNS).where(*where, *conds).order_by(score.desc(), col(Segment.id))
    )
    count = sa.select(sa.func.count()).select_from(Segment).where(*where, *conds)
    return rows, count


def search(
    session: Session,
    *,
    user: User,
    q: str,
    person_id: int | None = None,
    recording_id: int | None = None,
    language: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[SearchHit], int]:
    """One page of the best-matching segments ``user`` may read, and how many match.

    Raises :class:`QueryError` for a query that cannot be searched.
    """
    parsed = parse_query(q)
    conds = _segment_filters(user, person_id=person_id, language=language)
    current = _current_transcripts(user, recording_id, person_id)
    if session.get_bind().dialect.name == "sqlite":
        rows_q, count_q = _sqlite_queries(session, parsed, conds, current, recording_id)
    else:
        rows_q, count_q = _postgres_queries(session, parsed, conds, current)
    count = int(session.execute(count_q).scalar_one())
    if count == 0 or offset >= count:
        return [], count
    rows = session.execute(rows_q.limit(limit).offset(offset)).all()
    names = _speaker_names(session, {r.recording_id for r in rows})
    about = {
        t_id: (version, title) for t_id, version, title in session.execute(
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
    return hits, count


def _speaker_names(session: Session, recording_ids: set[int],
                   ) -> dict[tuple[int, str], tuple[int | None, str | None]]:
    """(recording, label) -> (person_id, name), read now so that remapping shows at once."""
    if not recording_ids:
        return {}
    rows = session.exec(
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
