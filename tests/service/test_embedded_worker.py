"""`sourcebook serve`'s default job worker: a child process at lower CPU priority.

A real `serve` on SQLite's queue (no Redis, the laptop setup) runs a real job; the
job's recorded worker must be another process than the server's, a child of it, at a
higher nice value, and the server process must never have loaded a model library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from pipelines.threads import available_cores
from service import auth
from service.db import make_engine, migrate
from service.models.jobs import Job
from service.models.users import Role
from service.worker.process import worker_context
from tests.conftest import make_settings
from tests.factories import PYANNOTE_SAMPLE, upload
from tests.service.reliability.helpers import Server, wait_for


class LiveApi:
    """What tests.factories.upload needs, on a live server."""

    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=60)
        self.token = token

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [0] is the state, [1] the parent pid."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def nice_of(pid: int) -> int:
    return int(stat_fields(pid)[16])  # field 19 of proc(5)


def test_a_worker_sizes_each_job_for_the_jobs_it_runs_at_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    for at_once in (1, 2, 3):
        ctx = worker_context(settings, None, None, None, at_once)  # type: ignore[arg-type]
        assert ctx.models.cpu_threads == max(1, available_cores() // at_once)
    settings.job_threads = 3
    assert worker_context(settings, None, None, None, 2).models.cpu_threads == 3  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.usefixtures("models_dir")
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")
def test_serve_runs_jobs_in_a_child_process_at_lower_priority(
        tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, whisper_model="tiny.en",
                             embedded_workers=1, embedded_mode="process")
    settings.ensure_dirs()
    engine = make_engine(settings)
    migrate(engine, settings)
    with Session(engine) as session:
        token = auth.create_user(session, key=settings.token_key(), name="researcher",
                                 role=Role.researcher)[1]
        session.commit()
    server = Server(settings, tmp_path / "serve.log")
    # env_for passes no SOURCEBOOK_EMBEDDED_* setting: this is serve's default.
    server.start()
    try:
        assert server.proc is not None
        serve_pid = server.proc.pid
        api = LiveApi(server.url, token)
        r = upload(api, PYANNOTE_SAMPLE, {"title": "Telephone sample", "language": "en"})
        assert r.status_code == 201, r.text
        job_id = r.json()["job"]["id"]

        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = api.client.get(f"/api/v1/jobs/{job_id}",
                                                 headers=api.headers("researcher")).json()
            return job if job["state"] in {"succeeded", "failed"} else None

        job = wait_for(f"job {job_id} to finish", finished, timeout=300, interval=0.5)
        assert job["state"] == "succeeded", (job, server.tail())
        with Session(engine) as session:
            recorded = session.get(Job, job_id)
            assert recorded is not None and recorded.worker
            worker_pid = int(recorded.worker.rsplit(":", 1)[1])
        assert worker_pid != serve_pid
        assert int(stat_fields(worker_pid)[1]) == serve_pid  # serve's own child, still up
        assert nice_of(worker_pid) == nice_of(serve_pid) + settings.job_nice
        # Every thread of the worker (the models' pools included) runs at that priority.
        threads = [((task / "comm").read_text().strip(), nice_of(int(task.name)))
                   for task in Path(f"/proc/{worker_pid}/task").iterdir()]
        assert min(n for _, n in threads) == nice_of(worker_pid), threads
        # The API process never ran model work: no model library is even mapped in it.
        maps = Path(f"/proc/{serve_pid}/maps").read_text()
        assert "ctranslate2" not in maps and "libtorch" not in maps
    finally:
        server.stop()
        engine.dispose()
