"""Schema migrations applied to a database that already holds data.

Migration 0005 moved search to "current version only": a database written before it,
with several versions of a transcript, must come out with only the latest version
searchable, on both databases, and downgrade cleanly.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import Session

from service.db import alembic_config, make_engine
from service.models.users import Role, User
from service.search import search
from tests.conftest import POSTGRES_URL, make_settings
from tests.service.test_archive import fresh_postgres

MIGRATE_URL = os.environ.get("SOURCEBOOK_TEST_POSTGRES_MIGRATE_URL", str(
    sa.make_url(POSTGRES_URL).set(database=f"{sa.make_url(POSTGRES_URL).database}_migrate")
    .render_as_string(hide_password=False)))

RECORDING = """INSERT INTO recording (id, title, source, access, status, sha256, size_bytes,
    duration, format_name, codec, sample_rate, channels, media_path, created_at, updated_at)
    VALUES (1, 'before 0005', 'interview', 'team', 'transcribed', :sha, 1, 60, 'wav',
    'pcm_s16le', 16000, 1, '1/original.wav', :now, :now)"""
TRANSCRIPT = """INSERT INTO transcript (id, recording_id, version, backend, model, language,
    created_at) VALUES (:id, 1, :id, 'import', 'test', 'zh', :now)"""
SEGMENT = """INSERT INTO segment (transcript_id, recording_id, idx, start, "end", speaker, text,
    language, words, words_timed, search_text, edited)
    VALUES (:t, 1, 0, 0, 5, 'SPEAKER_00', :text, 'zh', '[]', true, :st, false)"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return fresh_postgres(MIGRATE_URL)


def _run(url: str, tmp_path: Path, *steps: tuple[str, str]) -> None:
    settings = make_settings(tmp_path, url)
    engine = make_engine(settings)
    try:
        for verb, rev in steps:
            with engine.begin() as conn:
                cfg = alembic_config(settings)
                cfg.attributes["connection"] = conn
                getattr(command, verb)(cfg, rev)
    finally:
        engine.dispose()


def _found(url: str, tmp_path: Path, q: str) -> list[tuple[int, str]]:
    engine = make_engine(make_settings(tmp_path, url))
    try:
        with Session(engine) as session:
            hits, _ = search(session, user=User(id=1, name="e", role=Role.editor), q=q)
            return [(h.transcript_version, h.text) for h in hits]
    finally:
        engine.dispose()


def test_0005_indexes_only_the_latest_version_of_existing_data(database: str,
                                                               tmp_path: Path) -> None:
    _run(database, tmp_path, ("upgrade", "0004"))
    engine = sa.create_engine(database)
    now: Any = "2026-11-25 12:00:00"
    with engine.begin() as conn:
        conn.execute(sa.text(RECORDING), {"sha": "0" * 64, "now": now})
        for version, text, spaced in ((1, "旧版本的长期主义", "旧 版 本 的 长 期 主 义"),
                                      (2, "新版本的长期主义", "新 版 本 的 长 期 主 义")):
            conn.execute(sa.text(TRANSCRIPT), {"id": version, "now": now})
            conn.execute(sa.text(SEGMENT), {"t": version, "text": text, "st": spaced})
    engine.dispose()

    _run(database, tmp_path, ("upgrade", "head"))
    assert _found(database, tmp_path, "长期主义") == [(2, "新版本的长期主义")]
    assert _found(database, tmp_path, "旧版本") == []

    # And back: the old schema indexes every version again.
    _run(database, tmp_path, ("downgrade", "0004"))
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        cols = [c["name"] for c in sa.inspect(conn).get_columns("segment")]
        assert "is_current" not in cols
        if engine.dialect.name == "sqlite":
            n = conn.exec_driver_sql(
                "SELECT count(*) FROM segment_fts WHERE segment_fts MATCH '\"长 期\"'").scalar()
            assert n == 2
    engine.dispose()


def test_0006_adds_token_expiry_and_existing_tokens_keep_working(database: str,
                                                                 tmp_path: Path) -> None:
    from service import auth
    from tests.conftest import SECRET

    _run(database, tmp_path, ("upgrade", "0005"))
    key = SECRET.encode()
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO \"user\" (id, name, role, disabled, created_at) "
                             "VALUES (1, 'before 0006', 'author', false, :now)"),
                     {"now": "2020-01-01 12:00:00"})
        conn.execute(sa.text("INSERT INTO apitoken (user_id, digest, label, created_at, "
                             "revoked) VALUES (1, :d, 'created', :now, false)"),
                     {"d": auth.token_digest(key, "sb_old"), "now": "2020-01-01 12:00:00"})
    engine.dispose()

    _run(database, tmp_path, ("upgrade", "0006"))
    engine = make_engine(make_settings(tmp_path, database))
    with Session(engine) as session:
        user, token = auth.authenticate(session, key=key, token="sb_old")
        assert user.name == "before 0006" and token.expires_at is None
        # ... unless a TTL is set now: it counts from when the token was issued.
        with pytest.raises(auth.TokenRefused, match="expired"):
            auth.authenticate(session, key=key, token="sb_old", ttl=timedelta(days=1))
    engine.dispose()

    _run(database, tmp_path, ("downgrade", "0005"))
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        assert "expires_at" not in [c["name"] for c in sa.inspect(conn).get_columns("apitoken")]
        assert conn.execute(sa.text("SELECT count(*) FROM apitoken")).scalar() == 1
    engine.dispose()
