"""Model names, never paths (issue 13, item 3), through the real app on both databases.

The attack: ``POST /recordings/{id}/transcribe {"model": "/srv/data/secret_key"}`` was
queued, the worker handed the path to ``torch.load``, the job's error quoted the file's
first byte, and the job was retried three times.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from service.models.jobs import Job, JobState
from service.models.transcripts import Transcript
from service.worker import tasks
from tests.conftest import Api
from tests.factories import make_tone, upload
from tests.service.test_jobs import _context

SECRET_BYTES = b"xSECRET-api-key-0123456789"

BUNDLED = {("faster-whisper", "base"), ("faster-whisper", "tiny.en"),
           ("openai-whisper", "base"), ("openai-whisper", "tiny.en"), ("pyannote", "pyannote")}


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "srv" / "data" / "secret_key"
    path.parent.mkdir(parents=True)
    path.write_bytes(SECRET_BYTES)
    return path


@pytest.fixture
def torch_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file torch.load is asked to open (the real torch.load still runs)."""
    import torch

    calls: list[str] = []
    real: Callable[..., Any] = torch.load

    def spy(f: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(f))
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


def jobs(api: Api) -> int:
    with Session(api.engine) as session:
        return session.exec(select(func.count()).select_from(Job)).one()


def test_a_model_path_is_refused_at_request_time(api: Api, tmp_path: Path, secret: Path,
                                                 torch_loads: list[str]) -> None:
    body = upload(api, make_tone(tmp_path / "a.wav")).json()
    rid = body["recording"]["id"]
    # No run in the way: on the old code each request below was queued (202), not 409.
    api.client.post(f"/api/v1/jobs/{body['job']['id']}/cancel", headers=api.headers("researcher"))
    before = jobs(api)
    for body in ({"model": str(secret)},
                 {"backend": "openai-whisper", "model": str(secret)},
                 {"backend": "openai-whisper", "model": "../../srv/data/secret_key"},
                 {"backend": "faster-whisper", "model": str(api.settings.models_dir)},
                 {"model": "C:\\srv\\secret_key"},
                 {"model": "large-v9"},
                 {"backend": "nemo"}):
        r = api.client.post(f"/api/v1/recordings/{rid}/transcribe", json=body,
                            headers=api.headers("researcher"))
        assert r.status_code == 422, (body, r.text)
        detail = r.json()["detail"]
        # Names the valid choices, and never what the file holds.
        assert ("base" in detail and "tiny.en" in detail) or "faster-whisper" in detail
        assert "SECRET" not in detail and "'x'" not in detail
    assert jobs(api) == before
    assert torch_loads == []


def test_the_worker_refuses_a_job_row_naming_a_path(api: Api, tmp_path: Path, secret: Path,
                                                    torch_loads: list[str]) -> None:
    """Defence in depth: a row written before this check (or by hand) never loads a file."""
    jid = upload(api, make_tone(tmp_path / "a.wav")).json()["job"]["id"]
    with Session(api.engine) as session:
        job = session.get(Job, jid)
        assert job is not None
        job.options = {"backend": "openai-whisper", "model": str(secret)}
        session.add(job)
        session.commit()
    ctx = _context(api)
    tasks.execute(ctx, jid)
    with Session(api.engine) as session:
        job = session.get(Job, jid)
        assert job is not None
        assert job.state == JobState.failed and job.attempts == 1, (job.state, job.error)
        assert job.error is not None and "not an installed model" in job.error
        assert str(secret) not in job.error and "SECRET" not in job.error
    assert ctx.queue.sent == []  # no retry
    assert torch_loads == []


