"""How a refusal from the domain (``service.errors``) looks over HTTP.

One table of statuses, used by the app's exception handler for the API and by the
pages (``service.web.common``), so both answer a refusal the same way.
"""

from __future__ import annotations

import logging
import sqlite3

import sqlalchemy as sa
from fastapi import Request, status
from fastapi.responses import JSONResponse

from service.db import RETRY_AFTER_S, SQLITE_UNAVAILABLE
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

log = logging.getLogger("sourcebook.db")

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


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A request that could not reach the database: a clean 503, not a 500 and a traceback.

    OperationalError/InterfaceError mean the connection failed (server down, restarted,
    network cut) or, on SQLite, that the file stayed locked past the busy timeout; a pool
    TimeoutError means every connection stayed busy for ``pool_timeout``. All pass: the
    pool's pre-ping replaces dead connections, so the next request recovers without a
    restart. The request's transaction was rolled back when its session
    closed, so a write either committed before the failure or not at all.
    """
    orig = getattr(exc, "orig", None)
    if isinstance(orig, sqlite3.OperationalError) and not any(
            w in str(orig).lower() for w in SQLITE_UNAVAILABLE):
        # SQLite also says OperationalError for a bad query ("no such column"): a bug,
        # which must stay a 500 with its traceback rather than pose as an outage.
        raise exc
    locked = "locked" in str(exc).lower()
    pool_wait = isinstance(exc, sa.exc.TimeoutError)
    log.warning("%s %s: database %s: %s", request.method, request.url.path,
                "busy" if locked or pool_wait else "unreachable",
                str(exc).splitlines()[0][:300])
    if pool_wait:
        detail = ("The server is overloaded: no database connection came free in time. "
                  f"Nothing was changed by this request; retry in {RETRY_AFTER_S} seconds.")
    elif locked:
        detail = ("The database is busy (another write holds the lock). Nothing was "
                  f"changed by this request; retry in {RETRY_AFTER_S} seconds.")
    else:
        detail = ("The database is unreachable right now, so this request could not be "
                  f"completed. Retry in {RETRY_AFTER_S} seconds; if it persists, check "
                  "that PostgreSQL is running and SOURCEBOOK_DATABASE_URL points at it "
                  "(GET /readyz shows the reason).")
    return JSONResponse(status_code=503, content={"detail": detail},
                        headers={"Retry-After": str(RETRY_AFTER_S)})
