"""Object-level visibility: which recordings (and what hangs off them) a user may see.

An object a user may not see is :class:`~service.errors.NotFound`, exactly like one
that does not exist, so ids cannot be probed. Role checks (403) are in
``service.api.deps``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import or_
from sqlmodel import Session

from service.errors import not_found
from service.models.recordings import Access, Recording
from service.models.users import Role, User

T = TypeVar("T")


def recording_filter(user: User) -> Any:
    """A WHERE clause limiting a query on Recording to what ``user`` may see."""
    if user.role in (Role.editor, Role.admin):
        return True
    return or_(Recording.access == Access.team, Recording.created_by == user.id)  # type: ignore[arg-type]


def can_see_recording(user: User, recording: Recording) -> bool:
    if user.role in (Role.editor, Role.admin):
        return True
    return recording.access == Access.team or recording.created_by == user.id


def get_child(session: Session, user: User, model: type[T], object_id: int, kind: str) -> T:
    """An object with a ``recording_id`` (job, segment ...): NotFound unless its recording
    is visible to ``user``, with the same message as a missing object."""
    obj = session.get(model, object_id)
    recording = None if obj is None else session.get(Recording, obj.recording_id)  # type: ignore[attr-defined]
    if recording is None or not can_see_recording(user, recording):
        raise not_found(kind, object_id)
    return obj  # type: ignore[return-value]


def get_recording(session: Session, user: User, recording_id: int) -> Recording:
    """The recording if it exists and ``user`` may see it, else NotFound."""
    recording = session.get(Recording, recording_id)
    if recording is None or not can_see_recording(user, recording):
        raise not_found("recording", recording_id)
    return recording
