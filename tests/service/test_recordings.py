"""Recordings ingest, on SQLite and PostgreSQL: the happy path and every bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.factories import PYANNOTE_SAMPLE, make_tone, person_payload, upload


def snapshot(api) -> tuple[dict[str, int], list[str]]:
    """Row counts of everything an upload writes, and every file under recordings/."""
    with api.engine.connect() as conn:
        counts = {
            t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
            for t in ("recording", "job", "participant", "speaker")
        }
    root = api.settings.recordings_dir
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return counts, files


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return make_tone(tmp_path / "tone.wav", seconds=2.0)


def test_upload_stores_original_row_and_queued_job(api, wav: Path) -> None:
    person = api.client.post("/api/v1/people", json=person_payload(),
                             headers=api.headers("researcher")).json()
    meta = {
        "title": "闫俊杰访谈 第一部分",
        "recorded_at": "2025-03-01T10:00:00Z",
        "location": "Shanghai",
        "language": "zh",
        "source": "interview",
        "participants": [{"person_id": person["id"], "role": "interviewee"}],
        "num_speakers": 2,
    }
    r = upload(api, wav, meta, filename="my interview.wav")
    assert r.status_code == 201, r.text
    body = r.json()
    rec, job = body["recording"], body["job"]
    assert rec["title"] == meta["title"]
    assert rec["sha256"] == hashlib.sha256(wav.read_bytes()).hexdigest()
    assert rec["size_bytes"] == wav.stat().st_size
    assert rec["duration"] == pytest.approx(2.0, abs=0.05)
    assert rec["format_name"] == "wav"
    assert rec["original_filename"] == "my interview.wav"
    assert rec["participants"] == [
        {"person_id": person["id"], "role": "interviewee", "name": "闫俊杰"}
    ]
    assert job["state"] == "queued" and job["recording_id"] == rec["id"]
    # Stored under a server-generated name, byte for byte, never under the upload's name.
    stored = api.settings.recordings_dir / str(rec["id"]) / "original.wav"
    assert stored.read_bytes() == wav.read_bytes()
    assert not list(api.settings.recordings_dir.rglob("my interview*"))
    _, files = snapshot(api)
    assert files == [f"{rec['id']}/original.wav"]  # no temp file left
    # Readable back, and audited.
    got = api.client.get(f"/api/v1/recordings/{rec['id']}", headers=api.headers("author"))
    assert got.status_code == 200 and got.json()["id"] == rec["id"]
    log = api.client.get("/api/v1/audit/log?object_type=recording",
                         headers=api.headers("editor")).json()
    assert [e["action"] for e in log["data"]] == ["upload"]


def test_duplicate_bytes_give_409_with_existing_id(api, wav: Path) -> None:
    first = upload(api, wav).json()["recording"]["id"]
    before = snapshot(api)
    r = upload(api, wav, {"title": "again"})
    assert r.status_code == 409
    assert r.json()["recording_id"] == first
    assert "uploaded before" in r.json()["detail"]
    assert snapshot(api) == before


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [(["-c:a", "libmp3lame"], "mp3"), (["-c:a", "flac"], "flac"),
     (["-f", "lavfi", "-i", "color=c=black:s=64x64:d=2", "-shortest", "-c:v", "libx264",
       "-c:a", "aac"], "mp4")],
)
def test_accepts_other_media_by_content(api, tmp_path: Path, fmt, suffix) -> None:
    path = make_tone(tmp_path / f"clip.{suffix}", seconds=2.0, fmt=fmt)
    # A misleading name must not matter: validation is by content.
    r = upload(api, path, filename="clip.txt")
    assert r.status_code == 201, r.text
    assert r.json()["recording"]["duration"] == pytest.approx(2.0, abs=0.1)


def _text_as_wav(tmp_path: Path) -> Path:
    p = tmp_path / "notes.wav"
    p.write_text("This is not audio, just interview notes.\n" * 50)
    return p


def _truncated_mp3(tmp_path: Path) -> Path:
    full = make_tone(tmp_path / "full.mp3", seconds=5.0, fmt=["-c:a", "libmp3lame"])
    p = tmp_path / "truncated.mp3"
    p.write_bytes(full.read_bytes()[:400])
    return p


def _video_without_audio(tmp_path: Path) -> Path:
    p = tmp_path / "silent-video.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=black:s=64x64:d=1", "-c:v", "libx264", str(p)], check=True)
    return p


@pytest.mark.parametrize("make", [_text_as_wav, _truncated_mp3, _video_without_audio])
def test_undecodable_media_gives_415_and_leaves_nothing(api, tmp_path: Path, make) -> None:
    before = snapshot(api)
    r = upload(api, make(tmp_path))
    assert r.status_code == 415, r.text
    assert "ffmpeg" in r.json()["detail"] or "audio" in r.json()["detail"].lower()
    assert snapshot(api) == before


def test_zero_byte_file_gives_400(api, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    before = snapshot(api)
    r = upload(api, empty)
    assert r.status_code == 400
    assert "empty" in r.json()["detail"]
    assert snapshot(api) == before


def test_oversized_file_gives_413_without_writing_it(api, tmp_path: Path) -> None:
    api.settings.max_upload_mb = 1
    big = make_tone(tmp_path / "big.wav", seconds=40.0)  # ~1.3 MB
    before = snapshot(api)
    r = upload(api, big)
    assert r.status_code == 413
    assert "SOURCEBOOK_MAX_UPLOAD_MB" in r.json()["detail"]
    assert snapshot(api) == before


def test_oversized_stream_without_content_length_stops_early(api, tmp_path: Path) -> None:
    api.settings.max_upload_mb = 1
    sent = 0

    def body():
        nonlocal sent
        yield (b'--b\r\nContent-Disposition: form-data; name="meta"\r\n\r\n{"title":"x"}\r\n'
               b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n')
        for _ in range(64):  # 64 MiB offered; the server must stop long before
            sent += 1
            yield b"\0" * (1024 * 1024)
        yield b"\r\n--b--\r\n"

    before = snapshot(api)
    r = api.client.post("/api/v1/recordings", content=body(),
                        headers=api.headers("researcher")
                        | {"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    assert snapshot(api) == before


@pytest.mark.parametrize(
    ("filename", "expect"),
    [("../../etc/passwd", "plain name"), ("..\\..\\win.ini", "plain name")],
)
def test_bad_filenames_give_400(api, wav: Path, filename: str, expect: str) -> None:
    before = snapshot(api)
    r = upload(api, wav, filename=filename)
    assert r.status_code == 400, r.text
    assert expect in r.json()["detail"]
    assert snapshot(api) == before


@pytest.mark.parametrize(("raw_name", "expect"),
                         [(b"\xff\xfe.wav", "UTF-8"), (b"a\x00b.wav", "control")])
def test_raw_bad_filename_bytes_give_400(api, wav: Path, raw_name: bytes, expect: str) -> None:
    # Sent by hand: HTTP clients would percent-encode these bytes.
    head = (b'--b\r\nContent-Disposition: form-data; name="meta"\r\n\r\n{"title":"x"}\r\n'
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + raw_name
            + b'"\r\n\r\n')
    before = snapshot(api)
    r = api.client.post("/api/v1/recordings", content=head + wav.read_bytes() + b"\r\n--b--\r\n",
                        headers=api.headers("researcher")
                        | {"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 400
    assert expect in r.json()["detail"]
    assert snapshot(api) == before


@pytest.mark.parametrize(
    ("meta", "status", "expect"),
    [("{not json", 422, "meta"), ('{"title": ""}', 422, "title"),
     ('{"title": "x", "participants": [{"person_id": 999}]}', 422, "999"),
     ('{"title": "x", "source": "rumour"}', 422, "source")],
)
def test_bad_meta(api, wav: Path, meta: str, status: int, expect: str) -> None:
    before = snapshot(api)
    with wav.open("rb") as f:
        r = api.client.post("/api/v1/recordings", headers=api.headers("researcher"),
                            files={"file": ("a.wav", f)}, data={"meta": meta})
    assert r.status_code == status, r.text
    assert expect in r.json()["detail"]
    assert snapshot(api) == before


def test_missing_file_or_meta_or_not_multipart(api, wav: Path) -> None:
    before = snapshot(api)
    r = api.client.post("/api/v1/recordings", headers=api.headers("researcher"),
                        files={"meta": (None, json.dumps({"title": "x"}))})
    assert r.status_code == 422 and "file" in r.json()["detail"]
    with wav.open("rb") as f:
        r = api.client.post("/api/v1/recordings", headers=api.headers("researcher"),
                            files={"file": ("a.wav", f)})
    assert r.status_code == 422 and "meta" in r.json()["detail"]
    r = api.client.post("/api/v1/recordings", headers=api.headers("researcher"),
                        json={"title": "x"})
    assert r.status_code == 415 and "multipart" in r.json()["detail"]
    r = api.client.post("/api/v1/recordings", headers=api.headers("researcher")
                        | {"Content-Type": "multipart/form-data; boundary=zz"},
                        content=b"--zz\r\ngarbage without headers end")
    assert r.status_code in (400, 422)
    assert snapshot(api) == before


def test_disk_full_gives_507_and_leaves_nothing(api, wav: Path, monkeypatch) -> None:
    import errno

    from service import storage as storage_mod

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage_mod.os, "replace", full)
    before = snapshot(api)
    r = upload(api, wav)
    assert r.status_code == 507
    assert "full" in r.json()["detail"]
    assert snapshot(api) == before


def test_audio_streams_with_range(api, wav: Path) -> None:
    rid = upload(api, wav).json()["recording"]["id"]
    full = api.client.get(f"/api/v1/recordings/{rid}/audio", headers=api.headers("author"))
    assert full.status_code == 200 and full.content == wav.read_bytes()
    part = api.client.get(f"/api/v1/recordings/{rid}/audio",
                          headers=api.headers("author") | {"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == wav.read_bytes()[100:200]
    assert part.headers["content-range"].startswith("bytes 100-199/")


def test_delete_erases_files_and_rows_but_keeps_audit(api, wav: Path) -> None:
    rid = upload(api, wav).json()["recording"]["id"]
    assert (api.settings.recordings_dir / str(rid)).exists()
    r = api.client.delete(f"/api/v1/recordings/{rid}", headers=api.headers("researcher"))
    assert r.status_code == 204
    assert not (api.settings.recordings_dir / str(rid)).exists()
    counts, files = snapshot(api)
    assert counts == {"recording": 0, "job": 0, "participant": 0, "speaker": 0}
    assert files == []
    assert api.client.get(f"/api/v1/recordings/{rid}",
                          headers=api.headers("admin")).status_code == 404
    log = api.client.get(f"/api/v1/audit/log?object_type=recording&object_id={rid}",
                         headers=api.headers("editor")).json()["data"]
    assert [e["action"] for e in log] == ["delete", "upload"]


def test_list_filters_and_patch(api, tmp_path: Path) -> None:
    p = api.client.post("/api/v1/people", json=person_payload("姚顺雨"),
                        headers=api.headers("researcher")).json()
    a = upload(api, make_tone(tmp_path / "a.wav", freq=300),
               {"title": "Podcast with 姚顺雨",
                "participants": [{"person_id": p["id"], "role": "interviewee"}]})
    b = upload(api, make_tone(tmp_path / "b.wav", freq=500), {"title": "Panel"})
    assert a.status_code == b.status_code == 201
    lst = api.client.get(f"/api/v1/recordings?person_id={p['id']}",
                         headers=api.headers("author")).json()
    assert [r["title"] for r in lst["data"]] == ["Podcast with 姚顺雨"] and lst["count"] == 1
    lst = api.client.get("/api/v1/recordings?q=panel", headers=api.headers("author")).json()
    assert [r["title"] for r in lst["data"]] == ["Panel"]
    bid = b.json()["recording"]["id"]
    r = api.client.patch(f"/api/v1/recordings/{bid}", headers=api.headers("researcher"),
                         json={"location": "北京", "participants": [{"person_id": 12345}]})
    assert r.status_code == 422 and "12345" in r.json()["detail"]
    r = api.client.patch(f"/api/v1/recordings/{bid}", headers=api.headers("researcher"),
                         json={"location": "北京"})
    assert r.status_code == 200 and r.json()["location"] == "北京"


def test_sample_recording_upload(api) -> None:
    r = upload(api, PYANNOTE_SAMPLE, {"title": "Telephone sample", "language": "en"})
    assert r.status_code == 201
    assert r.json()["recording"]["duration"] == pytest.approx(30.0, abs=0.5)
