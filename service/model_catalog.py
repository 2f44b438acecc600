"""The models a request may name: the installed ones, plus the team's own from settings.

Over the API a model is only ever a *name* from this catalogue. The file behind a name is
either an entry that `sourcebook models install` built under the models directory or a
path the server admin put in SOURCEBOOK_WHISPER_MODEL / SOURCEBOOK_OPENAI_WHISPER_MODEL /
SOURCEBOOK_DIARIZATION_PIPELINE. A path in a request never reaches a loader: a model
file is code to ``torch.load`` (pickle), and an error from loading any other file quotes
its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlmodel import Field, SQLModel

from pipelines.errors import ModelNotFoundError
from pipelines.models import (
    CT2_DIRS,
    DIARIZATION_DIR,
    OPENAI_FILES,
    list_models,
    resolve_ct2_model,
    resolve_diarization_pipeline,
    resolve_openai_checkpoint,
    size_bytes,
)
from service.config import Settings
from service.errors import Invalid

#: What ``languages`` holds for a model that takes any language Whisper knows.
ANY_LANGUAGE = "any"
_BUNDLED_BACKEND = {"ct2": "faster-whisper", "openai": "openai-whisper", "pyannote": "pyannote"}
_BUNDLED_NAMES = {
    **{d: n for n, d in CT2_DIRS.items()},
    **{f: n for n, f in OPENAI_FILES.items()},
    DIARIZATION_DIR: "pyannote",
}


class UnknownModel(Invalid):
    """A request or a job names a backend or model that is not installed; the message
    lists the valid choices."""


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    kind: Literal["asr", "diarization"]
    backend: str
    #: What the pipelines resolve: a bundled name or the admin's configured path.
    spec: str
    path: Path
    source: Literal["bundled", "settings"]
    size_bytes: int
    default: bool

    @property
    def multilingual(self) -> bool:
        # Whisper's English-only checkpoints are named *.en by convention (tiny.en ...).
        return not (self.kind == "asr" and self.name.endswith(".en"))


class ModelPublic(SQLModel):
    """An installed model as ``GET /api/v1/models`` lists it."""

    name: str = Field(description="What to send as `model` (with its `backend`).")
    kind: Literal["asr", "diarization"]
    backend: str = Field(description="faster-whisper, openai-whisper or pyannote")
    languages: list[str] = Field(description="['en'] for English-only models; ['any'] for "
                                 "models that take any language (given or detected).")
    multilingual: bool
    default: bool = Field(description="Used when a transcription request names no backend "
                                      "and no model.")
    source: Literal["bundled", "settings"] = Field(
        description="bundled: built by `sourcebook models install`; settings: the server "
                    "admin's own model.")
    size_bytes: int
    path: str | None = Field(None, description="Where it lies on the server (admins only).")


def _configured_name(spec: str, taken: set[str]) -> str:
    path = Path(spec)
    name = path.stem if path.suffix == ".pt" else path.name
    return name if name and name not in taken else f"custom-{name or 'model'}"


def catalog(settings: Settings) -> list[CatalogEntry]:
    """Every model a job may use now: installed bundled ones and the configured ones."""
    models_dir = settings.models_dir
    defaults = {"faster-whisper": settings.whisper_model,
                "openai-whisper": settings.openai_whisper_model}
    entries: list[CatalogEntry] = []
    for info in list_models(models_dir):
        backend = _BUNDLED_BACKEND.get(info.kind)
        if backend is None:
            continue
        name = _BUNDLED_NAMES.get(info.name, info.name)
        if backend == "pyannote":
            default = not settings.diarization_pipeline
        else:
            default = backend == settings.asr_backend and defaults[backend] == name
        entries.append(CatalogEntry(
            name=name, kind="diarization" if backend == "pyannote" else "asr",
            backend=backend, spec=name, path=info.path, source="bundled",
            size_bytes=info.size_bytes, default=default))
    configured = [("faster-whisper", settings.whisper_model, CT2_DIRS, resolve_ct2_model),
                  ("openai-whisper", settings.openai_whisper_model, OPENAI_FILES,
                   resolve_openai_checkpoint)]
    for backend, spec, bundled, resolve in configured:
        if spec in bundled:
            continue
        try:
            path = resolve(spec, models_dir)
        except ModelNotFoundError:
            continue  # readyz and the worker report a configured model that is missing
        taken = {e.name for e in entries if e.backend == backend}
        entries.append(CatalogEntry(
            name=_configured_name(spec, taken), kind="asr", backend=backend, spec=spec,
            path=path, source="settings", size_bytes=size_bytes(path),
            default=backend == settings.asr_backend))
    if settings.diarization_pipeline:
        try:
            path = resolve_diarization_pipeline(settings.diarization_pipeline, models_dir)
        except ModelNotFoundError:
            pass
        else:
            taken = {e.name for e in entries if e.backend == "pyannote"}
            entries.append(CatalogEntry(
                name=_configured_name(str(path), taken), kind="diarization",
                backend="pyannote", spec=settings.diarization_pipeline, path=path,
                source="settings", size_bytes=size_bytes(path), default=True))
    return sorted(entries, key=lambda e: (e.kind != "asr", e.backend, e.source, e.name))


def public(entry: CatalogEntry, *, show_path: bool) -> ModelPublic:
    return ModelPublic(
        name=entry.name, kind=entry.kind, backend=entry.backend,
        languages=[ANY_LANGUAGE] if entry.multilingual else ["en"],
        multilingual=entry.multilingual, default=entry.default, source=entry.source,
        size_bytes=entry.size_bytes, path=str(entry.path) if show_path else None)


def _choices(entries: list[CatalogEntry], backend: str) -> str:
    names = [e.name for e in entries if e.backend == backend]
    return ", ".join(names) if names else "none installed"


def check_request(settings: Settings, *, backend: str | None, model: str | None) -> None:
    """Refuse (:class:`UnknownModel`) a backend or model that is not installed.

    ``model`` must be a catalogue name; a path is refused whatever it points at.
    """
    entries = [e for e in catalog(settings) if e.kind == "asr"]
    installed = sorted({e.backend for e in entries})
    if backend is not None and backend not in installed:
        raise UnknownModel(
            f"Unknown ASR backend {backend[:100]!r}: installed backends are "
            f"{', '.join(installed) or 'none'} (GET /api/v1/models lists their models).")
    chosen = backend or settings.asr_backend
    if model is None:
        return
    if "/" in model or "\\" in model or model in {".", ".."}:
        raise UnknownModel(
            "'model' must be the name of an installed model, not a path. Choose one of "
            f"{_choices(entries, chosen)} for {chosen} (GET /api/v1/models); a server admin "
            "can add a model of the team's own with SOURCEBOOK_WHISPER_MODEL or "
            "SOURCEBOOK_OPENAI_WHISPER_MODEL.")
    if not any(e.backend == chosen and e.name == model for e in entries):
        elsewhere = sorted(e.backend for e in entries if e.name == model)
        hint = (f" It is installed for {', '.join(elsewhere)}: send that as 'backend'."
                if elsewhere else "")
        raise UnknownModel(
            f"Unknown model {model[:100]!r} for {chosen}: choose one of "
            f"{_choices(entries, chosen)} (GET /api/v1/models).{hint}")


def spec_for(settings: Settings, *, backend: str | None, model: str | None) -> tuple[str, str]:
    """(backend, spec) for the pipelines from a job's stored options.

    The worker's own check: a job row naming anything but a catalogue model (written by
    an older version, or by hand) raises :class:`UnknownModel` instead of loading it.
    """
    try:
        chosen, default = settings.asr_default(backend)
    except ValueError as exc:
        raise UnknownModel(str(exc)) from None
    if model is None:  # the server's own setting: trusted, may be a path
        return chosen, default
    for entry in catalog(settings):
        if entry.kind == "asr" and entry.backend == chosen and entry.name == model:
            return chosen, entry.spec
    shown = "a path" if ("/" in model or "\\" in model) else repr(model[:100])
    raise UnknownModel(f"this job names {shown} as its {chosen} model, which is not an "
                       "installed model; start a new job with a model from "
                       "GET /api/v1/models")
