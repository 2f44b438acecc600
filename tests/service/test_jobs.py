"""Jobs on real models: the embedded queue end to end, cancel, retry, no-retry, idempotence.

These use whisper tiny.en (fast) and the bundled pyannote pipeline on the pyannote
sample; quality on base is measured in tests/pipelines.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from pipelines.errors import PipelineError
from service.app import create_app
from service.models.jobs import Job
from service.models.transcripts import Transcript
from tests.conftest import Api, make_settings
from tests.factories import PYANNOTE_SAMPLE, make_tone, upload

pytestmark = pytest.mark.usefixtures("models_dir")



@pytest.fixture
def worker_api(tmp_path: Path, database_url: str):
    """An app whose `serve`-style embedded worker runs jobs in a thread."""
    from service.models.users import Role

    settings = make_settings(tmp_path, database_url, embedded_workers=1,
                             whisper_model="tiny.en", job_stale_seconds=10)
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, settings=settings)
        for role in Role:
            api.tokens[role.value] = api.add_user(role.value, role)
        yield api


def wait_job(api, job_id: int, until: set[str], timeout: float = 240.0,
             seen: list | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.client.get(f"/api/v1/jobs/{job_id}", headers=api.headers("researcher")).json()
        if seen is not None:
            seen.append((job["state"], job["stage"], job["progress"]))
        if job["state"] in until:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not reach {until}: {job}")


def test_upload_runs_to_a_speaker_attributed_transcript(worker_api) -> None:
    api = worker_api
    seen: list = []
    body = upload(api, PYANNOTE_SAMPLE, {"title": "Telephone sample", "language": "en"}).json()
    job = wait_job(api, body["job"]["id"], {"succeeded", "failed"}, seen=seen)
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0 and job["attempts"] == 1
    assert set(job["timings"]) == {"normalise", "transcribe", "diarize", "merge"}
    # The worker recorded where the models ran (SOURCEBOOK_DEVICE defaults to cpu).
    assert job["options"]["device"] == "cpu" and job["options"]["compute_type"] == "int8"
    # Progress was visible along the way and never went backwards.
    running = [p for s, _, p in seen if s == "running"]
    assert running and running == sorted(running)
    assert {st for _, st, _ in seen} >= {"transcribe", "diarize"} or len(running) < 3
    rid = body["recording"]["id"]
    t = api.client.get(f"/api/v1/recordings/{rid}/transcript", headers=api.headers("author"))
    assert t.status_code == 200
    tr = t.json()
    assert tr["version"] == 1 and tr["backend"] == "faster-whisper" and tr["language"] == "en"
    assert len(tr["speakers"]) == 2
    assert len(tr["segments"]) >= 4
    for seg in tr["segments"]:
        assert seg["start"] <= seg["end"]
        for w in seg["words"]:
            assert seg["start"] - 0.01 <= w["start"] <= w["end"] <= seg["end"] + 0.01
    rec = api.client.get(f"/api/v1/recordings/{rid}", headers=api.headers("author")).json()
    assert rec["status"] == "transcribed"
    assert sorted(s["label"] for s in rec["speakers"]) == ["SPEAKER_00", "SPEAKER_01"]
    # The player gets the normalised audio now.
    audio = api.client.get(f"/api/v1/recordings/{rid}/audio", headers=api.headers("author"))
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF"

    # A second run makes version 2 and keeps version 1.
    j2 = api.client.post(f"/api/v1/recordings/{rid}/transcribe", json={"num_speakers": 2},
                         headers=api.headers("researcher"))
    assert j2.status_code == 202
    again = api.client.post(f"/api/v1/recordings/{rid}/transcribe", json={},
                            headers=api.headers("researcher"))
    assert again.status_code == 409 and "already has job" in again.json()["detail"]
    assert wait_job(api, j2.json()["id"], {"succeeded", "failed"})["state"] == "succeeded"
    latest = api.client.get(f"/api/v1/recordings/{rid}/transcript",
                            headers=api.headers("author")).json()
    assert latest["version"] == 2 and latest["versions"] == [1, 2]
    old = api.client.get(f"/api/v1/recordings/{rid}/transcript?version=1",
                         headers=api.headers("author")).json()
    assert old["version"] == 1
    missing = api.client.get(f"/api/v1/recordings/{rid}/transcript?version=9",
                             headers=api.headers("author"))
    assert missing.status_code == 404 and "versions 1, 2" in missing.json()["detail"]


def test_silent_media_fails_once_without_retry(worker_api, tmp_path: Path) -> None:
    import subprocess

    silent = tmp_path / "silence.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=16000:cl=mono", "-t", "3", str(silent)], check=True)
    body = upload(worker_api, silent)
    if body.status_code == 415:  # refused at upload already: also a clear, early answer
        assert "silent" in body.json()["detail"]
        return
    job = wait_job(worker_api, body.json()["job"]["id"], {"succeeded", "failed"})
    assert job["state"] == "failed" and job["attempts"] == 1
    assert "silent" in job["error"]


def test_cancel_stops_a_running_job(worker_api, tmp_path: Path) -> None:
    api = worker_api
    long = tmp_path / "long.wav"
    import subprocess

    # Two minutes of the sample looped: long enough to catch it running.
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-stream_loop", "3", "-i",
                    str(PYANNOTE_SAMPLE), "-c", "copy", str(long)], check=True)
    body = upload(api, long).json()
    jid = body["job"]["id"]
    job = wait_job(api, jid, {"running"})
    r = api.client.post(f"/api/v1/jobs/{jid}/cancel", headers=api.headers("researcher"))
    assert r.status_code == 202
    job = wait_job(api, jid, {"cancelled", "succeeded", "failed"}, timeout=120)
    assert job["state"] == "cancelled", job
    assert api.client.get(f"/api/v1/recordings/{body['recording']['id']}/transcript",
                          headers=api.headers("author")).status_code == 404
    again = api.client.post(f"/api/v1/jobs/{jid}/cancel", headers=api.headers("researcher"))
    assert again.status_code == 409


def test_cancel_a_queued_job(api, tmp_path: Path) -> None:
    body = upload(api, make_tone(tmp_path / "a.wav")).json()  # no worker in `api`
    r = api.client.post(f"/api/v1/jobs/{body['job']['id']}/cancel",
                        headers=api.headers("researcher"))
    assert r.status_code == 202 and r.json()["state"] == "cancelled"
    listed = api.client.get("/api/v1/jobs?state=cancelled", headers=api.headers("editor")).json()
    assert [j["id"] for j in listed["data"]] == [body["job"]["id"]]


def _context(api, **kw):
    from pipelines.runner import ModelCache
    from service.worker import jobrows

    class Recorder:
        def __init__(self):
            self.sent = []

        def enqueue(self, job_id, delay=None):
            self.sent.append((job_id, delay))

        def waiting_job_ids(self):
            return set()

    return jobrows.WorkerContext(settings=api.settings, engine=api.engine,
                               storage=api.client.app.state.storage,
                               models=ModelCache(api.settings.models_dir), queue=Recorder())


def test_transient_failure_is_retried_with_backoff(api, tmp_path: Path, monkeypatch) -> None:
    from pipelines import runner
    from service.worker import jobrows, tasks

    body = upload(api, make_tone(tmp_path / "a.wav")).json()
    jid = body["job"]["id"]
    ctx = _context(api)
    monkeypatch.setattr(runner, "run", lambda *a, **k: (_ for _ in ()).throw(
        MemoryError("simulated out of memory")))
    tasks.execute(ctx, jid)
    with Session(api.engine) as s:
        job = s.get(Job, jid)
        assert job.state == "queued" and job.attempts == 1 and "will retry" in job.error
    assert ctx.queue.sent == [(jid, jobrows.RETRY_BASE_SECONDS)]
    tasks.execute(ctx, jid)
    assert ctx.queue.sent[-1] == (jid, jobrows.RETRY_BASE_SECONDS * 2)
    tasks.execute(ctx, jid)  # third attempt is the last (job_max_attempts=3)
    with Session(api.engine) as s:
        job = s.get(Job, jid)
        assert job.state == "failed" and job.attempts == 3
        assert "failed after 3 attempts" in job.error


def test_model_missing_is_not_retried_and_names_the_fix(api, tmp_path: Path) -> None:
    from service.worker import tasks

    body = upload(api, PYANNOTE_SAMPLE).json()
    api.settings.whisper_model = str(tmp_path / "no-such-model")
    ctx = _context(api)
    tasks.execute(ctx, body["job"]["id"])
    with Session(api.engine) as s:
        job = s.get(Job, body["job"]["id"])
    assert job.state == "failed" and job.attempts == 1
    assert ctx.queue.sent == []
    assert "sourcebook models install" in job.error or "SOURCEBOOK_" in job.error


def test_a_job_delivered_twice_runs_once(api) -> None:
    from service.worker import tasks

    api.settings.whisper_model = "tiny.en"
    body = upload(api, PYANNOTE_SAMPLE).json()
    jid = body["job"]["id"]
    ctx = _context(api)
    tasks.execute(ctx, jid)
    tasks.execute(ctx, jid)  # a duplicate delivery: nothing to claim
    with Session(api.engine) as s:
        assert s.get(Job, jid).attempts == 1
        assert len(s.exec(select(Transcript).where(Transcript.job_id == jid)).all()) == 1


def _transcribe(api, ctx, rid: int):
    from pipelines.runner import RunOptions, run

    out = api.settings.recordings_dir / str(rid) / "normalised.wav"
    return run(PYANNOTE_SAMPLE, RunOptions(model="tiny.en", diarize=False), models=ctx.models,
               normalised_out=out)


def test_store_is_idempotent_per_job(api) -> None:
    """A run stores once; storing again (a duplicate delivery's late store) changes nothing."""
    from service.worker import jobrows, tasks

    body = upload(api, PYANNOTE_SAMPLE).json()
    jid, rid = body["job"]["id"], body["recording"]["id"]
    ctx = _context(api)
    attempt = tasks.claim(ctx, jid).attempts
    result = _transcribe(api, ctx, rid)
    tasks.store(ctx, jid, rid, result, attempt)
    with pytest.raises(jobrows.JobLost):
        tasks.store(ctx, jid, rid, result, attempt)  # the job is no longer running
    with Session(api.engine) as s:
        assert len(s.exec(select(Transcript).where(Transcript.recording_id == rid)).all()) == 1
        assert s.get(Job, jid).state == "succeeded"


def test_a_run_that_lost_its_job_writes_nothing(api) -> None:
    """Worker A stalls (a database outage, a long pause) past the stale time; recovery
    re-queues its job and worker B claims it. When A comes back, its attempt number no
    longer matches: it may not store, finish, fail or re-queue the job, and B's run
    stands alone."""
    from datetime import timedelta

    from service.models.base import utcnow
    from service.models.jobs import JobState
    from service.worker import jobrows, tasks

    body = upload(api, PYANNOTE_SAMPLE).json()
    jid, rid = body["job"]["id"], body["recording"]["id"]
    ctx_a, ctx_b = _context(api), _context(api)
    ctx_a.name, ctx_b.name = "worker-a:1", "worker-b:2"
    assert tasks.claim(ctx_a, jid).attempts == 1
    reporter = tasks._Reporter(ctx_a, jid, 1, diarize=False)
    reporter.stage, reporter.progress = "merge", 0.6
    reporter.flush()  # A got this far before it stalled
    with Session(api.engine) as s:
        job = s.get(Job, jid)
        job.heartbeat_at = utcnow() - timedelta(seconds=api.settings.job_stale_seconds + 5)
        s.add(job)
        s.commit()
    assert tasks.recover(ctx_b) == [jid]
    assert tasks.recover(ctx_b) == [jid]  # the second sweep only re-sends it: still queued
    assert tasks.claim(ctx_b, jid).attempts == 2
    with Session(api.engine) as s:  # B's attempt starts from nothing, not from A's 60 %
        assert (s.get(Job, jid).stage, s.get(Job, jid).progress) == ("normalise", 0.0)
    b_reporter = tasks._Reporter(ctx_b, jid, 2, diarize=False)
    b_reporter.stage, b_reporter.progress = "transcribe", 0.05
    b_reporter.flush()
    with Session(api.engine) as s:
        assert s.get(Job, jid).progress == 0.05

    reporter.flush()
    with pytest.raises(jobrows.JobLost):
        reporter.check()
    result = _transcribe(api, ctx_a, rid)
    with pytest.raises(jobrows.JobLost):
        tasks.store(ctx_a, jid, rid, result, 1)
    jobrows.retry_or_fail(ctx_a, jid, 1, "RuntimeError: late failure of the old run")
    jobrows.finish(ctx_a, jid, 1, JobState.failed, "late failure of the old run")
    with Session(api.engine) as s:
        job = s.get(Job, jid)
        assert (job.state, job.attempts, job.worker) == ("running", 2, "worker-b:2")
        assert s.exec(select(Transcript).where(Transcript.recording_id == rid)).all() == []
    assert ctx_a.queue.sent == []

    tasks.store(ctx_b, jid, rid, result, 2)
    with Session(api.engine) as s:
        job = s.get(Job, jid)
        assert (job.state, job.attempts, job.progress) == ("succeeded", 2, 1.0)
        assert len(s.exec(select(Transcript).where(Transcript.job_id == jid)).all()) == 1


def test_a_store_waits_out_a_database_outage(api, monkeypatch) -> None:
    """The database refusing connections while a finished run stores: it retries (the
    result may be hours of CPU) instead of failing the attempt; past the budget it gives
    up and the error propagates."""
    import sqlalchemy as sa

    from service.worker import tasks

    body = upload(api, PYANNOTE_SAMPLE).json()
    jid, rid = body["job"]["id"], body["recording"]["id"]
    ctx = _context(api)
    attempt = tasks.claim(ctx, jid).attempts
    result = _transcribe(api, ctx, rid)
    real_store, calls = tasks.store, []

    def flaky(*args, **kwargs):
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise sa.exc.OperationalError("connect", {}, ConnectionRefusedError(111, "refused"))
        return real_store(*args, **kwargs)

    monkeypatch.setattr(tasks, "store", flaky)
    tasks.store_when_reachable(ctx, jid, rid, result, attempt)
    assert len(calls) == 3 and calls[2] - calls[0] >= 1.0  # waited 0.5 s, then 1 s
    with Session(api.engine) as s:
        assert s.get(Job, jid).state == "succeeded"

    def down(*args, **kwargs):
        raise sa.exc.OperationalError("connect", {}, ConnectionRefusedError(111, "refused"))

    monkeypatch.setattr(tasks, "store", down)
    ctx.settings = ctx.settings.model_copy(update={"job_stale_seconds": 2})
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError):
        tasks.store_when_reachable(ctx, jid, rid, result, attempt)
    assert time.monotonic() - started < 4


