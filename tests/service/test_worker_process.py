"""Separate `sourcebook worker` processes: kill -9 mid-job, restart, on SQLite and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.app import create_app
from service.models.jobs import Job
from service.models.transcripts import Transcript
from service.models.users import Role
from tests.conftest import REPO, Api, make_settings
from tests.factories import PYANNOTE_SAMPLE, upload
from tests.service.test_jobs import wait_job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("models_dir")]

REDIS_TEST_URL = os.environ.get("SOURCEBOOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")



def env_for(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
    env.update({
        "SOURCEBOOK_DATABASE_URL": settings.database_url,
        "SOURCEBOOK_DATA_DIR": str(settings.data_dir),
        "SOURCEBOOK_RECORDINGS_DIR": str(settings.recordings_dir),
        "SOURCEBOOK_TRANSCRIPTS_DIR": str(settings.transcripts_dir),
        "SOURCEBOOK_MODELS_DIR": str(settings.models_dir),
        "SOURCEBOOK_SECRET_KEY": settings.secret_key,
        "SOURCEBOOK_WHISPER_MODEL": settings.whisper_model,
        "SOURCEBOOK_JOB_STALE_SECONDS": str(settings.job_stale_seconds),
        "SOURCEBOOK_REDIS_URL": settings.redis_url,
        "PYANNOTE_METRICS_ENABLED": "0",
    })
    return env


def start_worker(settings, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker"], cwd=REPO, env=env_for(settings),
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


@pytest.fixture(params=["sqlite-queue", pytest.param("redis", marks=pytest.mark.redis)])
def queue_settings(request, tmp_path: Path, database_url: str):
    # Each queue once, each database once: the embedded SQLite queue with SQLite (the
    # laptop), Redis with PostgreSQL (the team setup); a minute of CI time apiece.
    if (request.param == "redis") != database_url.startswith("postgresql"):
        pytest.skip("covered by the other queue/database pairing")
    redis_url = REDIS_TEST_URL if request.param == "redis" else ""
    settings = make_settings(tmp_path, database_url, embedded_workers=0,
                             whisper_model="tiny.en", job_stale_seconds=10, redis_url=redis_url)
    if redis_url:
        from service.worker.queue import make_huey

        make_huey(settings).flush()
    return settings


def test_kill_9_mid_job_then_restart_finishes_once(queue_settings, tmp_path: Path) -> None:
    settings = queue_settings
    long = tmp_path / "long.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-stream_loop", "1", "-i",
                    str(PYANNOTE_SAMPLE), "-c", "copy", str(long)], check=True)
    log = tmp_path / "worker.log"
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, settings=settings)
        api.tokens["researcher"] = api.add_user("researcher", Role.researcher)
        first = start_worker(settings, log)
        try:
            body = upload(api, long).json()
            jid, rid = body["job"]["id"], body["recording"]["id"]
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                job = wait_job(api, jid, {"running", "succeeded", "failed"})
                if job["state"] != "running" or job["progress"] > 0.1:
                    break
                time.sleep(0.2)
            assert job["state"] == "running", (job, log.read_text()[-3000:])
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
        second = start_worker(settings, log)
        try:
            job = wait_job(api, jid, {"succeeded", "failed"}, timeout=300)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            try:
                second.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(second.pid, signal.SIGKILL)
        assert job["state"] == "succeeded", (job, log.read_text()[-3000:])
        assert job["attempts"] == 2
        with Session(api.engine) as s:
            assert len(s.exec(select(Transcript).where(Transcript.recording_id == rid)).all()) == 1
            assert s.get(Job, jid).worker != ""
        files = sorted(p.name for p in (settings.recordings_dir / str(rid)).iterdir())
        assert files == ["normalised.wav", "original.wav"], files
