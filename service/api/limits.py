"""Request body limits, enforced before a body is read or parsed.

FastAPI reads a JSON body whole into memory and parses it before any validation runs, so
a ``max_length`` on a field comes too late for a 200 MB request. ``BodyLimit`` sits in
front of the app:

* a declared ``Content-Length`` over the limit is refused with 413 before a byte is read;
* a body without one (chunked) is counted as it streams, and refused the moment it
  crosses the limit; what was read is dropped with the request.

Limits by route:

* uploads (multipart to the recording and consent-document routes) stream to disk through
  ``service.api.upload``, which bounds the file and every other part itself: not counted here;
* transcript, outline and manuscript imports (SRT, WebVTT, Sourcebook JSON, Markdown):
  ``SOURCEBOOK_MAX_IMPORT_MB``, since a 3-hour interview's VTT is several MiB;
* every other body (JSON, the sign-in form ...): ``SOURCEBOOK_MAX_JSON_KB``.
"""

from __future__ import annotations

import json
import re

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings

API = "/api/v1"
#: Multipart routes that stream their parts to disk (service.api.upload bounds them).
UPLOAD_ROUTES = (re.compile(rf"^{API}/recordings/?$"),
                 re.compile(rf"^{API}/consents/[^/]+/document/?$"))
#: Routes whose body is an imported document rather than a JSON object.
IMPORT_ROUTES = (re.compile(rf"^{API}/recordings/[^/]+/transcript/?$"),
                 re.compile(rf"^{API}/chapters/import/?$"),
                 re.compile(rf"^{API}/chapters/[^/]+/verify/?$"))


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body crosses its limit; the app's
    HTTPException handler turns it into the 413 the client sees."""

    def __init__(self, detail: str) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, detail)


def _matches(patterns: tuple[re.Pattern[str], ...], path: str) -> bool:
    return any(p.match(path) for p in patterns)


def body_limit(settings: Settings, method: str, path: str, content_type: str,
               ) -> tuple[int | None, str]:
    """(limit in bytes or None for "bounded elsewhere", the 413 message) for a request."""
    multipart = content_type.split(";")[0].strip().lower() == "multipart/form-data"
    if method == "POST" and multipart and _matches(UPLOAD_ROUTES, path):
        return None, ""
    if _matches(IMPORT_ROUTES, path):
        mib = settings.max_import_mb
        return settings.max_import_bytes, (
            f"The body is larger than the import limit of {mib} MiB. Split the transcript "
            "or text into parts, or ask the server admin to raise SOURCEBOOK_MAX_IMPORT_MB.")
    kib = settings.max_json_kb
    return settings.max_json_bytes, (
        f"The request body is larger than the limit of {kib} KiB. Send less at once (long "
        "text belongs in a file upload or an import), or ask the server admin to raise "
        "SOURCEBOOK_MAX_JSON_KB.")


class BodyLimit:
    """ASGI middleware: 413 for request bodies over their route's limit (module doc)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        limit, detail = body_limit(self.settings, scope["method"], scope["path"],
                                   headers.get(b"content-type", b"").decode("latin-1"))
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, detail)
            return

        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(detail)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge:
            # Normally the app's HTTPException handler answered already; this covers a
            # read outside its reach (a middleware further in).
            if started:
                raise
            await _refuse(send, detail)


async def _refuse(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status.HTTP_413_CONTENT_TOO_LARGE,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
