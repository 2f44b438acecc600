"""Schema migrations applied to a database that already holds data.

Migration 0005 moved search to "current version only": a database written before it,
with several versions of a transcript, must come out with only the latest version
searchable, on both databases, and downgrade cleanly.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import Session

from service.db import alembic_config, make_engine, run_migrations
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
            run_migrations(engine, settings, verb, rev)
    finally:
        engine.dispose()


def _search_vector_sql() -> str:
    versions = Path(__file__).resolve().parents[2] / "service" / "migrations" / "versions"
    path = versions / "0012_search_bigrams.py"
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.SEARCH_VECTOR)


def _found(url: str, tmp_path: Path, q: str) -> list[tuple[int, str]]:
    engine = make_engine(make_settings(tmp_path, url))
    try:
        with Session(engine) as session:
            if engine.dialect.name == "postgresql" and not session.connection().exec_driver_sql(
                    "SELECT count(*) FROM pg_proc WHERE proname = 'search_vector'").scalar():
                # Today's search on a schema before 0012: it lends itself 0012's index
                # function, in this transaction only (never committed).
                session.connection().exec_driver_sql(_search_vector_sql())
            # No alias expansion: the schema under test may predate the glossary (0011).
            hits, _ = search(session, user=User(id=1, name="e", role=Role.editor), q=q,
                             aliases=False)
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
# --- 0007: ids are never reused ------------------------------------------------------

IDS_TABLES = ("user", "apitoken", "person", "recording", "job", "transcript", "segment",
              "chapter", "quote", "consentagreement", "restriction")


def _before_0007(tmp_path: Path) -> str:
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(alembic_config(make_settings(tmp_path, "sqlite://"))
                                           ).get_revision("0007")
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


def _write_archive(url: str, tmp_path: Path) -> None:
    """A little of everything, written by the models at the schema before 0007, with rows
    that reference each rebuilt table (a drop with foreign keys on would delete them)."""
    from pipelines.text import cjk_spaced
    from service.crud import audit
    from service.models.base import utcnow
    from service.models.chapters import Chapter
    from service.models.consent import Restriction, RestrictionLevel
    from service.models.jobs import Job
    from service.models.people import Person
    from service.models.quotes import ChapterQuote, Quote
    from service.models.recordings import Participant, ParticipantRole, Recording
    from service.models.users import ApiToken

    engine = make_engine(make_settings(tmp_path, url))
    try:
        with Session(engine) as s:
            user = User(name="editor", role=Role.editor)
            s.add(user)
            s.flush()
            s.add(ApiToken(user_id=user.id, digest="d" * 64))
            yan = Person(name="闫俊杰", kind="founder")
            s.add(yan)
            rec = Recording(title="before 0007", source="interview", sha256="7" * 64,
                            size_bytes=1, duration=60, format_name="wav", codec="pcm",
                            sample_rate=16000, channels=1, media_path="1/original.wav")
            s.add(rec)
            s.flush()
            s.add(Participant(recording_id=rec.id, person_id=yan.id,
                              role=ParticipantRole.interviewee))
            s.add(Job(recording_id=rec.id))
            # Transcripts and segments in SQL of that schema: the models' columns are
            # today's (0008 made words_timed a string and added transcript.carried; 0009
            # added voice columns to speakers and agreements).
            tid = s.connection().execute(sa.text(
                "INSERT INTO transcript (recording_id, version, backend, model, language, "
                "created_at) VALUES (:r, 1, 'import', 'test', 'zh', :now) RETURNING id"),
                {"r": rec.id, "now": utcnow()}).scalar()
            for idx, (a, b, label, text, lang) in enumerate((
                    (0, 5, "SPEAKER_00", "我们很早就决定做长期主义", "zh"),
                    (5, 9, "SPEAKER_01", "old words about flywheels", "en"))):
                s.connection().execute(sa.text(
                    'INSERT INTO segment (transcript_id, recording_id, idx, start, "end", '
                    "speaker, text, language, words, words_timed, search_text, edited, "
                    "is_current) VALUES (:t, :r, :i, :a, :b, :label, :text, :lang, '[]', "
                    "true, :st, false, true)"), {
                        "t": tid, "r": rec.id, "i": idx, "a": a, "b": b, "label": label,
                        "text": text, "lang": lang, "st": cjk_spaced(text)})
                s.connection().execute(sa.text(
                    "INSERT INTO speaker (recording_id, label, person_id) VALUES (:r, :l, :p)"),
                    {"r": rec.id, "l": label, "p": yan.id if label == "SPEAKER_00" else None})
            s.flush()
            segment_id = s.connection().execute(sa.text(
                "SELECT min(id) FROM segment WHERE transcript_id = :t"), {"t": tid}).scalar()
            assert segment_id is not None
            # In SQL too: 0010 added revision.kind.
            s.connection().execute(sa.text(
                "INSERT INTO revision (segment_id, user_id, created_at, before_text, "
                "after_text, before_speaker, after_speaker) VALUES (:s, :u, :now, 'a', 'b', "
                "'SPEAKER_00', 'SPEAKER_00')"), {"s": segment_id, "u": user.id, "now": utcnow()})
            chapter = Chapter(kind="chapter", title="第一章", position=0)
            s.add(chapter)
            quotes = [Quote(recording_id=rec.id, transcript_version=1, start=0, end=5,
                            speaker="SPEAKER_00", person_id=yan.id, verbatim=f"q{i}")
                      for i in range(3)]
            s.add_all(quotes)
            s.connection().execute(sa.text(
                "INSERT INTO consentagreement (person_id, recording_id, status, form, "
                "attribution, approval_required, created_at, updated_at) VALUES "
                "(:p, :r, 'pending', 'signed', 'on_record', false, :now, :now)"),
                {"p": yan.id, "r": rec.id, "now": utcnow()})
            s.add(Restriction(recording_id=rec.id, start=1, end=2,
                              level=RestrictionLevel.off_record))
            s.flush()
            s.add(ChapterQuote(chapter_id=chapter.id, quote_id=quotes[0].id))
            s.delete(quotes[2])  # the newest quote: SQLite would give its id out again
            # An older quote, deleted long ago: only the audit log still names it.
            audit.record(s, actor=user, action="delete", object_type="quote", object_id=9)
            audit.record(s, actor=user, action="delete", object_type="quote",
                         object_id=quotes[2].id)
            s.commit()
    finally:
        engine.dispose()


def _sqlite_schema(conn: sa.Connection) -> dict[str, Any]:
    """Columns, keys, indexes, triggers and views: everything but AUTOINCREMENT."""
    out: dict[str, Any] = {}
    tables = [r[0] for r in conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'segment_fts%'")]
    for t in tables:
        indexes = set()
        for _, name, unique, origin, partial in conn.exec_driver_sql(
                f'PRAGMA index_list("{t}")'):
            cols = tuple(r[2] for r in conn.exec_driver_sql(f'PRAGMA index_info("{name}")'))
            indexes.add((name if origin == "c" else origin, unique, partial, cols))
        out[t] = {
            "columns": [tuple(r) for r in conn.exec_driver_sql(f'PRAGMA table_info("{t}")')],
            "foreign_keys": sorted(tuple(r[2:]) for r in conn.exec_driver_sql(
                f'PRAGMA foreign_key_list("{t}")')),
            "indexes": indexes,
        }
    out["sql"] = dict(conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type IN ('trigger', 'view')").all())
    return out


def _rows(conn: sa.Connection) -> dict[str, list[tuple[Any, ...]]]:
    tables = sa.inspect(conn).get_table_names()
    return {t: [tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{t}" ORDER BY 1'))]
            for t in tables if t != "alembic_version" and not t.startswith("segment_fts")}


def _snapshot(url: str) -> tuple[dict[str, Any], dict[str, list[tuple[Any, ...]]], set[str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name != "sqlite":
                return {}, _rows(conn), set()
            autoinc = {name for name, sql in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                if "AUTOINCREMENT" in sql}
            return _sqlite_schema(conn), _rows(conn), autoinc
    finally:
        engine.dispose()


def _fts_ok(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql(
                    "INSERT INTO segment_fts(segment_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        engine.dispose()


def test_0007_keeps_data_indexes_and_triggers_and_never_reuses_ids(database: str,
                                                                   tmp_path: Path) -> None:
    down = _before_0007(tmp_path)
    _run(database, tmp_path, ("upgrade", down))
    _write_archive(database, tmp_path)
    schema, rows, autoinc = _snapshot(database)
    assert not autoinc & set(IDS_TABLES)
    assert rows["chapterquote"] and rows["revision"] and rows["participant"]

    _run(database, tmp_path, ("upgrade", "0007"))
    schema_after, rows_after, autoinc_after = _snapshot(database)
    assert rows_after == rows  # every row, with its id
    assert schema_after == schema  # columns, keys, indexes, triggers, views
    if database.startswith("sqlite"):
        assert autoinc_after == set(IDS_TABLES)
    _fts_ok(database)
    # Old segments are found; the rebuilt table's triggers index new ones and follow
    # the speaker map.
    assert _found(database, tmp_path, "长期主义") == [(1, "我们很早就决定做长期主义")]
    assert _found(database, tmp_path, "flywheels") == [(1, "old words about flywheels")]
    engine = make_engine(make_settings(tmp_path, database))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(SEGMENT.replace("VALUES (:t, 1, 0,", "VALUES (:t, 1, 2,")),
                         {"t": 1, "text": "新写的飞轮", "st": "新 写 的 飞 轮"})
            q = conn.execute(sa.text(
                "INSERT INTO quote (transcript_version, start, \"end\", speaker, verbatim, "
                "allow_multiple_speakers, created_at, updated_at) VALUES (1, 0, 1, 'S', 'new', "
                "false, :now, :now) RETURNING id"), {"now": "2026-12-01 00:00:00"}).scalar()
            deleted = max(r[0] for r in rows["quote"]) + 1
            assert q is not None and q > deleted
            if engine.dialect.name == "sqlite":
                assert q > 9  # past the id only the audit log remembers
    finally:
        engine.dispose()
    assert _found(database, tmp_path, "飞轮") == [(1, "新写的飞轮")]
    _fts_ok(database)

    # And back: the same schema as before, without AUTOINCREMENT, search still working.
    _run(database, tmp_path, ("downgrade", down))
    schema_back, rows_back, autoinc_back = _snapshot(database)
    assert schema_back == schema and not autoinc_back & set(IDS_TABLES)
    assert len(rows_back["quote"]) == len(rows["quote"]) + 1
    assert rows_back["chapterquote"] == rows["chapterquote"]
    _fts_ok(database)
    assert _found(database, tmp_path, "长期主义") == [(1, "我们很早就决定做长期主义")]


def test_0007_refuses_to_run_with_sqlite_foreign_keys_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fk.db'}"
    down = _before_0007(tmp_path)
    _run(url, tmp_path, ("upgrade", down))
    _write_archive(url, tmp_path)
    settings = make_settings(tmp_path, url)
    engine = make_engine(settings)  # foreign keys on, as every connection has them
    try:
        with pytest.raises(RuntimeError, match="foreign keys"), engine.begin() as conn:
            cfg = alembic_config(settings)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0007")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM chapterquote").scalar() == 1
    finally:
        engine.dispose()


def test_0008_makes_words_timed_three_way_and_back(database: str, tmp_path: Path) -> None:
    _run(database, tmp_path, ("upgrade", "0007"))
    engine = sa.create_engine(database)
    now: Any = "2026-12-01 09:00:00"
    words = '[{"start": 0, "end": 1, "text": "我", "probability": 0.9}]'
    with engine.begin() as conn:
        conn.execute(sa.text(RECORDING), {"sha": "8" * 64, "now": now})
        conn.execute(sa.text(TRANSCRIPT), {"id": 1, "now": now})
        for idx, (timed, w) in enumerate(((True, words), (True, "[]"), (False, words))):
            conn.execute(sa.text(
                SEGMENT.replace("VALUES (:t, 1, 0,", f"VALUES (:t, 1, {idx},")
                .replace("'[]', true", ":w, :timed")),
                {"t": 1, "text": f"第{idx}段", "st": f"第 {idx} 段", "w": w, "timed": timed})
    engine.dispose()

    def column() -> list[Any]:
        e = sa.create_engine(database)
        try:
            with e.connect() as conn:
                return [r[0] for r in conn.exec_driver_sql(
                    "SELECT words_timed FROM segment ORDER BY idx")]
        finally:
            e.dispose()

    _run(database, tmp_path, ("upgrade", "head"))
    # Recogniser times; a "timed" segment without words (an import); a correction.
    assert column() == ["asr", "estimated", "estimated"]
    _run(database, tmp_path, ("downgrade", "0007"))
    assert [bool(v) for v in column()] == [True, False, False]


def test_0012_indexes_cjk_bigrams_on_postgres_and_back(database: str, tmp_path: Path) -> None:
    _run(database, tmp_path, ("upgrade", "0011"))
    engine = sa.create_engine(database)
    now: Any = "2026-12-02 01:00:00"
    with engine.begin() as conn:
        conn.execute(sa.text(RECORDING), {"sha": "c" * 64, "now": now})
        conn.execute(sa.text(TRANSCRIPT), {"id": 1, "now": now})
        conn.execute(sa.text(SEGMENT.replace("'[]', true", "'[]', 'asr'")),
                     {"t": 1, "text": "长期主义的模型", "st": "长 期 主 义 的 模 型"})
    engine.dispose()

    def index() -> str:
        e = sa.create_engine(database)
        try:
            with e.connect() as conn:
                return str(conn.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_segment_search'"
                ).scalar_one())
        finally:
            e.dispose()

    _run(database, tmp_path, ("upgrade", "head"))
    # Existing segments are indexed by the new expression at once (no backfill step).
    assert _found(database, tmp_path, "模型") == [(1, "长期主义的模型")]
    assert _found(database, tmp_path, "主义的") == [(1, "长期主义的模型")]
    assert _found(database, tmp_path, "义模") == []
    if database.startswith("postgresql"):
        assert "search_vector((search_text)::text)" in index() and "is_current" in index()
    _run(database, tmp_path, ("downgrade", "0011"))
    if database.startswith("postgresql"):
        assert "to_tsvector('simple'" in index() and "is_current" in index()
        e = sa.create_engine(database)
        with e.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT count(*) FROM pg_proc WHERE proname = 'search_vector'").scalar() == 0
        e.dispose()
    _run(database, tmp_path, ("upgrade", "head"))
    assert _found(database, tmp_path, "模型") == [(1, "长期主义的模型")]
