"""`sourcebook fsck`: every stored file re-hashed against the database, run as a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session

from pipelines.audio import normalise
from service.models.recordings import Recording
from service.ops import fsck
from service.storage import Storage, sha256_file
from tests.conftest import DEFAULT_MODELS_DIR, REPO, SECRET
from tests.factories import make_tone, person_payload, upload

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def run_ops(api: Any, *args: str, database_url: str | None = None,
            recordings_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m service.cli ARGS`` against the test app's database and storage."""
    s = api.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCEBOOK_")}
    env |= {
        "SOURCEBOOK_DATABASE_URL": database_url or s.database_url,
        "SOURCEBOOK_DATA_DIR": str(s.data_dir),
        "SOURCEBOOK_RECORDINGS_DIR": str(recordings_dir or s.recordings_dir),
        "SOURCEBOOK_TRANSCRIPTS_DIR": str(s.transcripts_dir),
        "SOURCEBOOK_MODELS_DIR": str(DEFAULT_MODELS_DIR),
        "SOURCEBOOK_SECRET_KEY": SECRET,
    }
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def new_recording(api: Any, tmp_path: Path, title: str, freq: int,
                  participants: list[dict[str, Any]] | None = None) -> int:
    path = make_tone(tmp_path / f"tone-{freq}.wav", seconds=1.5, freq=freq)
    r = upload(api, path, {"title": title, "language": "zh",
                           "participants": participants or []})
    assert r.status_code == 201, r.text
    return int(r.json()["recording"]["id"])


def add_normalised(api: Any, recording_id: int) -> Path:
    """Do what the worker's normalise stage does: the 16 kHz file, its path and hash."""
    storage = Storage(api.settings.recordings_dir)
    with Session(api.engine) as session:
        rec = session.get(Recording, recording_id)
        assert rec is not None
        dst = storage.recording_dir(recording_id) / "normalised.wav"
        normalise(storage.path_of(rec.media_path), dst)
        rec.normalised_path = str(dst.relative_to(storage.root))
        rec.normalised_sha256 = sha256_file(dst)
        session.add(rec)
        session.commit()
    return dst


def add_consent_document(api: Any, person_id: int, recording_id: int | None = None) -> int:
    body = {"person_id": person_id, "recording_id": recording_id, "status": "granted",
            "form": "signed", "attribution": "on_record", "approval_required": True,
            "signed_at": "2025-03-01"}
    r = api.client.post("/api/v1/consents", json=body, headers=api.headers("editor"))
    assert r.status_code == 201, r.text
    cid = int(r.json()["id"])
    r = api.client.post(f"/api/v1/consents/{cid}/document", headers=api.headers("editor"),
                        files={"file": ("release.pdf", PDF, "application/pdf")})
    assert r.status_code == 200, r.text
    return cid


