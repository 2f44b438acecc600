"""/healthz and /readyz."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import make_settings


def test_healthz(api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}


def test_readyz_names_the_missing_models(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, models_dir=tmp_path / "no-models")
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert "sourcebook models install" in r.json()["checks"]["models"]


def test_readyz_reports_an_unreachable_database(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url)
    with TestClient(create_app(settings)) as client:
        client.app.state.engine.dispose()  # type: ignore[attr-defined]
        import sqlalchemy as sa

        client.app.state.engine = sa.create_engine(  # type: ignore[attr-defined]
            "postgresql+psycopg://nobody@127.0.0.1:1/none")
        r = client.get("/readyz")
    assert r.status_code == 503 and "database" in r.json()["checks"]


def test_readyz_shows_the_device_job_threads_use(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url)
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
    assert r.status_code == 200, r.json()
    assert r.json()["checks"]["device"] == "cpu"  # the default: CPU, the tested path


def test_readyz_names_the_fix_when_cuda_is_asked_for_but_absent(
    tmp_path: Path, database_url: str, monkeypatch
) -> None:
    import pipelines.device

    monkeypatch.setattr(pipelines.device, "cuda_visible", lambda: False)
    settings = make_settings(tmp_path, database_url, device="cuda", embedded_workers=1)
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
        auto = make_settings(tmp_path / "auto", database_url, device="auto")
        with TestClient(create_app(auto)) as other:
            fallback = other.get("/readyz")
    assert r.status_code == 503
    problem = r.json()["checks"]["device"]
    assert "SOURCEBOOK_DEVICE=cuda but no CUDA device is visible" in problem
    assert "SOURCEBOOK_DEVICE=cpu" in problem
    # auto falls back to the CPU without complaint.
    assert fallback.status_code == 200 and fallback.json()["checks"]["device"] == "cpu"
