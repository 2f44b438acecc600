"""A really full recordings volume: an 8 MiB tmpfs, an upload bigger than that.

The unit test in test_recordings.py simulates ENOSPC; this one lets the kernel say it,
so every write path (the streamed temp file, its close, the cleanup) meets the real error.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from service.app import create_app
from service.models.jobs import Job
from service.models.recordings import Recording
from service.models.users import Role
from tests.conftest import Api, make_settings
from tests.factories import make_tone, upload
from tests.service.reliability.helpers import files_under


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "recordings"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): "
                    f"{done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def test_upload_to_a_full_volume_is_507_and_stores_nothing(
        small_volume: Path, tmp_path: Path, sqlite_template: Path) -> None:
    db = tmp_path / "db.sqlite"
    shutil.copy(sqlite_template, db)
    settings = make_settings(tmp_path, f"sqlite:///{db}", recordings_dir=small_volume)
    big = make_tone(tmp_path / "big.wav", seconds=80, fmt=["-ac", "2", "-ar", "48000"])
    assert big.stat().st_size > 12 * 1024 * 1024 > shutil.disk_usage(small_volume).total
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, settings=settings)
        api.tokens["researcher"] = api.add_user("researcher", Role.researcher)

        r = upload(api, big)
        assert r.status_code == 507, r.text
        assert "volume is full" in r.json()["detail"]
        assert "SOURCEBOOK_RECORDINGS_DIR" in r.json()["detail"]
        with Session(api.engine) as s:
            assert s.exec(select(func.count()).select_from(Recording)).one() == 0
            assert s.exec(select(func.count()).select_from(Job)).one() == 0
        assert files_under(small_volume) == []
        # The space came back: the next upload that fits goes through.
        assert shutil.disk_usage(small_volume).used < 1024 * 1024
        r = upload(api, make_tone(tmp_path / "small.wav", seconds=2))
        assert r.status_code == 201, r.text
        rid = r.json()["recording"]["id"]
        assert [p.name for p in files_under(small_volume)] == ["original.wav"]
        assert (small_volume / str(rid) / "original.wav").exists()
