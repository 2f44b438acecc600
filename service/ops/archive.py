"""Backups as BagIt bags (RFC 8493): every table's rows plus every stored file.

Layout of a bag::

    bagit.txt                   BagIt-Version 1.0, UTF-8
    bag-info.txt                date, Payload-Oxum, schema revision
    manifest-sha256.txt         sha256 of every payload file
    tagmanifest-sha256.txt      sha256 of the three files above
    data/metadata.json          what the bag holds: schema revision, tables, row counts
    data/tables/<table>.jsonl   one JSON object per row, in primary-key order
    data/recordings/...         the stored files, at their paths under the recordings root

Rows go one per line rather than into one big JSON document so that both directions
stream: an archive of thousands of hours holds millions of segments. API token digests
are left out: a bag is a copy that travels, and a restored installation issues new
tokens (``sourcebook users token NAME``).

Restoring needs an empty database at the same schema revision. Ids are kept, so every
reference holds; id counters (PostgreSQL sequences, SQLite's AUTOINCREMENT) are moved
past the restored ids and past the ids the restored audit log names; SQLite's FTS
triggers index the restored ``search_text`` as the segments are inserted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, col

import service.models  # noqa: F401  (registers every table on SQLModel.metadata)
from service.config import Settings
from service.crud import audit
from service.db import current_revision, head_revision, migrate
from service.filemodes import READ_ONLY_MODE, open_private, private_dir
from service.models.audit import OBJECT_TABLES, AuditEvent
from service.models.base import UTCDateTime
from service.ops.bagit import (
    HashingWriter,
    bag_info,
    check_files,
    fsync_dir,
    read_manifest,
    write_tags,
    write_text,
)
from service.storage import CHUNK, Storage, sha256_file

FORMAT = "sourcebook-archive"
FORMAT_VERSION = 1
#: Tables a bag leaves out, and why (written into metadata.json).
EXCLUDED_TABLES = {"apitoken": "token digests stay with the installation that issued them"}
#: Columns holding a path under the recordings root, and the column with its sha256.
FILE_COLUMNS = {
    "recording": (("media_path", "sha256"), ("normalised_path", "normalised_sha256")),
    "consentagreement": (("document_path", "document_sha256"),),
}
#: Key of a dumped row listing its JSON columns that are SQL NULL (not JSON ``null``).
SQL_NULL_KEY = "$sql_null"
BATCH = 1000


class ArchiveError(Exception):
    """Export or import cannot go on; the message says what to do."""


@dataclass
class ArchiveResult:
    path: Path
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def archived_tables() -> list[sa.Table]:
    """The tables a bag holds, parents before children."""
    return [t for t in SQLModel.metadata.sorted_tables if t.name not in EXCLUDED_TABLES]


# --- export ---------------------------------------------------------------------------

def export_archive(engine: Engine, settings: Settings, target: Path) -> ArchiveResult:
    """Write a bag of the whole archive to ``target`` (which must not exist yet).

    The bag is assembled in ``<target>.partial`` and renamed when complete, so a
    directory named ``target`` is always a whole bag.
    """
    started = time.monotonic()
    target = target.resolve()
    partial = target.with_name(target.name + ".partial")
    if target.exists():
        raise ArchiveError(f"{target} already exists; choose a new directory for the archive")
    if partial.exists():
        raise ArchiveError(f"{partial} exists: an earlier export was interrupted (or one is "
                           "running now). Delete it and try again.")
    revision = _check_revision(engine, settings)
    storage = Storage(settings.recordings_dir)
    result = ArchiveResult(path=target)
    manifest: dict[str, str] = {}
    try:
        # The bag holds every transcript, restricted text included: owner-only.
        private_dir(partial / "data" / "tables", tighten_existing=False)
        files = _dump_tables(engine, partial, manifest, result)
        for rel, expected in files:
            dst = partial / "data" / "recordings" / rel
            digest, size = _copy_hashing(storage.path_of(rel), dst, what=rel)
            if expected is not None and digest != expected:
                raise ArchiveError(
                    f"stored file {rel} does not match the sha256 in the database; "
                    "run `sourcebook fsck` and restore it before exporting")
            manifest[f"data/recordings/{rel}"] = digest
            result.files += 1
            result.bytes += size
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "schema_revision": revision,
            "exported_at": datetime.now(UTC).isoformat(),
            "source_dialect": engine.dialect.name,
            "tables": {name: {"file": f"tables/{name}.jsonl", "rows": n}
                       for name, n in result.rows.items()},
            "excluded_tables": EXCLUDED_TABLES,
            "files": result.files,
        }
        manifest["data/metadata.json"] = write_text(
            partial / "data" / "metadata.json", json.dumps(meta, indent=2, ensure_ascii=False))
        write_tags(partial, manifest, revision)
        partial.rename(target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    result.seconds = time.monotonic() - started
    return result


def _dump_tables(engine: Engine, bag: Path, manifest: dict[str, str],
                 result: ArchiveResult) -> list[tuple[str, str | None]]:
    """Write every table from one snapshot; returns the files the rows reference."""
    files: list[tuple[str, str | None]] = []
    with _snapshot(engine) as conn:
        for table in archived_tables():
            json_cols = [c for c in table.columns if isinstance(c.type, sa.JSON)]
            query = sa.select(table, *[c.is_(None).label(f"{SQL_NULL_KEY}{c.name}")
                                       for c in json_cols]
                              ).order_by(*table.primary_key.columns)
            rel = f"data/tables/{table.name}.jsonl"
            count = 0
            with HashingWriter(bag / rel) as out:
                for row in conn.execution_options(yield_per=BATCH).execute(query).mappings():
                    out.write(json.dumps(_encode_row(table, row, json_cols),
                                         ensure_ascii=False, separators=(",", ":")) + "\n")
                    count += 1
                    for path_col, sha_col in FILE_COLUMNS.get(table.name, ()):
                        if row[path_col]:
                            files.append((row[path_col], row[sha_col]))
            manifest[rel] = out.hexdigest()
            result.rows[table.name] = count
    return files


class _snapshot:
    """A connection whose reads all see one consistent state of the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None

    def __enter__(self) -> Connection:
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect().execution_options(isolation_level="REPEATABLE READ")
            conn.begin()
        else:
            conn = self.engine.connect()
            # pysqlite starts no transaction for SELECTs; an explicit one pins the WAL
            # snapshot, so rows written during the export are not half seen.
            conn.exec_driver_sql("BEGIN")
        self.conn = conn
        return conn

    def __exit__(self, *exc: object) -> None:
        assert self.conn is not None
        self.conn.rollback()
        self.conn.close()


