"""Server-rendered pages for authors, editors and researchers (issue 7).

Pages are Jinja2 templates over the same crud and rule functions the REST API uses;
what a page changes, its JavaScript sends to ``/api/v1`` with the session cookie and
the CSRF header (``service.auth``). No front-end build: plain JS and a vendored htmx.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from service.web import admin, book, docs, glossary, pages
from service.web.common import STATIC_DIR


def install(app: FastAPI) -> None:
    """Mount the pages and their static files on ``app``."""
    app.include_router(pages.router)
    app.include_router(book.router)
    app.include_router(docs.router)
    app.include_router(glossary.router)
    app.include_router(admin.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
