"""`sourcebook export-archive` / `import-archive`: a BagIt round trip that loses nothing."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from service.config import Settings
from service.db import make_engine
from service.models.chapters import Chapter, ChapterKind
from service.models.people import Person
from service.models.quotes import Quote
from service.models.recordings import Speaker
from service.models.transcripts import Segment
from tests import factories as book
from tests.conftest import POSTGRES_URL, SECRET
from tests.service.test_fsck import add_consent_document, add_normalised, flip_byte, run_ops

RESTORE_URL = os.environ.get("SOURCEBOOK_TEST_POSTGRES_RESTORE_URL",
                             str(sa.make_url(POSTGRES_URL).set(
                                 database=f"{sa.make_url(POSTGRES_URL).database}_restore")
                                 .render_as_string(hide_password=False)))
IGNORED_FILES = {"README.md"}


def fresh_postgres(url: str) -> str:
    """An empty database at ``url`` (created if need be); import-archive migrates it."""
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": target.database}).first()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    finally:
        admin.dispose()
    engine = sa.create_engine(target)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def restore_url(api: Any, tmp_path: Path) -> str:
    """An empty database of the same kind as the source's."""
    if api.settings.is_sqlite:
        return f"sqlite:///{tmp_path / 'restored' / 'sourcebook.db'}"
    return fresh_postgres(RESTORE_URL)


def populate(api: Any, tmp_path: Path) -> dict[str, int]:
    """Every table gets rows: the consent tests' small book plus files and edits."""
    ids = book.small_book(api, tmp_path)
    add_normalised(api, ids["r_luo"])
    ids["c_doc"] = add_consent_document(api, ids["yan"], ids["r_luo"])
    with Session(api.engine) as session:
        seg = session.exec(select(Segment).where(Segment.recording_id == ids["r_luo"])
                           .order_by(col(Segment.idx))).first()
        assert seg is not None
        ids["segment"] = int(seg.id or 0)
    r = api.client.patch(f"/api/v1/segments/{ids['segment']}", headers=api.headers("researcher"),
                         json={"text": book.LUO_Q.replace("怎么", "如何")})
    assert r.status_code == 200, r.text
    r = api.client.post("/api/v1/glossary", headers=api.headers("researcher"),
                        json={"term": "稀宇科技", "aliases": ["MiniMax", "海螺AI"],
                              "kind": "organisation"})
    assert r.status_code == 201, r.text
    with Session(api.engine) as session:
        # A parent with a higher id than its child, as after re-organising the outline.
        epilogue = Chapter(title="尾声：港股敲钟之后", kind=ChapterKind.part, position=9)
        session.add(epilogue)
        session.flush()
        part2 = session.get(Chapter, ids["part2"])
        assert part2 is not None
        part2.parent_id = epilogue.id
        session.add(part2)
        yan = session.get(Person, ids["yan"])
        assert yan is not None
        yan.biometric_consent = True
        yan.voiceprint = [0.125, -0.5, 1e-7]
        session.add(yan)
        for s in session.exec(select(Speaker).where(Speaker.recording_id == ids["r_luo"])):
            s.embedding = [0.25, 0.75]
            session.add(s)
        session.commit()
    with api.engine.begin() as conn:
        # SQL NULL, not the JSON null the ORM writes: both must come back as they were.
        conn.execute(sa.update(Speaker).where(col(Speaker.recording_id) == ids["r_yao"])
                     .values(embedding=sa.null()))
    return ids


def table_rows(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    """Rows as the database returns them, plus which JSON columns are SQL NULL."""
    flags = [c.is_(None) for c in table.columns if isinstance(c.type, sa.JSON)]
    query = sa.select(table, *flags).order_by(*table.primary_key.columns)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def raw_rows(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    order = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            f'SELECT * FROM "{table.name}" ORDER BY {order}')]


def files_under(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] not in (".tmp", ".trash") and str(rel) not in IGNORED_FILES:
            out[str(rel)] = p.read_bytes()
    return out


def assert_same_archive(source: sa.Engine, target: sa.Engine, *, raw: bool) -> None:
    for table in SQLModel.metadata.sorted_tables:
        want, got = table_rows(source, table), table_rows(target, table)
        if table.name == "apitoken":
            assert got == [] and want, "tokens are not archived"
            continue
        if table.name == "auditevent":
            action = list(table.columns).index(table.c.action)
            want = [r for r in want if r[action] != "export-archive"]
            assert [r[action] for r in got if r[action] == "import-archive"] == ["import-archive"]
            got = [r for r in got if r[action] != "import-archive"]
        assert want, f"the fixture left {table.name} empty, so it proves nothing"
        assert got == want, table.name
        if raw and table.name != "auditevent":
            assert raw_rows(target, table) == raw_rows(source, table), table.name