def _encode_row(table: sa.Table, row: sa.RowMapping, json_cols: list[sa.Column[Any]]
                ) -> dict[str, Any]:
    out = {c.name: _encode(row[c.name]) for c in table.columns}
    sql_null = [c.name for c in json_cols if row[f"{SQL_NULL_KEY}{c.name}"]]
    if sql_null:
        out[SQL_NULL_KEY] = sql_null
    return out


def _encode(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# --- validation -----------------------------------------------------------------------

def validate_bag(bag: Path) -> dict[str, Any]:
    """Check a bag completely (every hash); returns its metadata.json.

    Raises ArchiveError naming every file that is missing, altered or unlisted.
    """
    bag = bag.resolve()
    if not bag.is_dir():
        raise ArchiveError(f"{bag} is not a directory; give the path of an exported archive")
    declaration = bag / "bagit.txt"
    if not declaration.is_file() or "BagIt-Version:" not in declaration.read_text("utf-8"):
        raise ArchiveError(f"{bag} is not a BagIt bag (bagit.txt is missing or invalid)")
    if not (bag / "manifest-sha256.txt").is_file():
        raise ArchiveError(f"{bag} has no manifest-sha256.txt; only sha256 bags are supported")
    problems: list[str] = []
    if (bag / "tagmanifest-sha256.txt").is_file():
        tags = read_manifest(bag, "tagmanifest-sha256.txt", problems)
        problems += check_files(bag, tags)
    payload = read_manifest(bag, "manifest-sha256.txt", problems)
    problems += check_files(bag, payload)
    on_disk = {str(p.relative_to(bag)) for p in (bag / "data").rglob("*") if p.is_file()}
    problems += [f"{rel}: present but not in the manifest"
                 for rel in sorted(on_disk - set(payload))]
    oxum = bag_info(bag).get("Payload-Oxum")
    if oxum and not problems:
        size = sum((bag / rel).stat().st_size for rel in payload)
        if oxum != f"{size}.{len(payload)}":
            problems.append(f"bag-info.txt: Payload-Oxum {oxum} does not match the payload "
                            f"({size}.{len(payload)})")
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise ArchiveError(f"the archive at {bag} failed validation, so nothing was imported:"
                           f"\n  {shown}{more}")
    meta_path = bag / "data" / "metadata.json"
    if "data/metadata.json" not in payload:
        raise ArchiveError(f"{bag} is a bag but not a Sourcebook archive (no data/metadata.json)")
    meta: dict[str, Any] = json.loads(meta_path.read_text("utf-8"))
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ArchiveError(f"{bag} holds format {meta.get('format')!r} version "
                           f"{meta.get('format_version')!r}; this version reads {FORMAT} "
                           f"version {FORMAT_VERSION}")
    return meta


# --- import ---------------------------------------------------------------------------

def import_archive(engine: Engine, settings: Settings, bag: Path) -> ArchiveResult:
    """Validate ``bag`` and restore it into an empty database and recordings root."""
    started = time.monotonic()
    meta = validate_bag(bag)
    bag = bag.resolve()
    migrate(engine, settings)
    head = head_revision(settings)
    if meta.get("schema_revision") != head:
        raise ArchiveError(
            f"the archive was written at schema revision {meta.get('schema_revision')!r}, but "
            f"this installation is at {head!r}; import it with the Sourcebook version that "
            "exported it, then upgrade that installation with `sourcebook migrate`")
    _check_empty(engine)
    storage = Storage(settings.recordings_dir)
    storage.ensure()
    payload = read_manifest(bag, "manifest-sha256.txt", [])
    media = {rel.removeprefix("data/recordings/"): digest for rel, digest in payload.items()
             if rel.startswith("data/recordings/")}
    _check_no_conflicts(storage, media)

    result = ArchiveResult(path=bag)
    placed: list[Path] = []
    try:
        with Session(engine) as session:
            conn = session.connection()
            for table in archived_tables():
                entry = meta["tables"].get(table.name)
                if entry is None:
                    raise ArchiveError(f"the archive has no rows file for table {table.name}")
                result.rows[table.name] = _load_table(conn, table, bag / "data" / entry["file"])
            _advance_id_counters(conn)
            for rel, digest in sorted(media.items()):
                target = storage.path_of(rel)
                if target.exists():
                    continue  # identical content, checked above
                tmp = storage.new_temp()
                got, size = _copy_hashing(bag / "data" / "recordings" / rel, tmp, what=rel)
                if got != digest:
                    tmp.unlink(missing_ok=True)
                    raise ArchiveError(f"data/recordings/{rel} changed while it was imported; "
                                       "nothing was imported")
                private_dir(target.parent)
                tmp.replace(target)
                target.chmod(READ_ONLY_MODE)
                placed.append(target)
                result.files += 1
                result.bytes += size
            audit.record(session, actor=None, action="import-archive", object_type="archive",
                         summary=f"restored {result.total_rows} rows and {result.files} files "
                                 f"from a bag exported {meta.get('exported_at')} (cli)")
            session.commit()
    except BaseException:
        for p in placed:
            p.unlink(missing_ok=True)
        raise
    result.seconds = time.monotonic() - started
    return result


def _check_empty(engine: Engine) -> None:
    with engine.connect() as conn:
        used = []
        for table in SQLModel.metadata.sorted_tables:
            n = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            if n:
                used.append(f"{table.name}: {n}")
    if used:
        raise ArchiveError(
            "the database is not empty (" + ", ".join(used) + "); import-archive restores into "
            "an empty database only: point SOURCEBOOK_DATABASE_URL at a new database")


def _check_no_conflicts(storage: Storage, media: dict[str, str]) -> None:
    clashes = []
    for rel, digest in media.items():
        target = storage.path_of(rel)
        if target.exists() and (not target.is_file() or sha256_file(target) != digest):
            clashes.append(rel)
    if clashes:
        raise ArchiveError(
            f"the recordings root {storage.root} already holds different files at "
            f"{', '.join(sorted(clashes)[:10])}; restore into an empty recordings directory")


def _load_table(conn: Connection, table: sa.Table, path: Path) -> int:
    json_cols = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}
    # Rows of a self-referencing table (chapter.parent_id) are inserted first without the
    # reference and linked afterwards, since a parent can have a higher id than its child.
    self_refs = [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]
    links: list[dict[str, Any]] = []
    count = 0
    batch: list[dict[str, Any]] = []
    for row in _read_rows(path):
        values = _decode_row(table, row, json_cols)
        if self_refs and any(values.get(c) is not None for c in self_refs):
            links.append({**{f"pk_{c.name}": values[c.name] for c in table.primary_key.columns},
                          **{f"ref_{c}": values[c] for c in self_refs}})
            values.update(dict.fromkeys(self_refs))
        batch.append(values)
        count += 1
        if len(batch) >= BATCH:
            conn.execute(table.insert(), batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)
    if links:
        update = table.update().where(
            *[c == sa.bindparam(f"pk_{c.name}") for c in table.primary_key.columns]
        ).values({c: sa.bindparam(f"ref_{c}") for c in self_refs})
        conn.execute(update, links)
    return count


