"""The team setup under faults: `sourcebook serve` on PostgreSQL, two `sourcebook worker`
processes on RedisHuey, all real processes on 127.0.0.1 (what docker-compose.yml runs).

One cluster serves the whole module, in this order (each test leaves it healthy):

1. 12 short recordings uploaded at once: every job runs exactly once, on both workers,
   one transcript version each, progress visible while they run.
2. Redis killed and restarted empty mid-run: every queued job still runs exactly once
   (recovery re-queues from the Job table), and an upload during the outage is accepted.
3. PostgreSQL unreachable for 10 s (through a proxy): /readyz and ordinary endpoints
   answer a clean 503 saying so, then recover without a restart.
4. A worker's PostgreSQL cut off for 10 s mid-job (through its own proxy): the run goes
   on, stores once the database is back, and the job succeeds on its first attempt.
5. The API killed (SIGKILL) mid-upload: after a restart no row and no file remains.

The API reaches PostgreSQL through ``TcpProxy`` so that test 3 can cut it off; the
workers connect directly. Redis is a private server the module owns.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from service import auth
from service.config import Settings
from service.db import make_engine
from service.models.jobs import Job
from service.models.recordings import Recording
from service.models.transcripts import Transcript
from service.models.users import Role
from service.storage import Storage
from service.worker.queue import make_huey
from tests.conftest import POSTGRES_URL, _truncate_postgres, make_settings
from tests.factories import PYANNOTE_SAMPLE
from tests.service.reliability.helpers import (
    PrivateRedis,
    Server,
    TcpProxy,
    Worker,
    files_under,
    short_clip,
    start_slow_upload,
    upload_file,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis,
              pytest.mark.usefixtures("models_dir")]

FINAL = {"succeeded", "failed", "cancelled"}
OUTAGE_S = 10.0


@dataclass
class Cluster:
    api: Server
    workers: list[Worker]
    redis: PrivateRedis
    proxy: TcpProxy
    direct: Settings  # the workers' settings: PostgreSQL without the proxy
    engine: sa.Engine
    token: str

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, timeout=timeout,
                            headers={"Authorization": f"Bearer {self.token}"})

    def jobs(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        with self.client() as c:
            rows = c.get("/api/v1/jobs", params={"limit": 200}).json()["data"]
        return {j["id"]: j for j in rows if j["id"] in ids}

    def wait_final(self, ids: list[int], timeout: float = 300) -> dict[int, dict[str, Any]]:
        def done() -> dict[int, dict[str, Any]] | None:
            jobs = self.jobs(ids)
            return jobs if len(jobs) == len(ids) and all(
                j["state"] in FINAL for j in jobs.values()) else None
        try:
            result: dict[int, dict[str, Any]] = wait_for("jobs to finish", done, timeout)
        except AssertionError:
            raise AssertionError(self.logs()) from None
        return result

    def exactly_once(self, job_ids: list[int]) -> list[Job]:
        """Each job succeeded on its first attempt and left one transcript version."""
        with Session(self.engine) as s:
            jobs = s.exec(select(Job).where(col(Job.id).in_(job_ids))).all()
            assert len(jobs) == len(job_ids)
            for job in jobs:
                versions = s.exec(select(func.count()).select_from(Transcript).where(
                    Transcript.recording_id == job.recording_id)).one()
                assert (job.state, job.attempts, versions) == ("succeeded", 1, 1), (
                    job.id, job.state, job.attempts, versions, job.error, self.logs())
        return list(jobs)

    def logs(self) -> str:
        return "\n".join(f"--- {w.log.name}\n{w.log.read_text(errors='replace')[-2000:]}"
                         for w in self.workers) + f"\n--- api\n{self.api.tail(2000)}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    _truncate_postgres(POSTGRES_URL)
    redis = PrivateRedis(tmp)
    redis.start()
    pg = sa.engine.make_url(POSTGRES_URL)
    proxy = TcpProxy((pg.host or "127.0.0.1", pg.port or 5432))
    proxy.up()
    direct = make_settings(tmp, POSTGRES_URL, redis_url=redis.url, whisper_model="tiny.en",
                           job_stale_seconds=10, embedded_workers=0)
    proxied = pg.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    # Two server processes, as docker-compose.yml runs the API.
    api = Server(direct.model_copy(update={"database_url": proxied}), tmp / "api.log",
                 processes=2)
    engine = make_engine(direct)
    workers: list[Worker] = []
    try:
        with Session(engine) as s:
            _, token = auth.create_user(s, key=direct.token_key(), name="researcher",
                                        role=Role.researcher)
            s.commit()
        api.start()
        workers = [Worker(direct, tmp / f"worker{i}.log") for i in (1, 2)]
        for w in workers:
            w.wait_ready()
        yield Cluster(api=api, workers=workers, redis=redis, proxy=proxy, direct=direct,
                      engine=engine, token=token)
    finally:
        for w in workers:
            w.stop()
        api.stop()
        redis.stop()
        proxy.down()
        engine.dispose()


def _upload_all(cluster: Cluster, clips: list[Path], prefix: str) -> list[dict[str, Any]]:
    def one(path: Path) -> dict[str, Any]:
        with cluster.client(timeout=120) as c:
            r = upload_file(c, path, f"{prefix} {path.stem}")
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    with ThreadPoolExecutor(len(clips)) as pool:
        return list(pool.map(one, clips))


def test_twelve_recordings_on_two_workers_run_exactly_once(cluster: Cluster,
                                                           tmp_path: Path) -> None:
    clips = [short_clip(PYANNOTE_SAMPLE, tmp_path / f"clip{i:02}.wav", 1.5 * i, 3.0)
             for i in range(12)]
    bodies = _upload_all(cluster, clips, "distributed")
    ids = [b["job"]["id"] for b in bodies]
    assert len(set(ids)) == 12

    # Poll as a client would while the workers run, keeping every observation.
    seen: dict[int, list[tuple[str, str | None, float]]] = defaultdict(list)

    def all_final() -> bool:
        jobs = cluster.jobs(ids)
        for jid, j in jobs.items():
            seen[jid].append((j["state"], j["stage"], j["progress"]))
        return len(jobs) == 12 and all(j["state"] in FINAL for j in jobs.values())

    try:
        wait_for("12 jobs to finish", all_final, timeout=300, interval=0.1)
    except AssertionError:
        raise AssertionError(cluster.logs()) from None

    jobs = cluster.exactly_once(ids)
    workers = {w.name for w in cluster.workers}
    ran_on = {j.worker for j in jobs}
    assert ran_on == workers, (ran_on, workers)

    # Progress was visible throughout: each job was seen running, its progress never went
    # back, and between them the stages and in-between values of a real run showed up.
    stages, middles = set(), 0
    for jid in ids:
        running = [(stage, p) for state, stage, p in seen[jid] if state == "running"]
        assert running, (jid, seen[jid])
        progress = [p for _, _, p in seen[jid]]
        assert progress == sorted(progress), (jid, seen[jid])
        assert seen[jid][-1] == ("succeeded", "store", 1.0)
        stages |= {stage for stage, _ in running}
        middles += any(0.0 < p < 1.0 for _, p in running)
    assert {"transcribe", "diarize"} <= stages, stages
    assert middles >= 6, {jid: seen[jid] for jid in ids}


def test_redis_restart_mid_run_loses_no_job(cluster: Cluster, tmp_path: Path) -> None:
    first, second = cluster.workers
    huey = make_huey(cluster.direct)
    # Hold both workers so the jobs are certainly waiting in Redis when it dies.
    first.pause()
    second.pause()
    try:
        clips = [short_clip(PYANNOTE_SAMPLE, tmp_path / f"r{i}.wav", 0.7 + 2.3 * i, 3.5)
                 for i in range(5)]
        ids = [b["job"]["id"] for b in _upload_all(cluster, clips, "redis restart")]
        # A worker stopped inside its blocking pop may already hold one job (Redis hands it
        # over into the socket); the rest wait in Redis.
        assert huey.pending_count() >= 3
        first.resume()  # it takes one job at a time; the others stay in the queue
        wait_for("a job to start", lambda: any(
            j["state"] == "running" for j in cluster.jobs(ids).values()), timeout=120)
        assert huey.pending_count() >= 1
        cluster.redis.kill()  # no persistence: the queue is gone

        # An upload while the queue is down is stored and answered; its job waits.
        late = short_clip(PYANNOTE_SAMPLE, tmp_path / "late.wav", 20.0, 3.5)
        with cluster.client(timeout=120) as c:
            r = upload_file(c, late, "uploaded while Redis was down")
        assert r.status_code == 201, r.text
        ids.append(r.json()["job"]["id"])

        # A new, empty Redis (no --save, no AOF): what was queued is gone. Whether it
        # is still empty when we look depends on the workers' recovery sweep, so no check.
        cluster.redis.start()
    finally:
        first.resume()
        second.resume()
    jobs = cluster.wait_final(ids)
    assert {j["state"] for j in jobs.values()} == {"succeeded"}, (jobs, cluster.logs())
    cluster.exactly_once(ids)


def test_postgres_outage_is_a_clean_503_then_recovers(cluster: Cluster) -> None:
    with cluster.client() as c:
        assert c.get("/readyz").status_code == 200
        assert c.get("/api/v1/people").status_code == 200
        pids = cluster.api.pids()
        assert len(pids) >= 3, pids  # supervisor + two server processes
        tracebacks = cluster.api.tail(10**9).count("Traceback")

        cluster.proxy.down()
        ends = time.monotonic() + OUTAGE_S
        ready, reads, writes = [], [], []
        try:
            while time.monotonic() < ends:
                ready.append(c.get("/readyz"))
                reads.append(c.get("/api/v1/people"))
                writes.append(c.post("/api/v1/people", json={"name": "during outage"}))
                time.sleep(0.5)
        finally:
            cluster.proxy.up()

        assert ready and {r.status_code for r in ready} == {503}
        assert all("unreachable" in r.json()["checks"]["database"] for r in ready), ready[0].text
        for r in reads + writes:
            assert r.status_code == 503, (r.status_code, r.text)
            assert "database is unreachable" in r.json()["detail"], r.text
            assert r.headers["retry-after"]

        # Back by itself: same process, no restart.
        wait_for("/readyz to recover", lambda: c.get("/readyz").status_code == 200, 60)
        assert c.get("/api/v1/people").status_code == 200
        r = c.post("/api/v1/people", json={"name": "after outage"})
        assert r.status_code == 201, r.text
        assert cluster.api.pids() == pids  # the same processes: nothing restarted
        assert cluster.api.tail(10**9).count("Traceback") == tracebacks, cluster.api.tail()
    with cluster.engine.connect() as conn:
        names = conn.execute(sa.text("SELECT name FROM person")).scalars().all()
    assert "during outage" not in names and "after outage" in names


def test_worker_cut_off_from_postgres_mid_job_finishes_it_once(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    pg = sa.engine.make_url(POSTGRES_URL)
    proxy = TcpProxy((pg.host or "127.0.0.1", pg.port or 5432))
    proxy.up()
    proxied = pg.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    # A stale time well past the outage: this checks that the run survives it (taking a
    # job over from a worker that stalled too long is test_jobs' fencing test).
    settings = cluster.direct.model_copy(update={"database_url": proxied,
                                                 "job_stale_seconds": 90})
    for w in cluster.workers:
        w.pause()  # only the cut-off worker takes the job
    worker = None
    try:
        worker = Worker(settings, tmp_path / "worker-cut-off.log")
        worker.wait_ready()
        with cluster.client(timeout=120) as c:
            r = upload_file(c, PYANNOTE_SAMPLE, "worker loses its database")
        assert r.status_code == 201, r.text
        job_id, recording_id = r.json()["job"]["id"], r.json()["recording"]["id"]
        # Past normalising: the run holds no database session from here on but its
        # progress writes, so the outage hits the run, not its set-up.
        wait_for("the job to be transcribing", lambda: (
            lambda j: j["state"] == "running" and j["stage"] != "normalise")(
            cluster.jobs([job_id])[job_id]), timeout=120, interval=0.05)
        proxy.down()
        time.sleep(OUTAGE_S)
        proxy.up()
        job = cluster.wait_final([job_id])[job_id]
        log = worker.log.read_text(errors="replace")
    finally:
        if worker is not None:
            worker.stop()
        proxy.down()
        for w in cluster.workers:
            w.resume()
    assert "database unreachable" in log, log[-3000:]  # the outage did hit the run
    assert (job["state"], job["attempts"]) == ("succeeded", 1), (job, log[-3000:])
    [stored] = cluster.exactly_once([job_id])
    assert stored.worker == worker.name
    recording_dir = Storage(cluster.direct.recordings_dir).recording_dir(recording_id)
    assert sorted(p.name for p in recording_dir.iterdir()) == ["normalised.wav",
                                                               "original.wav"]


def test_api_killed_mid_upload_leaves_no_row_and_no_file(cluster: Cluster) -> None:
    root = cluster.direct.recordings_dir
    tmp_dir = Storage(root).tmp_dir

    def counts() -> tuple[int, int]:
        with Session(cluster.engine) as s:
            return (s.exec(select(func.count()).select_from(Recording)).one(),
                    s.exec(select(func.count()).select_from(Job)).one())

    before_rows, before_files = counts(), files_under(root)
    sock = start_slow_upload(cluster.api.port, cluster.token, declared_mb=64, send_mb=4)
    try:
        parts = wait_for("the upload's temp file", lambda: [
            p for p in tmp_dir.glob("*.part") if p.stat().st_size >= 1 << 20], timeout=60)
        cluster.api.kill9()
    finally:
        sock.close()
    assert all(p.exists() for p in parts), "the kill should leave the temp file behind"
    assert counts() == before_rows

    cluster.api.start()
    assert not any(p.exists() for p in parts), cluster.api.tail()
    assert files_under(root) == before_files
    assert counts() == before_rows
    with cluster.client() as c:
        assert c.get("/readyz").status_code == 200
