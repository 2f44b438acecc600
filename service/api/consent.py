"""/api/v1 routes for consent (filled in by its issue)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["consent"])