def test_models_lists_what_is_installed_by_name(api: Api) -> None:
    r = api.client.get("/api/v1/models", headers=api.headers("author"))
    assert r.status_code == 200, r.text
    rows = r.json()["data"]
    assert {(m["backend"], m["name"]) for m in rows} == BUNDLED
    assert r.json()["count"] == len(rows)
    by = {(m["backend"], m["name"]): m for m in rows}
    assert [k for k, m in by.items() if m["default"]] == [("faster-whisper", "base"),
                                                          ("pyannote", "pyannote")]
    assert by[("faster-whisper", "tiny.en")]["languages"] == ["en"]
    assert by[("openai-whisper", "base")]["multilingual"] is True
    assert by[("pyannote", "pyannote")]["kind"] == "diarization"
    assert all(m["path"] is None and m["size_bytes"] > 0 and m["source"] == "bundled"
               for m in rows)
    admin = api.client.get("/api/v1/models", headers=api.headers("admin")).json()["data"]
    assert all(m["path"] and Path(m["path"]).exists() for m in admin)
    assert api.client.get("/api/v1/models").status_code == 401


def test_a_configured_model_is_listed_by_name_and_runs(api: Api, tmp_path: Path,
                                                       torch_loads: list[str]) -> None:
    """The server admin's own checkpoint (a path in settings) is chosen by its name."""
    own = tmp_path / "team-models" / "team-tiny.en.pt"
    own.parent.mkdir()
    own.symlink_to(api.settings.models_dir / "whisper-tiny.en.pt")
    api.settings.openai_whisper_model = str(own)
    # A short tone keeps the real run quick; what matters is which file gets loaded.
    rid = upload(api, make_tone(tmp_path / "t.wav", seconds=3.0),
                 {"title": "tone", "language": "en"}).json()
    jid0, rid = rid["job"]["id"], rid["recording"]["id"]
    api.client.post(f"/api/v1/jobs/{jid0}/cancel", headers=api.headers("researcher"))

    listed = api.client.get("/api/v1/models", headers=api.headers("researcher")).json()["data"]
    mine = [m for m in listed if m["source"] == "settings"]
    assert [(m["backend"], m["name"], m["path"]) for m in mine] == [
        ("openai-whisper", "team-tiny.en", None)]
    assert str(tmp_path) not in str(listed)
    admin = api.client.get("/api/v1/models", headers=api.headers("admin")).json()["data"]
    assert [m["path"] for m in admin if m["source"] == "settings"] == [str(own)]

    # Its path is no more acceptable than any other; its name is.
    r = api.client.post(f"/api/v1/recordings/{rid}/transcribe",
                        json={"backend": "openai-whisper", "model": str(own)},
                        headers=api.headers("researcher"))
    assert r.status_code == 422
    r = api.client.post(f"/api/v1/recordings/{rid}/transcribe",
                        json={"backend": "openai-whisper", "model": "team-tiny.en"},
                        headers=api.headers("researcher"))
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["options"]["model"] == "team-tiny.en"  # the row holds the name, not the path
    ctx = _context(api)
    tasks.execute(ctx, job["id"])
    with Session(api.engine) as session:
        done = session.get(Job, job["id"])
        assert done is not None and done.state == JobState.succeeded, done and done.error
        transcript = session.exec(select(Transcript).where(
            Transcript.job_id == job["id"])).one()
        assert (transcript.backend, transcript.model) == ("openai-whisper", "team-tiny.en")
    assert torch_loads[0] == str(own)


def test_a_model_that_fails_to_load_is_not_retried_or_quoted(api: Api, tmp_path: Path,
                                                              torch_loads: list[str]) -> None:
    """A server admin's broken checkpoint: torch.load fails, and its error, which quotes
    the file's first byte, stays in the worker log."""
    broken = tmp_path / "broken.pt"
    broken.write_bytes(SECRET_BYTES)
    api.settings.asr_backend = "openai-whisper"
    api.settings.openai_whisper_model = str(broken)
    jid = upload(api, make_tone(tmp_path / "a.wav")).json()["job"]["id"]
    ctx = _context(api)
    tasks.execute(ctx, jid)
    with Session(api.engine) as session:
        job = session.get(Job, jid)
        assert job is not None
        assert job.state == JobState.failed and job.attempts == 1, (job.state, job.error)
        assert job.error is not None and "worker log" in job.error
        assert "'x'" not in job.error and str(broken) not in job.error
    assert ctx.queue.sent == []
    assert torch_loads == [str(broken)]