def _read_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row: dict[str, Any] = json.loads(line)
                yield row


def _decode_row(table: sa.Table, row: dict[str, Any], json_cols: set[str]) -> dict[str, Any]:
    sql_null = set(row.get(SQL_NULL_KEY, ()))
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.name not in row:
            continue  # a column with a server default the bag predates
        value = row[column.name]
        if column.name in json_cols:
            # JSON ``null`` and SQL NULL differ (``IS NULL`` sees only the latter).
            values[column.name] = (sa.null() if column.name in sql_null
                                   else sa.JSON.NULL if value is None else value)
        elif value is None:
            values[column.name] = None
        elif isinstance(column.type, UTCDateTime):
            values[column.name] = datetime.fromisoformat(value)
        elif isinstance(column.type, sa.Date):
            values[column.name] = date.fromisoformat(value)
        elif isinstance(column.type, sa.Enum) and column.type.enum_class is not None:
            values[column.name] = column.type.enum_class(value)
        else:
            values[column.name] = value
    return values


def _audit_named_ids(conn: Connection) -> dict[str, int]:
    """Per table, the highest id the (restored) audit log names."""
    numeric = (col(AuditEvent.object_id).op("GLOB")("[0-9]*")
               & ~col(AuditEvent.object_id).op("GLOB")("*[^0-9]*")
               if conn.dialect.name == "sqlite"
               else col(AuditEvent.object_id).op("~")("^[0-9]{1,18}$"))
    rows = conn.execute(
        sa.select(AuditEvent.object_type,  # type: ignore[call-overload]
                  sa.func.max(sa.cast(AuditEvent.object_id, sa.BigInteger)))
        .where(numeric, col(AuditEvent.object_type).in_(OBJECT_TABLES))
        .group_by(AuditEvent.object_type))
    return {OBJECT_TABLES[kind]: int(top) for kind, top in rows if top is not None}


