"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlmodel import Session

from pipelines.device import resolve_device
from pipelines.errors import ModelError
from pipelines.models import resolve_ct2_model, resolve_diarization_pipeline
from service import visibility, web
from service.api import (
    audit,
    chapters,
    consent,
    glossary,
    health,
    jobs,
    model_catalog,
    people,
    quotes,
    recordings,
    search,
    segment_edits,
    transcripts,
    users,
)
from service.api.errors import database_unavailable, refused
from service.api.headers import SecurityHeaders
from service.api.limits import BodyLimit
from service.config import Settings, get_settings
from service.crud.recordings import finish_interrupted_placements
from service.db import DB_UNAVAILABLE_ERRORS, make_engine, migrate
from service.errors import SourcebookError
from service.storage import Storage
from service.worker.process import start_embedded
from service.worker.queue import HueyQueue, JobQueue, make_huey

log = logging.getLogger("sourcebook")

API_PREFIX = "/api/v1"


def _models_problem(settings: Settings) -> str | None:
    try:
        resolve_ct2_model(settings.whisper_model, settings.models_dir)
        resolve_diarization_pipeline(settings.diarization_pipeline or None, settings.models_dir)
    except ModelError as exc:
        return str(exc)
    return None


def _worker_device(settings: Settings) -> tuple[str, str | None]:
    """(device, problem): where this process's job threads run models, as /readyz shows it.

    SOURCEBOOK_DEVICE=cpu (the default) imports nothing; auto and cuda look for a device.
    """
    try:
        return resolve_device(settings.device), None
    except ModelError as exc:
        return settings.device, str(exc)


def create_app(settings: Settings | None = None, *, queue: JobQueue | None = None) -> FastAPI:
    """Build the app; storage, engine and queue are set up in its lifespan."""
    settings = settings or get_settings()
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    visibility.word_margin = settings.withhold_margin

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ensure_dirs()
        engine = make_engine(settings)
        migrate(engine, settings)
        storage = Storage(settings.recordings_dir)
        storage.ensure()
        removed = storage.cleanup_stale_temp()
        if removed:
            log.warning("removed %d temp file(s) left by interrupted uploads", len(removed))
        with Session(engine) as session:
            orphans = finish_interrupted_placements(session, storage)
        if orphans:
            log.warning("removed %d original(s) placed by an upload that was killed before "
                        "its row was committed: %s", len(orphans), ", ".join(orphans))
        app.state.settings = settings
        app.state.engine = engine
        app.state.storage = storage
        app.state.token_key = settings.token_key()
        jobs: JobQueue = queue if queue is not None else HueyQueue(make_huey(settings))
        app.state.jobs = jobs
        app.state.models_problem = lambda: _models_problem(settings)
        device, app.state.device_problem = _worker_device(settings)
        app.state.device = device
        if app.state.device_problem:
            # Jobs stay queued rather than fail one by one; /readyz names the fix.
            log.error("no embedded job threads: %s", app.state.device_problem)
            embedded = None
        else:
            embedded = start_embedded(settings, engine, storage, jobs, device)
        try:
            yield
        finally:
            if embedded is not None:
                embedded()
            engine.dispose()

    app = FastAPI(
        title="Sourcebook",
        version="0.1.0",
        summary="Interview archive: local transcription, quotes, citations and consent.",
        lifespan=lifespan,
        # /docs is served by service.web.docs from vendored files (offline, under the CSP).
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    # Request body limits (issue 13, item 4): 413 before an oversized body is read.
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse(
            status_code=422,
            content={"detail": f"Invalid request: {problems[:1000]}", "errors": _jsonable(exc)},
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers
        )

    # Every refusal from the domain (service.errors): its status comes from one table.
    app.add_exception_handler(SourcebookError, refused)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # SQLite cannot bind integers beyond 64 bits; no row can have such an id or offset.
        return JSONResponse(status_code=422, content={
            "detail": "A number in the request is too large for the database; ids and "
                      f"offsets must be below {2**63}."})

    @app.exception_handler(sa.exc.DataError)
    async def _data_error(request: Request, exc: sa.exc.DataError) -> JSONResponse:
        if "NUL (0x00)" in str(exc.orig):  # PostgreSQL text cannot hold NUL (SQLite can)
            return JSONResponse(status_code=422, content={"detail": "Text may not contain "
                                "NUL (\\u0000) characters; remove them and send it again."})
        # PostgreSQL's numeric_value_out_of_range: a client's number exceeds the column type.
        if getattr(exc.orig, "sqlstate", None) != "22003":
            raise exc
        return JSONResponse(status_code=422, content={
            "detail": "A number in the request is out of range for the database; check ids, "
                      "offsets and times."})

    for error in DB_UNAVAILABLE_ERRORS:  # database out of reach: 503, see service.db
        app.add_exception_handler(error, database_unavailable)
    app.include_router(health.router)
    for module in (users, people, recordings, jobs, transcripts, segment_edits, search,
                   chapters, quotes, consent, audit, model_catalog, glossary):
        app.include_router(module.router, prefix=API_PREFIX)
    web.install(app)  # the pages (issue 7); after the API so /api paths win
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """Make the documented 422 body the one the handlers above send.

    FastAPI documents 422 as ``{detail: [ValidationError]}``, but every error here is
    ``{"detail": "<message>"}`` (API.md), with the field errors in ``errors`` for 422s
    that come from request validation.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = build().get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = {
                    "title": "HTTPValidationError",
                    "type": "object",
                    "required": ["detail"],
                    "properties": {
                        "detail": {"type": "string", "title": "Detail"},
                        "errors": {"type": "array", "title": "Errors",
                                   "items": {"$ref": "#/components/schemas/ValidationError"}},
                    },
                }
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def _jsonable(exc: RequestValidationError) -> list[dict[str, object]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
    ]
