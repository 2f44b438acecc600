"""Errors the service raises on purpose: what a caller asked for cannot be done.

::

    SourcebookError            a refusal; the message says what is wrong and what to do
    ├── NotFound               no such object, or one the caller may not see (same words)
    ├── Unauthenticated        no usable credentials (unknown, revoked or expired token)
    ├── Forbidden              the caller's role may not do this to this object
    ├── Conflict               the stored state forbids it now (a duplicate, a withdrawn consent)
    ├── Invalid                well formed, but a value is wrong (a span past the end, a bad id)
    ├── Malformed              the body cannot be read as what it claims to be (a broken file)
    ├── TooLarge               over a size limit
    └── Unsupported            a kind of content this endpoint does not take

Domain code (crud, the parsers, the rules) raises these, or a subclass that names its
concern (``ChapterProblem(Invalid)``, ``NoTranscript(NotFound)``); it knows nothing of
HTTP. The HTTP layer maps each branch to one status in one place
(``service.api.errors``), answering ``{"detail": str(exc)}`` as API.md describes; the
CLI prints the same message.

``NotFound`` is also a ``LookupError`` and ``Invalid`` and ``Malformed`` are also
``ValueError``s, so callers that only care about "missing" or "bad value" need not know
the tree.
"""

from __future__ import annotations


class SourcebookError(Exception):
    """Base class of every refusal; ``str(exc)`` is the message for the caller."""


class NotFound(SourcebookError, LookupError):
    """The object does not exist, or the caller may not see it (answered identically)."""


class Unauthenticated(SourcebookError):
    """The credentials are missing, unknown, revoked or expired."""


class Forbidden(SourcebookError):
    """The caller's role may not do this."""


class Conflict(SourcebookError):
    """The current state of stored data forbids the change."""


class Invalid(SourcebookError, ValueError):
    """A value in the request is wrong; the message names it and the fix."""


class Malformed(SourcebookError, ValueError):
    """The body cannot be read as what it claims to be (or is empty)."""


class TooLarge(SourcebookError):
    """The body or a part of it is over a limit."""


class Unsupported(SourcebookError):
    """The content is of a kind this operation does not take."""


def not_found(kind: str, object_id: int | str) -> NotFound:
    """The one message for a missing or invisible object, so ids cannot be probed."""
    return NotFound(
        f"No {kind} with id {object_id} (or you may not see it). Check the id with the list "
        f"endpoint."
    )
