"""What an author may read: off-the-record and deep-background spans are hidden.

Restrictions are time ranges of a recording and apply to every transcript version.
A segment that overlaps an active hidden restriction at all is hidden whole: a
partial overlap must not leak the words next to the boundary. Editors and admins
see everything (marked), researchers see everything (they made the recording).

Every read path (transcript, search, export, quote creation, audio) goes through here.
A restriction's ``until`` is the day it lifts (as in clearance): in force while
today < until.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.models.consent import Restriction, RestrictionLevel
from service.models.transcripts import Segment
from service.models.users import Role, User

RESTRICTED_TEXT = "[restricted]"
HIDDEN_LEVELS = (RestrictionLevel.off_record, RestrictionLevel.deep_background)


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    level: RestrictionLevel


def is_redacted_for(user: User) -> bool:
    """Whether hidden spans are withheld from this user (authors only)."""
    return user.role == Role.author


def active_spans(session: Session, recording_ids: Iterable[int], *,
                 today: date | None = None) -> dict[int, list[Span]]:
    """All restrictions in force today, per recording (hidden and merely marked ones)."""
    ids = list(set(recording_ids))
    if not ids:
        return {}
    rows = session.exec(
        select(Restriction).where(col(Restriction.recording_id).in_(ids), in_force(today))
    ).all()
    spans: dict[int, list[Span]] = {}
    for r in rows:
        spans.setdefault(r.recording_id, []).append(Span(r.start, r.end, r.level))
    return spans


def overlapping_level(start: float, end: float, spans: Sequence[Span]) -> RestrictionLevel | None:
    """The strictest restriction level overlapping [start, end], if any."""
    order = {RestrictionLevel.off_record: 0, RestrictionLevel.deep_background: 1,
             RestrictionLevel.embargo: 2, RestrictionLevel.background: 3}
    hits = [s.level for s in spans if s.start < end and s.end > start]
    return min(hits, key=order.__getitem__) if hits else None


def is_hidden(level: RestrictionLevel | None) -> bool:
    return level in HIDDEN_LEVELS


def in_force(today: date | None = None) -> Any:
    """SQL: the restriction applies today; ``until`` is the day it lifts."""
    return sa.or_(col(Restriction.until).is_(None),
                  col(Restriction.until) > (today or date.today()))


def hiding_restriction(today: date | None = None) -> list[Any]:
    """SQL conditions on Restriction: it withholds its span from authors today
    (off-record and deep-background spans in force)."""
    return [col(Restriction.level).in_([lv.value for lv in HIDDEN_LEVELS]), in_force(today)]


def hidden_segment_clause(today: date | None = None) -> Any:
    """SQL: true for segments overlapping an active off-record/deep-background span.

    Used to leave such segments out of search *before* ranking and counting, so that
    neither results, snippets nor counts reveal them.
    """
    return sa.exists().where(
        col(Restriction.recording_id) == col(Segment.recording_id),
        col(Restriction.start) < col(Segment.end),
        col(Restriction.end) > col(Segment.start),
        *hiding_restriction(today),
    )
