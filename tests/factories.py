"""Test data: media made with real ffmpeg, people, and uploads through the API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / ".venv" / "lib" / "python3.11" / "site-packages"
PYANNOTE_SAMPLE = SITE / "pyannote" / "audio" / "sample" / "sample.wav"


def make_tone(path: Path, seconds: float = 2.0, freq: int = 440, fmt: list[str] | None = None,
              ) -> Path:
    """A sine tone (with a little noise, so it is not 'silent') in whatever format."""
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}",
        *(fmt or []), str(path),
    ]
    subprocess.run(cmd, check=True)
    return path


def person_payload(name: str = "闫俊杰", **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "founder", "organisation": "MiniMax"} | kw


def upload(api: Any, path: Path, meta: dict[str, Any] | None = None, role: str = "researcher",
           filename: str | None = None) -> Any:
    """POST a file to /api/v1/recordings as multipart."""
    meta = meta if meta is not None else {"title": f"Interview {path.stem}"}
    with path.open("rb") as f:
        return api.client.post(
            "/api/v1/recordings",
            headers=api.headers(role),
            files={"file": (filename or path.name, f, "application/octet-stream")},
            data={"meta": json.dumps(meta)},
        )


def add_transcript(api: Any, recording_id: int, segments: list[tuple[float, float, str, str]],
                   *, language: str = "zh", backend: str = "import") -> int:
    """Store a transcript version through the same write path as the worker; returns its id."""
    from sqlmodel import Session

    from service.crud.transcripts import SegmentIn, add_version

    with Session(api.engine) as session:
        t = add_version(
            session, recording_id=recording_id,
            segments=[SegmentIn(start=a, end=b, speaker=spk, text=text, language=language)
                      for a, b, spk, text in segments],
            backend=backend, model="test", language=language, created_by=None,
        )
        session.commit()
        assert t.id is not None
        return t.id
