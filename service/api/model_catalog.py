"""/api/v1/models: the models a transcription request may name."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service import model_catalog
from service.api.deps import AnyUser
from service.models.base import Page
from service.models.users import Role

router = APIRouter(tags=["models"])


@router.get("/models", response_model=Page[model_catalog.ModelPublic])
def list_models(request: Request, user: AnyUser) -> Page[model_catalog.ModelPublic]:
    """Installed models (ASR and diarization), and the team's own from server settings.

    Send ``backend`` and ``model`` from here to POST /recordings/{id}/transcribe.
    """
    rows = [model_catalog.public(e, show_path=user.role == Role.admin)
            for e in model_catalog.catalog(request.app.state.settings)]
    return Page(data=rows, count=len(rows))
