"""Search on SQLite: the external-content FTS5 table ``segment_fts`` (``unicode61``)
over the current segments, with filter tokens (migration 0005)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from service.models.transcripts import Segment
from service.models.users import User
from service.search import scope
from service.search.query import ParsedQuery, Term, relevance
from service.search.scope import id_list, invisible_recordings
from service.visibility import is_redacted_for, withheld_current_segments


def meta_token(kind: str, value: str | int) -> str:
    """A filter token of ``segment_fts.search_meta``, encoded as migration 0005 does:
    ``r`` recording id, ``p`` person id, ``l`` language (hex of its UTF-8)."""
    if kind in ("r", "p"):
        return f"{kind}{int(value)}"
    # SQLite's hex(): the UTF-8 bytes, upper case (FTS5 folds tokens to lower case).
    return kind + str(value).encode("utf-8").hex().upper()


def _term_match(term: Term) -> str:
    text = f"search_text : ({term.fts5_text()})"
    if not term.speakers:
        return text
    # The person's own speech: the ``p…`` filter token of the segments mapped to them.
    said = " OR ".join(meta_token("p", p) for p in term.speakers)
    return f"({text} OR search_meta : ({said}))"


def sqlite_page(session: Session, parsed: ParsedQuery, user: User, *,
                 person_id: int | None, recording_id: int | None, language: str | None,
                 limit: int, offset: int) -> tuple[list[int], int, bool, int | None]:
    """Ids of one page, the count, whether it is exact, and the rank window if any.

    Everything is answered by ``segment_fts`` alone: it holds only current segments, and
    its ``search_meta`` tokens carry recording, language and the mapped person, so
    filters and visibility are more terms of the MATCH (recording ``r…``, language
    ``l…``, person ``p…``, and NOT the recordings the user may not see).
    Segments withheld from authors are left out by rowid; there are few of them.
    """
    match = " AND ".join(_term_match(t) for t in parsed.terms)
    required: list[str] = []
    if recording_id is not None:
        required.append(meta_token("r", recording_id))
    if language:
        required.append(meta_token("l", language))
    if person_id is not None:
        required.append(meta_token("p", person_id))
    if required:
        match = f"({match}) AND search_meta : ({' AND '.join(required)})"
    excluded = [meta_token("r", r) for r in invisible_recordings(session, user)]
    if excluded:
        match = f"({match}) NOT search_meta : ({' OR '.join(excluded)})"

    fts = sa.table("segment_fts", sa.column("rowid", sa.Integer))
    fts_col: sa.ColumnClause[Any] = sa.literal_column("segment_fts")
    where: list[Any] = [fts_col.op("MATCH")(sa.bindparam("fts_query", match, type_=sa.String))]
    if is_redacted_for(user):
        hidden = withheld_current_segments().cte("hidden").prefix_with("MATERIALIZED")
        where.append(fts.c.rowid.not_in(sa.select(hidden.c.id)))
    capped = sa.select(fts.c.rowid).where(*where).limit(scope.COUNT_CAP + 1).subquery()
    count = int(session.connection().execute(
        sa.select(sa.func.count()).select_from(capped)).scalar_one())
    exact = count <= scope.COUNT_CAP
    count = min(count, scope.COUNT_CAP)
    if count == 0:
        return [], 0, True, None
    # Ranked: every match, or the newest RANK_WINDOW of them; then the others newest
    # first, so paging stays consistent across the window's edge. The candidates come
    # from the index alone, and only they are read from the segment table for scoring.
    windowed = count > scope.RANK_WINDOW
    candidates = sa.select(fts.c.rowid.label("id")).where(*where)
    if windowed:
        candidates = candidates.order_by(fts.c.rowid.desc()).limit(scope.RANK_WINDOW)
    ranked = candidates.cte("candidates").prefix_with("MATERIALIZED")
    page: list[int] = []
    if offset < scope.RANK_WINDOW:
        page = id_list(session, sa.select(col(Segment.id))
                    .where(col(Segment.id).in_(sa.select(ranked.c.id)))
                    .order_by(relevance(parsed, sa.func.length, 100.0).desc(), col(Segment.id))
                    .limit(limit).offset(offset))
    if windowed and len(page) < limit:
        page += id_list(session, sa.select(fts.c.rowid).where(*where)
                     .order_by(fts.c.rowid.desc()).limit(limit - len(page))
                     .offset(scope.RANK_WINDOW + max(0, offset - scope.RANK_WINDOW)))
    return page, count, exact, scope.RANK_WINDOW if windowed else None
