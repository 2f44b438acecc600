"""The interactive API docs (/docs): Swagger UI from vendored files, under the CSP.

FastAPI's own /docs page loads Swagger UI from a CDN (nothing loads offline, and the
CSP forbids it) and starts it with an inline script (which the CSP forbids too). This
page loads the same swagger-ui-dist files from /static/vendor/swagger-ui and starts
them from /static/docs.js. /redoc and the OAuth2 redirect page are off: the API uses
bearer tokens, which the Authorize button takes as they are.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from service.web.common import templates

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json."""
    return templates.TemplateResponse(request, "docs.html",
                                      {"openapi_url": request.app.openapi_url})
