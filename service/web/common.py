"""What every page shares: the route class, the templates, the signed-in user."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from service.api.errors import status_of
from service.auth import (
    ADMIN,
    AUTHORING,
    EDITORIAL,
    RESEARCH,
    SESSION_COOKIE,
    STAFF,
    csrf_token,
)
from service.errors import SourcebookError
from service.models.clock import ACCEPTED
from service.models.users import User

STATIC_DIR = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _clock(seconds: float | None) -> str:
    """1234.5 -> '20:34' (or 'h:mm:ss'), the way the pages show times."""
    if seconds is None:
        return ""
    total = int(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _marks(snippet: str, open_mark: str, close_mark: str) -> Markup:
    """A search snippet with its hit marks as <mark>, everything else escaped."""
    escaped = str(escape(snippet))
    return Markup(escaped.replace(str(escape(open_mark)), "<mark>")  # noqa: S704 - escaped above
                  .replace(str(escape(close_mark)), "</mark>"))


def _word_spans(words: Sequence[dict[str, Any]]) -> Markup:
    """A segment's stored words as ``<span class="w">`` with their times, escaped.

    Built here rather than in a template loop: Jinja took ~0.85 s for the 75 000 words
    of a 3-hour interview, this ~0.1 s.
    """
    return Markup("".join(  # noqa: S704 - every word's text is escaped
        f'<span class="w" data-s="{w["start"]}" data-e="{w["end"]}">{escape(w["text"])}</span>'
        for w in words))


def _isodate(value: date | None) -> str:
    """2025-03-01 whatever the reader's locale: the pages never show 03/01/2025."""
    if value is None:
        return ""
    return (value.date() if isinstance(value, datetime) else value).isoformat()


templates.env.filters["clock"] = _clock
templates.env.filters["isodate"] = _isodate
templates.env.globals["clock_formats"] = ACCEPTED
templates.env.filters["word_spans"] = _word_spans
templates.env.filters["marks"] = _marks


def login_redirect(request: Request) -> RedirectResponse:
    """To the sign-in page, coming back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        # The cookie holds a revoked or unknown token: drop it so sign-in starts clean.
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


class PageRoute(APIRoute):
    """A route whose HTTP errors become pages: 401 signs in, 403/404 explain in HTML.

    The checks themselves are the API's (``require``, ``service.access``); only how a
    refusal looks differs, so pages can never be more permissive than the API.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:
                return refusal_page(request, exc.status_code, str(exc.detail))
            except SourcebookError as exc:
                return refusal_page(request, status_of(exc), str(exc))

        return page_handler


def refusal_page(request: Request, status_code: int, detail: str) -> Response:
    """A refused request as a page: 401 signs in, anything else explains in HTML."""
    if status_code == 401:
        return login_redirect(request)
    user: User | None = getattr(request.state, "user", None)
    if user is not None:
        # Signed in but refused: the navigation stays, so the way on is one click.
        return render(request, user, "error.html", {"status": status_code, "detail": detail},
                      status_code=status_code)
    return templates.TemplateResponse(
        request, "error.html",
        {"status": status_code, "detail": detail, "user": None, "csrf": ""},
        status_code=status_code)


def render(request: Request, user: User, name: str, context: dict[str, Any],
           status_code: int = 200) -> HTMLResponse:
    """A page with the navigation for ``user``'s role and the CSRF value for its scripts."""
    token = request.cookies.get(SESSION_COOKIE, "")
    base = {
        "user": user,
        "csrf": csrf_token(request.app.state.token_key, token) if token else "",
        "can_research": user.role in RESEARCH,
        "can_author": user.role in AUTHORING,
        "can_edit": user.role in EDITORIAL,
        "is_staff": user.role in STAFF,
        "is_admin": user.role in ADMIN,
        "path": request.url.path,
    }
    return templates.TemplateResponse(request, name, base | context, status_code=status_code)