def test_recover_requeues_stale_and_lost_jobs(api, tmp_path: Path) -> None:
    from datetime import timedelta

    from service.models.base import utcnow
    from service.worker import tasks

    a = upload(api, make_tone(tmp_path / "a.wav", freq=300)).json()["job"]["id"]
    b = upload(api, make_tone(tmp_path / "b.wav", freq=600)).json()["job"]["id"]
    with Session(api.engine) as s:
        job = s.get(Job, a)
        job.state, job.attempts, job.worker = "running", 1, "dead-host:1"
        job.heartbeat_at = utcnow() - timedelta(minutes=10)
        s.add(job)
        s.commit()
    ctx = _context(api)
    assert sorted(tasks.recover(ctx)) == sorted([a, b])  # b: queued but not in the queue
    with Session(api.engine) as s:
        job = s.get(Job, a)
        assert job.state == "queued" and "stopped responding" in job.error


def test_pipeline_errors_are_pipeline_errors() -> None:
    from pipelines.errors import AudioError, CancelledError, ModelError

    assert all(issubclass(e, PipelineError) for e in (AudioError, ModelError, CancelledError))


def test_progress_never_moves_back(api) -> None:
    """The heartbeat thread and a stage change both flush; one that read the progress
    earlier may commit later. The stored progress (and its stage) must not go back."""
    from service.worker import tasks

    body = upload(api, PYANNOTE_SAMPLE).json()
    jid = body["job"]["id"]
    ctx = _context(api)
    attempt = tasks.claim(ctx, jid).attempts
    late, early = (tasks._Reporter(ctx, jid, attempt, diarize=True) for _ in range(2))
    late.stage, late.progress = "diarize", 0.6
    early.stage, early.progress = "transcribe", 0.05
    late.flush()
    early.flush()  # read before, committed after
    with Session(api.engine) as s:
        job = s.get(Job, jid)
        assert (job.stage, job.progress) == ("diarize", 0.6)
    late.progress = 0.7
    late.flush()
    with Session(api.engine) as s:
        assert s.get(Job, jid).progress == 0.7