def engine_for(url: str) -> Iterator[sa.Engine]:
    engine = make_engine(Settings(database_url=url, secret_key=SECRET))
    try:
        yield engine
    finally:
        engine.dispose()


def phrase_hits(engine: sa.Engine, phrase: str) -> list[int]:
    """Segment ids the full-text index finds for a CJK phrase (per-character tokens)."""
    spaced = " ".join(phrase)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("SELECT rowid FROM segment_fts WHERE segment_fts MATCH ? "
                                        "ORDER BY rowid", (f'"{spaced}"',))
        else:
            rows = conn.execute(sa.text(
                "SELECT id FROM segment WHERE to_tsvector('simple', search_text) @@ "
                "phraseto_tsquery('simple', :q) ORDER BY id"), {"q": spaced})
        return [int(r[0]) for r in rows]


def round_trip(api: Any, tmp_path: Path, restore_url: str) -> tuple[Path, Path]:
    bag = tmp_path / "backup-2026-01"
    out = run_ops(api, "export-archive", str(bag))
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout and not bag.with_name(bag.name + ".partial").exists()
    target_root = tmp_path / "restored" / "recordings"
    out = run_ops(api, "import-archive", str(bag), database_url=restore_url,
                  recordings_dir=target_root)
    assert out.returncode == 0, out.stderr
    assert "users token" in out.stdout
    return bag, target_root


