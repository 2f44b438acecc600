"""Search on PostgreSQL: ``search_vector(search_text)`` (the ``simple`` tsvector of
the tokens and of every pair of adjacent CJK characters, migration 0012) under a
partial GIN index finds the candidates; LIKE on the spaced text checks the phrases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col

from pipelines.text import is_cjk
from service.models.transcripts import Segment
from service.models.users import User
from service.search import scope
from service.search.query import ParsedQuery, Phrase, relevance
from service.search.scope import id_list, invisible_recordings, person_labels
from service.visibility import is_redacted_for, withheld_current_segments


def segment_filters(session: Session, user: User, *, person_id: int | None,
                              recording_id: int | None, language: str | None) -> list[Any]:
    conds: list[Any] = [col(Segment.is_current)]
    if recording_id is not None:
        conds.append(col(Segment.recording_id) == recording_id)
    invisible = invisible_recordings(session, user)
    if invisible:
        conds.append(col(Segment.recording_id).not_in(invisible))
    if language:
        conds.append(col(Segment.language) == language)
    if person_id is not None:
        pairs = person_labels(session, person_id)
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


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cjk(token: str) -> bool:
    return len(token) == 1 and is_cjk(token)


def _lexemes(phrase: Phrase) -> list[str]:
    """tsquery operands for ``phrase``: the pairs of its adjacent CJK characters (模型 for
    模 型) and its tokens that are in no pair, quoted; a prefix phrase's last token ``:*``.

    A word of n CJK characters is then n - 1 bigram lexemes, each far rarer than its
    characters: 模型 is one posting list, not the intersection of those of 模 and 型.
    """
    tokens = phrase.tokens
    paired = [i for i in range(len(tokens) - 1) if _cjk(tokens[i]) and _cjk(tokens[i + 1])]
    covered = {j for i in paired for j in (i, i + 1)}
    out = [_quoted(tokens[i] + tokens[i + 1]) for i in paired]
    for i, token in enumerate(tokens):
        if i not in covered:
            # A prefix phrase ends in a non-CJK token (parse_query), so in no pair.
            last = phrase.prefix and i == len(tokens) - 1
            out.append(_quoted(token) + (":*" if last else ""))
    return out


def _quoted(lexeme: str) -> str:
    return f"'{lexeme.replace(chr(39), chr(39) * 2)}'"


def _tokens(phrases: tuple[Phrase, ...]) -> list[str]:
    """The tsquery operands of all ``phrases``, each once."""
    out: list[str] = []
    for phrase in phrases:
        out += [term for term in _lexemes(phrase) if term not in out]
    return out


def postgres_page(session: Session, parsed: ParsedQuery, conds: list[Any], *, limit: int,
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
    # Must be the GIN index's expression exactly, or PostgreSQL scans every segment.
    vector = sa.func.search_vector(col(Segment.search_text))
    padded = sa.literal(" ") + col(Segment.search_text) + sa.literal(" ")
    names = iter(range(10_000))

    def tsquery(text: str) -> Any:
        return sa.func.to_tsquery(sa.literal_column("'simple'"), sa.bindparam(
            f"ts_query_{next(names)}", text, type_=sa.Text))

    def like(phrase: Phrase) -> Any:
        tail = "" if phrase.prefix else " "
        pattern: Any = sa.bindparam(f"like_{next(names)}",
                                    f"% {_like_escape(' '.join(phrase.tokens))}{tail}%")
        return padded.like(pattern, escape="\\")

    # Terms that only text can match share one tsquery (one GIN scan); a term that a
    # person's speech matches too is an OR of its own, beside their speaker labels.
    shared: list[str] = []
    where: list[Any] = [*conds]
    # The same test row by row, without the index: every phrase by LIKE. It answers the
    # newest window of a common word by walking the primary key (see _newest_matches).
    rowwise: list[Any] = [*conds]
    # A term that a person's speech matches too, as (its condition in ``where``, its
    # text half, its speech half): see the first pass below.
    split: tuple[Any, Any, Any] | None = None
    for term in parsed.terms:
        if not term.expanded:
            shared += [t for t in _tokens(term.typed) if t not in shared]
            where += [like(p) for p in term.typed if len(p.tokens) > 1]
            rowwise += [like(p) for p in term.typed]
            continue
        alternatives = [term.typed, *((a,) for a in term.aliases)]
        text_query = " | ".join(f"({' & '.join(_tokens(alt))})" for alt in alternatives)
        # Every phrase is checked here, one-token ones too: the tsquery is an OR, so a
        # row may have passed it by another alternative than the one being checked.
        checked = sa.or_(sa.and_(*(like(p) for p in term.typed)),
                         *(like(a) for a in term.aliases))
        if not term.speakers:
            shared.append(f"({text_query})")
            where.append(checked)
            rowwise.append(checked)
            continue
        said = [pair for p in term.speakers for pair in person_labels(session, p)]
        # Per label, its recordings as one array: PostgreSQL hashes a long ``= ANY``, where
        # an OR of (recording, label) pairs is tested pair by pair on every row.
        by_label: dict[str, list[int]] = {}
        for r, label in said:
            by_label.setdefault(label, []).append(r)
        spoken = [sa.and_(col(Segment.speaker) == label, col(Segment.recording_id) == sa.func.any(
            sa.bindparam(f"said_{next(names)}", sorted(recs), type_=postgresql.ARRAY(sa.Integer))))
            for label, recs in sorted(by_label.items())]
        said_text = sa.and_(vector.op("@@")(tsquery(text_query)), checked)
        either = sa.or_(said_text, *spoken)
        if split is None:
            split = (either, said_text, sa.or_(sa.false(), *spoken))
        where.append(either)
        rowwise.append(sa.or_(checked, *spoken))
    if shared:
        where.insert(0, vector.op("@@")(tsquery(" & ".join(shared))))
    # octet_length is O(1) where char_length walks the UTF-8; ~300 bytes of search_text
    # is a long segment (100 Chinese characters).
    score = relevance(parsed, sa.func.octet_length, 300.0)
    # One pass over the GIN bitmap gives the count and, when it is exact, every match:
    # building the bitmap of two common characters alone costs ~250 ms at 1 M segments,
    # so it is not repeated for the window.
    cap = scope.COUNT_CAP + 1
    walked = _walk_common(session, rowwise, cap)
    if walked is not None:
        # More than COUNT_CAP matches, the newest first: the window is their head.
        head: list[int] = []
        if offset < scope.RANK_WINDOW:
            head = _ranked(session, walked[:scope.RANK_WINDOW], score, limit, offset)
        if len(head) < limit:
            skip = max(0, offset - scope.RANK_WINDOW)
            head += id_list(session, sa.select(col(Segment.id))
                            .where(*where, col(Segment.id) < min(walked[:scope.RANK_WINDOW]))
                            .order_by(col(Segment.id).desc()).limit(limit - len(head))
                            .offset(skip))
        return head, scope.COUNT_CAP, False, scope.RANK_WINDOW
    if split is None:
        found = id_list(session, sa.select(col(Segment.id)).where(*where).limit(cap))
        density = _density(found)
    else:
        # "text OR speech" would be a BitmapOr whose every row is re-tested in full,
        # running search_vector on each (~100 us); apart, the text half is an exact GIN
        # answer and the speech half an index lookup of the labels.
        either, text_half, speech_half = split
        at = next(i for i, w in enumerate(where) if w is either)
        halves = [id_list(session, sa.select(col(Segment.id))
                          .where(*where[:at], half, *where[at + 1:]).limit(cap))
                  for half in (text_half, speech_half)]
        found = sorted(set(halves[0]) | set(halves[1]))[:cap]
        # A person's speech and mentions of their name rarely overlap: the densities add.
        density = sum(_density(h) for h in halves)
    exact = len(found) <= scope.COUNT_CAP
    count = min(len(found), scope.COUNT_CAP)
    if count == 0:
        return [], 0, True, None
    windowed = count > scope.RANK_WINDOW
    rest: list[int] = []
    if exact:
        found.sort(reverse=True)
        candidates, rest = found[:scope.RANK_WINDOW], found[scope.RANK_WINDOW:]
    else:
        candidates = _newest_matches(session, where, rowwise, density)
    boundary = min(candidates)
    page: list[int] = []
    if offset < scope.RANK_WINDOW:
        page = _ranked(session, candidates, score, limit, offset)
    if windowed and len(page) < limit:
        skip = max(0, offset - scope.RANK_WINDOW)
        if exact:
            page += rest[skip:skip + limit - len(page)]
        else:
            page += id_list(session, sa.select(col(Segment.id))
                         .where(*where, col(Segment.id) < boundary)
                         .order_by(col(Segment.id).desc()).limit(limit - len(page))
                         .offset(skip))
    return page, count, exact, scope.RANK_WINDOW if windowed else None


def _ranked(session: Session, candidates: list[int], score: Any, limit: int,
            offset: int) -> list[int]:
    """One page of ``candidates`` by relevance, scored by primary key (no GIN pass)."""
    in_window = col(Segment.id) == sa.func.any(
        sa.bindparam("candidates", candidates, type_=postgresql.ARRAY(sa.Integer)))
    ranked = (sa.select(col(Segment.id).label("id"), score.label("score"))
              .where(in_window).cte().prefix_with("MATERIALIZED"))
    return id_list(session, sa.select(ranked.c.id)
                   .order_by(ranked.c.score.desc(), ranked.c.id).limit(limit).offset(offset))


#: How many of the newest segments a query samples first, to tell a common word.
PROBE_ROWS = 2_000


#: A word this dense in the sample is counted by walking: ~13 000 rows for 的 at 74 %.
COMMON_DENSITY = 0.2


def _walk_common(session: Session, rowwise: list[Any], cap: int) -> list[int] | None:
    """For a word in a fifth or more of the newest segments, its newest ``cap`` matches
    by walking the primary key with the row-wise test, or None (not common, or fewer).

    GIN has no scan that stops early: any query through it first builds the bitmap of
    every posting (模型: 240 000 at 1 M segments, ~100 ms), while ``cap`` matches of a
    common word lie within a few tens of thousands of the newest rows.
    """
    top = session.connection().execute(sa.select(sa.func.max(Segment.id))).scalar_one() or 0
    sample = id_list(session, sa.select(col(Segment.id))
                     .where(*rowwise, col(Segment.id) > top - PROBE_ROWS))
    density = len(sample) / PROBE_ROWS
    if density < COMMON_DENSITY:
        return None
    found = id_list(session, sa.select(col(Segment.id))
                    .where(*rowwise, col(Segment.id) > top - int(2 * cap / density))
                    .order_by(col(Segment.id).desc()).limit(cap))
    return found if len(found) == cap else None


def _density(found: list[int]) -> float:
    """Matches per id: heap order is about id order, so the first ids found tell."""
    return len(found) / (max(found) - min(found) + 1) if found else 0.0


#: Walking the primary key reads each row (~1-2 us with the LIKE checks); GIN builds the
#: whole bitmap of the query's lexemes first (~0.1-0.3 us a posting: 的 has 740 000 at
#: 1 M segments). Up to this many rows, walking to the newest matches is the cheaper.
WALK_ROWS = 30_000


def _newest_matches(session: Session, where: list[Any], rowwise: list[Any],
                    density: float) -> list[int]:
    """The ids of the newest RANK_WINDOW matches (or of all, if there are fewer).

    GIN returns matches unordered, so "the newest N" would otherwise mean fetching every
    match from the heap to sort it. Ids grow with time, so a range of recent ids is
    tried first and widened fourfold until it holds N matches. Where matches are dense
    (``density``: matches per id, a common word), the range is walked newest first with
    the row-wise test (``rowwise``) and no index but the primary key; otherwise
    PostgreSQL ANDs the GIN bitmap with the primary-key range and reads only the rows
    in it.
    """
    top = session.connection().execute(sa.select(sa.func.max(Segment.id))).scalar_one() or 0
    expected = scope.RANK_WINDOW / max(density, 1e-9)
    walk = expected <= WALK_ROWS
    span = int(2 * expected) if walk else 8 * scope.RANK_WINDOW
    while True:
        lo = top - span
        if walk:
            ids = id_list(session, sa.select(col(Segment.id))
                          .where(*rowwise, col(Segment.id) > lo)
                          .order_by(col(Segment.id).desc()).limit(scope.RANK_WINDOW))
        else:
            # MATERIALIZED: with an ORDER BY id in the same query the planner may walk
            # the primary key backwards and run search_vector on every row it passes.
            in_range = (sa.select(col(Segment.id).label("id"))
                        .where(*where, col(Segment.id) > lo).cte().prefix_with("MATERIALIZED"))
            ids = id_list(session, sa.select(in_range.c.id).order_by(in_range.c.id.desc())
                          .limit(scope.RANK_WINDOW))
        if len(ids) == scope.RANK_WINDOW or lo <= 0:
            return ids or [0]
        span *= 4
