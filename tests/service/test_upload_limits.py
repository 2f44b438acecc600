"""Duplicate uploads and maximum durations, on SQLite and PostgreSQL (issue 13, items 6 and 9).

* Re-uploading the bytes of a recording the caller may not see must not confirm which
  recording holds them: 409 without its id or title. The caller who may see it still
  gets the id (API.md).
* A recording longer than SOURCEBOOK_MAX_DURATION_HOURS is refused at upload (413) when
  its header says so, and its job fails at normalise when only decoding finds out.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from service.app import create_app
from service.config import Settings
from service.models.jobs import Job
from service.models.recordings import Recording
from service.models.users import Role
from tests.conftest import Api, make_settings
from tests.factories import make_tone, upload
from tests.service.test_recordings import snapshot

# --- item 6: the duplicate-upload oracle --------------------------------------------


def _second_researcher(api: Api) -> None:
    api.tokens["other"] = api.add_user("other researcher", Role.researcher)


def test_duplicate_of_an_invisible_recording_names_no_id(api, tmp_path: Path) -> None:
    _second_researcher(api)
    path = make_tone(tmp_path / "secret.wav", seconds=2.0, freq=617)
    first = upload(api, path, {"title": "王小川 off the record", "access": "private"})
    assert first.status_code == 201
    rid = first.json()["recording"]["id"]
    before = snapshot(api)
    r = upload(api, path, {"title": "probe"}, role="other")
    assert r.status_code == 409
    body = r.json()
    assert set(body) == {"detail"}  # no recording_id
    detail = body["detail"]
    assert "already in the archive" in detail and "may not see" in detail
    assert "editor" in detail  # what to do about it
    assert not re.search(r"\d", detail)  # no id, in any form
    assert "王小川" not in r.text and str(rid) not in r.text
    assert snapshot(api) == before
    # The uploader and an admin may see it: they get the id as before.
    for role in ("researcher", "admin"):
        again = upload(api, path, {"title": "again"}, role=role)
        assert again.status_code == 409 and again.json()["recording_id"] == rid


def test_duplicate_of_a_team_recording_keeps_its_id(api, tmp_path: Path) -> None:
    _second_researcher(api)
    path = make_tone(tmp_path / "team.wav", seconds=2.0, freq=619)
    rid = upload(api, path, {"title": "Team interview"}).json()["recording"]["id"]
    r = upload(api, path, {"title": "again"}, role="other")
    assert r.status_code == 409
    assert r.json()["recording_id"] == rid and f"recording {rid}" in r.json()["detail"]


# --- item 9: maximum duration -------------------------------------------------------

LIMIT_HOURS = 60 / 3600  # one minute, so that a 90 s file shows what a 5 h one would


@pytest.fixture
def limited(tmp_path: Path, database_url: str) -> Iterator[Api]:
    """The app with SOURCEBOOK_MAX_DURATION_HOURS set to one minute."""
    settings = make_settings(tmp_path, database_url, max_duration_hours=LIMIT_HOURS,
                             whisper_model="tiny.en")
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, settings=settings)
        for role in Role:
            api.tokens[role.value] = api.add_user(role.value, role)
        yield api


def _long(tmp_path: Path, *, streamed: bool) -> Path:
    """90 s of tone as 6 kbit/s Opus, about 64 KB. Streamed Matroska states no duration."""
    tone = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
            "sine=frequency=330:duration=90", "-c:a", "libopus", "-b:a", "6k"]
    if not streamed:
        path = tmp_path / "long.opus"
        subprocess.run([*tone, "-y", str(path)], check=True)
        return path
    path = tmp_path / "streamed.mka"
    with path.open("wb") as f:
        subprocess.run([*tone, "-f", "matroska", "pipe:1"], stdout=f, check=True)
    return path


def test_default_limit_and_env_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_duration_hours == 4.0  # interviews run up to 3 h
    monkeypatch.setenv("SOURCEBOOK_MAX_DURATION_HOURS", "6.5")
    assert Settings().max_duration_seconds == 6.5 * 3600


def test_upload_over_the_limit_gets_413_and_stores_nothing(limited, tmp_path: Path) -> None:
    path = _long(tmp_path, streamed=False)
    assert path.stat().st_size < 100_000  # small, but long
    before = snapshot(limited)
    r = upload(limited, path, filename="three hours.opus")
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert "three hours.opus is 0:01:30 long; the limit is 0:01:00" in detail
    assert "SOURCEBOOK_MAX_DURATION_HOURS" in detail and "Split it" in detail
    assert snapshot(limited) == before


def test_a_file_that_hides_its_length_fails_its_job_at_the_limit(limited, tmp_path) -> None:
    from service.worker import tasks
    from tests.service.test_jobs import _context

    r = upload(limited, _long(tmp_path, streamed=True))
    assert r.status_code == 201, r.text  # nothing to check at upload: no stated duration
    assert r.json()["recording"]["duration"] == 0
    rid, jid = r.json()["recording"]["id"], r.json()["job"]["id"]
    tasks.execute(_context(limited), jid)
    with Session(limited.engine) as s:
        job = s.get(Job, jid)
        assert job is not None
        assert (job.state, job.attempts) == ("failed", 1), job.error
        assert "decodes to more than 0:01:00" in (job.error or "")
        assert "SOURCEBOOK_MAX_DURATION_HOURS" in (job.error or "")
        recording = s.get(Recording, rid)
        assert recording is not None and recording.status == "failed"
        assert recording.normalised_path is None
    assert [p.name for p in (limited.settings.recordings_dir / str(rid)).iterdir()] == [
        "original.mkv"]
