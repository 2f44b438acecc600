"""/api/v1 routes for chapters (filled in by its issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["chapters"])
