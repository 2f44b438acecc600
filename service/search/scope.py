"""What a search may look at: the recordings a user may see, a person's speaker labels,
and the bounds on counting and ranking that keep every query cheap."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from service.access import recording_filter
from service.models.recordings import Recording, Speaker
from service.models.users import User

#: Counting stops here: past it the count is a lower bound (``count_exact`` false). An
#: exact count of a word in half the archive costs a pass over half a million postings.
COUNT_CAP = 10_000


#: When more segments match than this, relevance is computed over the newest
#: RANK_WINDOW matches and the rest follow newest first: scoring reads each candidate's
#: row, ~5 us a hit, so ranking 200 000 hits would take a second.
RANK_WINDOW = 2_000


def id_list(session: Session, query: Any) -> list[int]:
    """A query's single column as a list, on the bare connection: the ORM's per-row
    handling was most of the cost of the up to COUNT_CAP ids a search reads."""
    return list(session.connection().execute(query).scalars().all())


def invisible_recordings(session: Session, user: User) -> list[int]:
    visible = recording_filter(user)
    if visible is True:
        return []
    return id_list(session, sa.select(col(Recording.id)).where(~visible))


def person_labels(session: Session, person_id: int) -> list[tuple[int, str]]:
    return [(r, label) for r, label in session.connection().execute(
        sa.select(col(Speaker.recording_id), col(Speaker.label))
        .where(col(Speaker.person_id) == person_id)).all()]