def flip_byte(path: Path, offset: int | None = None) -> None:
    path.chmod(0o644)  # originals are stored read-only
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_fsck_finds_corrupt_missing_and_orphaned_files(api: Any, tmp_path: Path) -> None:
    r = api.client.post("/api/v1/people", json=person_payload("闫俊杰"),
                        headers=api.headers("researcher"))
    yan = int(r.json()["id"])
    r1 = new_recording(api, tmp_path, "罗永浩对谈闫俊杰", 431,
                       [{"person_id": yan, "role": "interviewee"}])
    r2 = new_recording(api, tmp_path, "早期投资人访谈", 517)
    add_normalised(api, r1)
    add_consent_document(api, yan)
    root = api.settings.recordings_dir.resolve()
    # Things that are not orphans: the README, deletions in progress, live uploads.
    (root / "README.md").write_text("layout\n")
    (root / ".trash" / "7-ab").mkdir(parents=True)
    (root / ".trash" / "7-ab" / "original.wav").write_bytes(b"being deleted")
    live_tmp = root / ".tmp" / socket.gethostname() / f"{os.getpid()}-feedbeef.part"
    live_tmp.write_bytes(b"upload in flight")

    clean = run_ops(api, "fsck")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "checked 4 file(s)" in clean.stdout and "all match the database" in clean.stdout

    with Session(api.engine) as session:
        rec1 = session.get(Recording, r1)
        assert rec1 is not None and rec1.normalised_path is not None
        original, normalised = root / rec1.media_path, root / rec1.normalised_path
    flip_byte(original)
    normalised.unlink()
    (root / str(r2) / "notes.txt").write_text("stray")
    (root / "99").mkdir()
    (root / "99" / "original.mp3").write_bytes(b"left by a failed delete")
    stale_tmp = root / ".tmp" / socket.gethostname() / f"{dead_pid()}-0badc0de.part"
    stale_tmp.write_bytes(b"a crashed upload")

    out = run_ops(api, "fsck")
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    assert "1 missing, 1 corrupt, 3 orphaned" in text
    lines = {ln.split()[0] + " " + ln.split()[1] for ln in text.splitlines()
             if ln.split() and ln.split()[0] in ("CORRUPT", "MISSING", "ORPHAN")}
    assert lines == {
        f"CORRUPT {r1}/{original.name}", f"MISSING {r1}/normalised.wav",
        f"ORPHAN {r2}/notes.txt", "ORPHAN 99/original.mp3",
        f"ORPHAN .tmp/{socket.gethostname()}/{stale_tmp.name}",
    }
    assert f"recording {r1} original" in text and "sha256 differs" in text

    as_json = run_ops(api, "fsck", "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["checked"] == 4
    assert (report["missing"], report["corrupt"], report["orphan"]) == (1, 1, 3)
    [corrupt] = [p for p in report["problems"] if p["kind"] == "corrupt"]
    with Session(api.engine) as session:
        rec1 = session.get(Recording, r1)
        assert rec1 is not None
        assert corrupt["expected_sha256"] == rec1.sha256
    assert corrupt["actual_sha256"] == sha256_file(original) != rec1.sha256


def test_a_damaged_consent_document_is_caught(api: Any, tmp_path: Path) -> None:
    r = api.client.post("/api/v1/people", json=person_payload("李明远", kind="investor"),
                        headers=api.headers("researcher"))
    cid = add_consent_document(api, int(r.json()["id"]))
    [doc] = (api.settings.recordings_dir / "consents").iterdir()
    flip_byte(doc, offset=0)
    report = json.loads(run_ops(api, "fsck", "--json").stdout)
    assert [(p["kind"], p["what"]) for p in report["problems"]] == [
        ("corrupt", f"consent {cid} document")]


def test_worker_partial_files_are_in_progress_until_stale(api: Any, tmp_path: Path) -> None:
    rid = new_recording(api, tmp_path, "张小珺商业访谈录：姚顺雨", 613)
    storage = Storage(api.settings.recordings_dir)
    partial = storage.recording_dir(rid) / ".normalised.wav.k3j2.tmp"
    partial.write_bytes(b"\0" * 1000)
    report = fsck.check(api.engine, storage, partial_stale_seconds=60)
    assert report.ok, report.problems
    old = time.time() - 3600
    os.utime(partial, (old, old))
    report = fsck.check(api.engine, storage, partial_stale_seconds=60)
    assert [(p.kind, p.path) for p in report.problems] == [
        ("orphan", f"{rid}/.normalised.wav.k3j2.tmp")]


def test_changes_during_a_check_are_not_reported(api: Any, tmp_path: Path) -> None:
    """A deletion that drops its row, or an upload that commits, explains what was seen."""
    rid = new_recording(api, tmp_path, "AGI-Next 圆桌", 709)
    storage = Storage(api.settings.recordings_dir)
    seen_missing = fsck.Problem("missing", "55/original.wav", "recording 55 original",
                                "file not found")
    with Session(api.engine) as session:
        rec = session.get(Recording, rid)
        assert rec is not None
        seen_orphan = fsck.Problem("orphan", rec.media_path, "no row", "")
    assert fsck._confirm(api.engine, storage, [seen_missing, seen_orphan]) == []
    gone = fsck.Problem("orphan", f"{rid}/vanished.wav", "no row", "")
    assert fsck._confirm(api.engine, storage, [gone]) == []


def test_fsck_on_an_empty_archive_is_clean(api: Any) -> None:
    out = run_ops(api, "fsck")
    assert out.returncode == 0, out.stderr
    assert "checked 0 file(s)" in out.stdout
