"""Small, fast checks of the pieces the process-level fault tests rely on."""

from __future__ import annotations

import math
import os
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from service.api.errors import database_unavailable
from service.db import DB_UNAVAILABLE_ERRORS
from service.models.recordings import Speaker
from service.storage import Storage, _process_started_at
from service.worker import tasks
from tests.factories import create_recording


def test_stale_temp_uploads_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "recordings")
    storage.ensure()
    started = _process_started_at(os.getpid())
    assert started is not None and started <= time.time()

    live = storage.new_temp()  # this process, written now: an upload in flight
    live.write_bytes(b"x")
    reused = storage.tmp_dir / f"{os.getpid()}-0123456789abcdef.part"
    reused.write_bytes(b"x")  # our pid, but written before we started: a reused pid
    os.utime(reused, (started - 3600, started - 3600))
    dead = storage.tmp_dir / "999999999-0123456789abcdef.part"  # no such process
    dead.write_bytes(b"x")
    recording = storage.recording_dir(1) / "original.wav"
    recording.parent.mkdir(parents=True)
    recording.write_bytes(b"x")
    os.utime(recording, (0, 0))

    removed = storage.cleanup_stale_temp()
    assert sorted(removed) == sorted([reused, dead])
    assert live.exists() and recording.exists()


def test_a_nan_voiceprint_is_dropped_not_a_failed_job(api, tmp_path: Path) -> None:
    """Too little speech gives pyannote a NaN embedding; PostgreSQL's JSON refuses NaN."""
    rid = create_recording(api, tmp_path, "short clip")
    result = SimpleNamespace(
        segments=[SimpleNamespace(speaker="SPEAKER_00"), SimpleNamespace(speaker="SPEAKER_01")],
        diarization=SimpleNamespace(speakers=["SPEAKER_00", "SPEAKER_01"], embeddings={
            "SPEAKER_00": [0.25, -0.5, 1.0], "SPEAKER_01": [math.nan, math.nan, math.nan]}),
    )
    with Session(api.engine) as session:
        ctx = SimpleNamespace(settings=api.settings)  # what speaker storing reads of it
        tasks._upsert_speakers(ctx, session, rid, result)  # type: ignore[arg-type]
        session.commit()
        got = {s.label: s.embedding for s in session.exec(
            select(Speaker).where(Speaker.recording_id == rid)).all()}
    assert got == {"SPEAKER_00": [0.25, -0.5, 1.0], "SPEAKER_01": None}


def _raises(exc: Exception):
    def route() -> None:
        raise exc
    return route


def test_database_errors_that_are_outages_are_503_and_bugs_stay_500() -> None:
    """The handlers service.app registers: a lock, a pool wait -> 503; a bad query -> 500."""
    app = FastAPI()
    for error in DB_UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, database_unavailable)
    errors = {
        "/locked": sa.exc.OperationalError("UPDATE x", {}, sqlite3.OperationalError(
            "database is locked")),
        "/bug": sa.exc.OperationalError("SELECT nope", {}, sqlite3.OperationalError(
            "no such column: nope")),
        "/pool": sa.exc.TimeoutError("QueuePool limit of size 10 overflow 30 reached"),
    }
    for path, exc in errors.items():
        app.add_api_route(path, _raises(exc))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/locked")
        assert r.status_code == 503 and "busy" in r.json()["detail"], r.text
        assert r.headers["retry-after"] == "5"
        r = client.get("/pool")
        assert r.status_code == 503 and "overloaded" in r.json()["detail"], r.text
        assert client.get("/bug").status_code == 500


def test_a_placement_killed_before_its_commit_is_undone_at_the_next_start(
        api, tmp_path: Path) -> None:
    """The window the upload's own clean-up cannot cover: the original moved into place,
    the process killed before the row committed. Its journal survives the kill; the next
    start removes the original if no row names it, and only then."""
    from service.app import create_app
    from service.models.recordings import Recording

    storage: Storage = api.client.app.state.storage
    rid = create_recording(api, tmp_path, "committed")
    assert not list(storage.tmp_dir.glob("*.placing")), "a finished upload keeps no journal"
    with Session(api.engine) as session:
        committed = session.get(Recording, rid).media_path

    def place(recording_id: int, pid: int) -> tuple[str, Path]:
        tmp = storage.new_temp()
        tmp.write_bytes(b"RIFF" + bytes(64))
        relative, journal = storage.place_original(tmp, recording_id, "wav")
        moved = journal.with_name(f"{pid}-{journal.name.split('-', 1)[1]}")
        journal.rename(moved)
        return relative, moved

    dead_pid = 999_999_999  # no such process
    orphan, orphan_journal = place(rid + 1000, dead_pid)
    in_flight, live_journal = place(rid + 2000, os.getpid())  # this process: still placing
    # Killed after the commit but before removing its journal: the row names the file.
    late_journal = storage.tmp_dir / f"{dead_pid}-00000000000000ff.placing"
    late_journal.write_text(committed)
    assert storage.path_of(orphan).exists()

    with TestClient(create_app(api.settings)):  # a restart: the lifespan settles them
        pass

    assert not storage.path_of(orphan).exists()
    assert not storage.recording_dir(rid + 1000).exists()
    assert not orphan_journal.exists() and not late_journal.exists()
    assert storage.path_of(committed).exists()
    assert storage.path_of(in_flight).exists() and live_journal.exists()
    with Session(api.engine) as session:
        assert session.exec(select(Recording.id)).all() == [rid]
