"""/healthz and /readyz (no auth)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.db import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _check(request: Request) -> dict[str, Any]:
    state = request.app.state
    problems: dict[str, str] = {}
    try:
        with state.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        if current_revision(state.engine) != head_revision(state.settings):
            problems["database"] = "schema is not at the latest revision; run `sourcebook migrate`"
    except Exception as exc:
        problems["database"] = f"unreachable: {type(exc).__name__}: {str(exc)[:200]}"
    try:
        state.jobs.ping()
    except Exception as exc:
        problems["queue"] = f"unreachable: {type(exc).__name__}: {str(exc)[:200]}"
    models_problem = state.models_problem()
    if models_problem:
        problems["models"] = models_problem
    if state.device_problem:
        problems["device"] = state.device_problem
    return problems


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database, the queue, the models directory and the device are usable."""
    problems = await run_in_threadpool(_check, request)
    if problems:
        return JSONResponse(
            status_code=503,
            content={"status": "unavailable", "detail": "; ".join(
                f"{k}: {v}" for k, v in problems.items()), "checks": problems},
        )
    # The device this process's job threads run models on (cpu unless SOURCEBOOK_DEVICE
    # says otherwise); a separate worker records its own in each job's options.
    return JSONResponse({"status": "ok", "checks": {"database": "ok", "queue": "ok",
                                                     "models": "ok",
                                                     "device": request.app.state.device}})
