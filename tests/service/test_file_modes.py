"""Everything the service writes is owner-only, whatever the umask (issue 13, item 10).

A real upload, a real transcription job (whisper tiny.en and the bundled pyannote
pipeline), a consent document, a transcript export, a clearance report and an archive
bag are made under a permissive umask; then every file and directory under the data,
recordings and transcripts directories is checked: no group or other bits.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from service.app import create_app
from service.models.jobs import Job
from service.models.users import Role
from tests.conftest import DEFAULT_MODELS_DIR, REPO, Api, make_settings
from tests.factories import PYANNOTE_SAMPLE, upload

pytestmark = pytest.mark.usefixtures("models_dir")

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def loose(*roots: Path) -> list[str]:
    """Every path under ``roots`` (roots included) that group or others may use."""
    found = []
    for root in roots:
        for p in [root, *root.rglob("*")]:
            if mode(p) & 0o077:
                found.append(f"{p} {mode(p):o}")
    return found


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # The child inherits this process's umask, like a shell would give it.
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_everything_written_is_owner_only(tmp_path: Path, database_url: str, mask: int) -> None:
    from service.worker import tasks
    from tests.service.test_jobs import _context

    sqlite = database_url.startswith("sqlite")
    # On SQLite the database is created by the app itself, in the data directory.
    url = "" if sqlite else database_url
    settings = make_settings(tmp_path, url, secret_key="", whisper_model="tiny.en")
    data, recordings, transcripts = (settings.data_dir, settings.recordings_dir,
                                     settings.transcripts_dir)
    clip = tmp_path / "clip.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(PYANNOTE_SAMPLE), "-t", "8",
                    str(clip)], check=True)
    with umask(mask), TestClient(create_app(settings)) as client:
        api = Api(client=client, settings=settings)
        for role in Role:
            api.tokens[role.value] = api.add_user(role.value, role)
        body = upload(api, clip, {"title": "Telephone sample", "language": "en"}).json()
        rid = body["recording"]["id"]
        tasks.execute(_context(api), body["job"]["id"])
        with Session(api.engine) as s:
            job = s.get(Job, body["job"]["id"])
            assert job is not None and job.state == "succeeded", job.error
        person = client.post("/api/v1/people", json={"name": "李明远"},
                             headers=api.headers("researcher")).json()["id"]
        consent = client.post("/api/v1/consents", headers=api.headers("editor"), json={
            "person_id": person, "status": "granted", "form": "signed",
            "attribution": "on_record", "approval_required": False}).json()["id"]
        r = client.post(f"/api/v1/consents/{consent}/document", headers=api.headers("editor"),
                        files={"file": ("release.pdf", PDF, "application/pdf")})
        assert r.status_code == 200, r.text
        # While the app runs, SQLite's -wal and -shm files exist too: the same mode.
        assert loose(data, recordings, transcripts) == []
        side = {p.name for p in data.iterdir()}
        assert {"queue.db-wal", "queue.db-shm"} <= side
        assert not sqlite or {"sourcebook.db-wal", "sourcebook.db-shm"} <= side
        # An upload in flight is written to a temp file, 0600 from its first byte.
        part = client.app.state.storage.new_temp()
        assert mode(part) == 0o600
        part.unlink()

        env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
        env |= {"SOURCEBOOK_DATA_DIR": str(data), "SOURCEBOOK_RECORDINGS_DIR": str(recordings),
                "SOURCEBOOK_TRANSCRIPTS_DIR": str(transcripts),
                "SOURCEBOOK_MODELS_DIR": str(DEFAULT_MODELS_DIR),
                "SOURCEBOOK_DATABASE_URL": settings.database_url, "PYANNOTE_METRICS_ENABLED": "0"}
        for args in (["export", str(rid), "--format", "docx"],
                     ["export", str(rid), "--format", "txt"],
                     ["audit", "--as-of", "2030-01-01", "--out", str(transcripts / "audit.md")],
                     ["export-archive", str(transcripts / "bag")]):
            out = run_cli(env, *args)
            assert out.returncode == 0, out.stderr

    # What the run made, to be sure the walk below sees it all.
    made = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert f"recordings/{rid}/original.wav" in made
    assert f"recordings/{rid}/normalised.wav" in made
    assert any(p.startswith("recordings/consents/") for p in made)
    assert {"data/secret_key", "data/queue.db"} <= made
    assert not sqlite or "data/sourcebook.db" in made
    assert "transcripts/audit.md" in made and "transcripts/bag/bagit.txt" in made
    assert sum(p.startswith("transcripts/") and p.endswith((".docx", ".txt"))
               and "/bag/" not in p for p in made) == 2
    assert loose(data, recordings, transcripts) == []
    assert mode(recordings / str(rid) / "original.wav") == 0o400
    assert mode(recordings / str(rid) / "normalised.wav") == 0o600


def test_an_older_installation_is_tightened_at_start(tmp_path: Path, sqlite_template) -> None:
    """Files and folders an earlier version left group/world-readable are fixed on start."""
    import shutil

    settings = make_settings(tmp_path, "", secret_key="")
    with umask(0o022):
        for d in (settings.data_dir, settings.recordings_dir, settings.transcripts_dir):
            d.mkdir()
        db = settings.data_dir / "sourcebook.db"
        shutil.copy(sqlite_template, db)
        (settings.data_dir / "sourcebook.db-wal").write_bytes(b"")
        (settings.data_dir / "secret_key").write_text("an old key")
        db.chmod(0o644)
        assert mode(settings.data_dir) == 0o755
    with TestClient(create_app(settings)):
        pass
    assert loose(settings.data_dir, settings.recordings_dir, settings.transcripts_dir) == []
    assert (settings.data_dir / "secret_key").read_text() == "an old key"  # kept, tightened
