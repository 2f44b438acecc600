"""Uploads that point ffmpeg at other files or URLs, on SQLite and PostgreSQL (issue 13, item 1).

The attack: a researcher uploads a small playlist (or concat list) whose entry is another
recording's stored file. ffmpeg follows it, so the upload was accepted with that
recording's duration and codec, the job transcribed it, and ``/audio`` served its bytes.
Each test makes the request against the real app with the real ffmpeg, with a private
recording of another researcher in place, and checks that nothing was stored or leaked.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from service.models.users import Role
from tests.factories import make_tone, upload
from tests.service.test_recordings import snapshot

ACCEPTED = "Upload a WAV, MP3, M4A, FLAC, OGG or a video with an audio track."


@pytest.fixture
def victim(api, tmp_path: Path) -> dict[str, Any]:
    """A private recording of one researcher, and a second researcher who may not see it."""
    # As long as the playlist entry says, so that on the old code the attack passed every
    # check (first and last seconds decode) and was stored.
    src = make_tone(tmp_path / "victim.mp3", seconds=12.0, freq=523, fmt=["-c:a", "libmp3lame"])
    r = upload(api, src, {"title": "Confidential source", "access": "private"})
    assert r.status_code == 201, r.text
    rec = r.json()["recording"]
    api.tokens["attacker"] = api.add_user("attacker", Role.researcher)
    stored = api.settings.recordings_dir / str(rec["id"]) / "original.mp3"
    assert stored.read_bytes() == src.read_bytes()
    # The attacker may not see it: the premise of every test here.
    assert api.client.get(f"/api/v1/recordings/{rec['id']}",
                          headers=api.headers("attacker")).status_code == 404
    return {"id": rec["id"], "stored": stored, "bytes": src.read_bytes(),
            "duration": rec["duration"]}


def m3u8(entry: str) -> bytes:
    return (f"#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:12,\n{entry}\n"
            "#EXT-X-ENDLIST\n").encode()


def attack(api, tmp_path: Path, body: bytes, filename: str) -> Any:
    path = tmp_path / "attack.bin"
    path.write_bytes(body)
    before = snapshot(api)
    r = upload(api, path, {"title": "Harmless"}, role="attacker", filename=filename)
    # Refused as a format, with what to upload instead, and nothing stored: no row, no
    # file, no job (snapshot covers recording, job, participant, speaker and every file).
    assert r.status_code == 415, r.text
    assert snapshot(api) == before
    detail = r.json()["detail"]
    assert ACCEPTED in detail
    assert "recording" not in r.json()
    return detail


def assert_no_leak(api, victim: dict[str, Any], detail: str) -> None:
    # Nothing about the other recording in the answer: not its path, id or duration.
    assert str(victim["stored"]) not in detail and "original.mp3" not in detail
    assert "12.0" not in detail and "0:00:12" not in detail and "44100" not in detail
    listed = api.client.get("/api/v1/recordings", headers=api.headers("attacker")).json()
    assert listed["count"] == 0


def test_playlist_with_absolute_path_of_another_recording(api, tmp_path, victim) -> None:
    detail = attack(api, tmp_path, m3u8(str(victim["stored"])), "steal.m3u8")
    assert "steal.m3u8 is an HLS playlist" in detail
    assert_no_leak(api, victim, detail)


def test_playlist_with_relative_path(api, tmp_path, victim) -> None:
    # Uploads wait in <root>/.tmp/<host>/, so this names <root>/<id>/original.mp3.
    detail = attack(api, tmp_path, m3u8(f"../../{victim['id']}/original.mp3"), "steal.m3u8")
    assert "HLS playlist" in detail
    assert_no_leak(api, victim, detail)


def test_playlist_with_file_url(api, tmp_path, victim) -> None:
    detail = attack(api, tmp_path, m3u8(f"file:{victim['stored']}"), "steal.m3u8")
    assert "HLS playlist" in detail
    assert_no_leak(api, victim, detail)


def test_playlist_under_an_mp3_name(api, tmp_path, victim) -> None:
    """The name does not matter: the content is a playlist."""
    detail = attack(api, tmp_path, m3u8(str(victim["stored"])), "interview.mp3")
    assert "interview.mp3 is an HLS playlist" in detail
    assert_no_leak(api, victim, detail)


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str]
    body: bytes

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def http_server(victim) -> Iterator[tuple[str, list[str]]]:
    """A local web server that hands out the other recording's bytes and notes each request."""
    handler = type("Handler", (_Recorder,), {"requests": [], "body": victim["bytes"]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


def test_playlist_with_http_url_makes_no_request(api, tmp_path, victim, http_server) -> None:
    base, requests = http_server
    detail = attack(api, tmp_path, m3u8(f"{base}/leak.mp3"), "stream.m3u8")
    assert "HLS playlist" in detail
    assert requests == []  # ffmpeg never connected


def test_ffconcat_list_is_refused_as_a_format(api, tmp_path, victim) -> None:
    body = f"ffconcat version 1.0\nfile '{victim['stored']}'\nduration 7.0\n".encode()
    detail = attack(api, tmp_path, body, "list.txt")
    assert "list.txt is an ffmpeg concat list" in detail
    assert "points at other files or URLs" in detail or "point at other files" in detail
    assert_no_leak(api, victim, detail)


def test_sdp_is_refused_as_a_format(api, tmp_path, victim) -> None:
    body = (b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
            b"m=audio 5004 RTP/AVP 0\n")
    detail = attack(api, tmp_path, body, "call.sdp")
    assert "SDP session description" in detail


def test_a_playlist_stored_before_the_fix_fails_its_job_without_reading(
        api, tmp_path, victim) -> None:
    """The worker applies the same rule: an original already on disk that is a playlist
    (uploaded before this fix) fails at normalise, and no audio is made from the target."""
    from service.models.jobs import Job
    from service.worker import tasks
    from tests.service.test_jobs import _context

    own = make_tone(tmp_path / "own.wav", seconds=2.0, freq=311)
    body = upload(api, own, {"title": "Harmless"}, role="attacker").json()
    rid, jid = body["recording"]["id"], body["job"]["id"]
    stored = api.settings.recordings_dir / str(rid) / "original.wav"
    stored.chmod(0o600)
    stored.write_bytes(m3u8(str(victim["stored"])))
    tasks.execute(_context(api), jid)
    with Session(api.engine) as s:
        job = s.get(Job, jid)
        assert job is not None
        assert job.state == "failed" and job.attempts == 1, job.error
        assert "HLS playlist" in (job.error or "")
    assert not (stored.parent / "normalised.wav").exists()
    audio = api.client.get(f"/api/v1/recordings/{rid}/audio", headers=api.headers("attacker"))
    assert victim["bytes"][:1000] not in audio.content