def test_round_trip_restores_every_row_and_every_file(api: Any, tmp_path: Path,
                                                      restore_url: str) -> None:
    ids = populate(api, tmp_path)
    bag, target_root = round_trip(api, tmp_path, restore_url)

    # The bag itself: RFC 8493's files, and a manifest hash for every payload file.
    assert (bag / "bagit.txt").read_text() == ("BagIt-Version: 1.0\n"
                                               "Tag-File-Character-Encoding: UTF-8\n")
    manifest = {rel: digest for digest, rel in (
        line.split("  ", 1) for line in (bag / "manifest-sha256.txt").read_text().splitlines())}
    payload = {str(p.relative_to(bag)) for p in (bag / "data").rglob("*") if p.is_file()}
    assert set(manifest) == payload
    for rel, digest in manifest.items():
        assert hashlib.sha256((bag / rel).read_bytes()).hexdigest() == digest
    tags = (bag / "tagmanifest-sha256.txt").read_text()
    assert all(name in tags for name in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt"))
    oxum = sum((bag / rel).stat().st_size for rel in payload)
    assert f"Payload-Oxum: {oxum}.{len(payload)}" in (bag / "bag-info.txt").read_text()
    meta = json.loads((bag / "data" / "metadata.json").read_text())
    assert "apitoken" not in meta["tables"] and meta["tables"]["segment"]["rows"] > 0
    assert f"data/recordings/{ids['r_luo']}/normalised.wav" in payload

    for target in engine_for(restore_url):
        assert_same_archive(api.engine, target, raw=True)
        assert files_under(target_root) == files_under(api.settings.recordings_dir)
        # Search works on the restored rows, and new rows get fresh ids.
        assert phrase_hits(target, "数据飞轮") == phrase_hits(api.engine, "数据飞轮") != []
        assert phrase_hits(target, "如何留住") == [ids["segment"]]
        with Session(target) as session:
            top = session.exec(select(sa.func.max(Person.id))).one()
            p = Person(name="杨植麟", organisation="月之暗面")
            session.add(p)
            session.commit()
            assert top is not None and p.id == top + 1
        if target.dialect.name == "sqlite":
            with target.begin() as conn:
                conn.exec_driver_sql("INSERT INTO segment_fts(segment_fts, rank) "
                                     "VALUES ('integrity-check', 1)")

    # The restored archive passes its own fixity check.
    out = run_ops(api, "fsck", database_url=restore_url, recordings_dir=target_root)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_laptop_archive_moves_to_postgresql(api: Any, tmp_path: Path) -> None:
    """SQLite to PostgreSQL: the path from one author's laptop to a team server."""
    populate(api, tmp_path)
    restore_url = fresh_postgres(RESTORE_URL)
    _, target_root = round_trip(api, tmp_path, restore_url)
    for target in engine_for(restore_url):
        assert_same_archive(api.engine, target, raw=False)
        assert phrase_hits(target, "数据飞轮") == phrase_hits(api.engine, "数据飞轮") != []
    assert files_under(target_root) == files_under(api.settings.recordings_dir)


def test_a_tampered_bag_is_refused_and_nothing_is_imported(api: Any, tmp_path: Path,
                                                           restore_url: str) -> None:
    ids = populate(api, tmp_path)
    bag = tmp_path / "bag"
    assert run_ops(api, "export-archive", str(bag)).returncode == 0
    target_root = tmp_path / "restored" / "recordings"

    [original] = (bag / "data" / "recordings" / str(ids["r_inv"])).glob("original.*")
    flip_byte(original)
    (bag / "data" / "recordings" / "extra.txt").write_text("not in the manifest")
    out = run_ops(api, "import-archive", str(bag), database_url=restore_url,
                  recordings_dir=target_root)
    assert out.returncode == 1
    rel = str(original.relative_to(bag))
    assert f"{rel}: sha256" in out.stderr and "altered" in out.stderr
    assert "data/recordings/extra.txt: present but not in the manifest" in out.stderr
    assert "nothing was imported" in out.stderr
    assert not target_root.exists() or files_under(target_root) == {}
    if not api.settings.is_sqlite or Path(sa.make_url(restore_url).database or "").exists():
        for target in engine_for(restore_url):
            with target.connect() as conn:
                tables = sa.inspect(conn).get_table_names()
                assert "person" not in tables or conn.execute(
                    sa.select(sa.func.count()).select_from(Person)).scalar_one() == 0

    # A damaged rows file is caught the same way.
    flip_byte(original)
    (bag / "data" / "recordings" / "extra.txt").unlink()
    rows = bag / "data" / "tables" / "quote.jsonl"
    rows.write_text(rows.read_text().replace("天使轮", "A轮"))
    out = run_ops(api, "import-archive", str(bag), database_url=restore_url,
                  recordings_dir=target_root)
    assert out.returncode == 1 and "data/tables/quote.jsonl: sha256" in out.stderr


def test_import_refuses_a_database_that_is_not_empty(api: Any, tmp_path: Path) -> None:
    book.person(api, "唐杰", organisation="智谱")
    bag = tmp_path / "bag"
    assert run_ops(api, "export-archive", str(bag)).returncode == 0
    out = run_ops(api, "import-archive", str(bag))
    assert out.returncode == 1
    assert "not empty" in out.stderr and "person: 1" in out.stderr


def test_export_never_leaves_a_half_bag_under_the_name(api: Any, tmp_path: Path) -> None:
    rid = book.create_recording(api, tmp_path, "AGI-Next 圆桌")
    bag = tmp_path / "bag"
    bag.with_name("bag.partial").mkdir()
    out = run_ops(api, "export-archive", str(bag))
    assert out.returncode == 1 and "interrupted" in out.stderr and not bag.exists()
    bag.with_name("bag.partial").rmdir()
    # A stored file that no longer matches its hash stops the export: a backup must not
    # quietly carry damage forward.
    [original] = (api.settings.recordings_dir / str(rid)).glob("original.*")
    flip_byte(original)
    out = run_ops(api, "export-archive", str(bag))
    assert out.returncode == 1 and "sourcebook fsck" in out.stderr
    assert not bag.exists() and not bag.with_name("bag.partial").exists()


def test_a_restore_never_gives_out_an_id_the_audit_log_names(api: Any, tmp_path: Path,
                                                             restore_url: str) -> None:
    """The newest quote, person and chapter are deleted before the export: the restored
    rows stop below their ids, but the restored audit log still names them."""
    populate(api, tmp_path)
    person = book.person(api, "删掉的人")
    chapter = api.client.post("/api/v1/chapters", json={"kind": "chapter", "title": "删掉的章"},
                              headers=api.headers("author")).json()["id"]
    with Session(api.engine) as session:
        quote = session.exec(select(sa.func.max(col(Quote.id)))).one()
    for url, role in ((f"/api/v1/quotes/{quote}", "author"),
                      (f"/api/v1/people/{person}", "researcher"),
                      (f"/api/v1/chapters/{chapter}", "author")):
        r = api.client.delete(url, headers=api.headers(role))
        assert r.status_code == 204, (url, r.text)
    round_trip(api, tmp_path, restore_url)
    for target in engine_for(restore_url):
        with Session(target) as session:
            new = [Person(name="杨植麟"), Chapter(title="新的一章", kind=ChapterKind.chapter,
                                                  position=0)]
            session.add_all(new)
            session.commit()
            assert new[0].id is not None and new[0].id > person
            assert new[1].id is not None and new[1].id > chapter
            old = session.get(Quote, 1)
            assert old is not None
            copy = Quote(**old.model_dump(exclude={"id"}))
            session.add(copy)
            session.commit()
            assert copy.id is not None and copy.id > quote
