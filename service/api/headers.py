"""Security headers on every response: one ASGI middleware for pages, API and files.

- ``Content-Security-Policy``: scripts, styles, images, audio and fetches only from this
  origin; no inline script or style, no eval, no plugins, no ``<base>``, no framing, and
  forms post only here. A stored title that slipped past escaping still could not run.
  The pages keep to it: every script is a file under /static, no template has an inline
  handler, ``javascript:`` URL or ``style`` attribute, and htmx is configured (meta
  ``htmx-config``) not to inject its indicator ``<style>``, eval or run swapped scripts.
- ``X-Frame-Options: DENY`` (older browsers' frame-ancestors), ``nosniff``, and
  ``Referrer-Policy: no-referrer``: a transcript URL names a recording and a moment.
- ``Cache-Control: no-store`` on everything but /static: pages, API JSON, exports and
  audio carry archive content, which must not stay in a shared or browser cache after a
  restriction, a withdrawal or sign-out.

The API docs page (/docs, Swagger UI, served from vendored files) gets the same policy
except that it may show ``data:`` images, which swagger-ui.css uses for its icons.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
DOCS_CSP = CSP.replace("img-src 'self'", "img-src 'self' data:")
DOCS_PATH = "/docs"
#: Versionless files shipped with the code: the only responses a cache may keep.
STATIC_PREFIX = "/static/"

COMMON = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Adds the headers above to every HTTP response, whatever route or error made it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path == DOCS_PATH else CSP
        cacheable = path.startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = csp
                for name, value in COMMON.items():
                    headers[name] = value
                if not cacheable:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
