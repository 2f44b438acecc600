"""How a refusal from the domain (``service.errors``) looks over HTTP.

One table of statuses, used by the app's exception handler for the API and by the
pages (``service.web.common``), so both answer a refusal the same way.
"""

from __future__ import annotations

from fastapi import Request, status
from fastapi.responses import JSONResponse

from service.errors import (
    Conflict,
    Forbidden,
    Invalid,
    Malformed,
    NotFound,
    SourcebookError,
    TooLarge,
    Unauthenticated,
    Unsupported,
)

STATUS: dict[type[SourcebookError], int] = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Unauthenticated: status.HTTP_401_UNAUTHORIZED,
    Forbidden: status.HTTP_403_FORBIDDEN,
    Conflict: status.HTTP_409_CONFLICT,
    Invalid: status.HTTP_422_UNPROCESSABLE_CONTENT,
    Malformed: status.HTTP_400_BAD_REQUEST,
    TooLarge: status.HTTP_413_CONTENT_TOO_LARGE,
    Unsupported: status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
}


def status_of(exc: SourcebookError) -> int:
    """The status of the nearest branch of the tree ``exc`` belongs to."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    # A bare SourcebookError is still a refusal of what the client sent.
    return status.HTTP_400_BAD_REQUEST


async def refused(request: Request, exc: Exception) -> JSONResponse:
    """The app's handler for :class:`SourcebookError`: ``{"detail": message}``."""
    assert isinstance(exc, SourcebookError)
    code = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
    return JSONResponse(status_code=code, content={"detail": str(exc)}, headers=headers)