def _advance_id_counters(conn: Connection) -> None:
    """Move each id counter past the restored ids, so the next insert does not collide,
    and past every id the restored audit log names: a row deleted before the export
    must not lend its id to a new one (the log would name two objects by one id)."""
    named = _audit_named_ids(conn)
    for table in SQLModel.metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        top = max(conn.execute(sa.select(sa.func.max(column))).scalar() or 0,
                  named.get(table.name, 0))
        if conn.dialect.name == "postgresql":
            sequence = sa.func.pg_get_serial_sequence(f'"{table.name}"', column.name)
            conn.execute(sa.select(sa.func.setval(sequence, top + 1, False)))
        elif table.dialect_options["sqlite"]["autoincrement"] and top:
            # The inserts left sqlite_sequence at the highest restored id (or no row).
            conn.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :n"),
                         {"n": table.name})
            conn.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:n, :s)"),
                         {"n": table.name, "s": top})


# --- files ----------------------------------------------------------------------------

def _check_revision(engine: Engine, settings: Settings) -> str:
    current = current_revision(engine)
    head = head_revision(settings)
    if current is None or current != head:
        raise ArchiveError(f"the database is at schema revision {current!r}, not the latest "
                           f"{head!r}; run `sourcebook migrate` first")
    return current


def _copy_hashing(src: Path, dst: Path, *, what: str) -> tuple[str, int]:
    """Copy a file, returning the sha256 and size of the bytes written."""
    h = hashlib.sha256()
    size = 0
    private_dir(dst.parent, tighten_existing=False)
    try:
        with src.open("rb") as fin, os.fdopen(open_private(dst), "wb") as fout:
            while chunk := fin.read(CHUNK):
                h.update(chunk)
                fout.write(chunk)
                size += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
    except FileNotFoundError:
        raise ArchiveError(f"stored file {what} is missing (deleted during the export, or lost: "
                           "run `sourcebook fsck`)") from None
    return h.hexdigest(), size


