"""Database engine, sessions and migrations.

SQLite (the embedded default) runs with WAL, foreign keys on and a busy timeout, so
the API and the worker threads can write to one file. PostgreSQL is the team setup.
The schema is owned by Alembic (``service/migrations``); ``migrate()`` brings any
database to the latest revision.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.config import Settings
from service.filemodes import secure_sqlite

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15_000
# Up to 40 connections per process: as many as the threads (anyio's default 40) that run
# the synchronous routes, so under load a request queues for a thread, never for the pool.
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 30
PG_CONNECT_TIMEOUT_S = 5
#: What a request that hit the database while it was out of reach gets; see
#: ``service.api.errors.database_unavailable``, registered for these errors in
#: ``service.app``.
DB_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
RETRY_AFTER_S = 5
#: SQLite OperationalErrors that mean "not available now" rather than a broken query.
SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o")

_migrate_lock = threading.Lock()
log = logging.getLogger("sourcebook.db")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # NORMAL is durable across application crashes in WAL mode; only a power cut can
    # lose the last transactions, which an uploader would see and retry.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(settings: Settings) -> Engine:
    """Create the engine for ``settings.database_url`` with the right per-dialect setup."""
    url = settings.database_url
    if url.startswith("sqlite"):
        db_path = sa.engine.make_url(url).database
        if db_path and db_path != ":memory:":
            # The file holds restricted text: 0600 before SQLite first opens it, which
            # also gives its -wal and -shm files that mode.
            secure_sqlite(Path(db_path))
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=20,
            max_overflow=20,
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN, which lets two writers both
        # read and then deadlock on upgrade; BEGIN IMMEDIATE on write paths is done by
        # taking the write lock at the first write instead (see crud.lock_for_write).
        return engine
    return sa.create_engine(
        url,
        # A connection the server or a proxy dropped (a PostgreSQL restart, a failover)
        # is found at checkout and replaced, so the API recovers by itself.
        pool_pre_ping=True,
        pool_size=PG_POOL_SIZE,
        max_overflow=PG_MAX_OVERFLOW,
        pool_recycle=1800,
        # Wait this long for a free connection before a request fails with 503.
        pool_timeout=10,
        # Fail fast when the host does not answer at all, instead of the OS's ~2 min.
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
    )


def alembic_config(settings: Settings) -> Any:
    # alembic (about 0.2 s to import) loads only where migrations are run or read, here and
    # below: importing service.db (every CLI command, crud, tests) stays cheap.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine, settings: Settings) -> None:
    """Upgrade the database to the latest schema (idempotent)."""
    if current_revision(engine) == _head(str(MIGRATIONS_DIR)):
        return  # the common case on every start: nothing to do, skip Alembic's machinery
    run_migrations(engine, settings, "upgrade", "head")


def run_migrations(engine: Engine, settings: Settings, verb: str, revision: str) -> None:
    """``alembic upgrade|downgrade <revision>`` on ``engine``, in one transaction.

    On SQLite, foreign keys are off while it runs: a migration that rebuilds a table
    (batch mode) drops the old one, and with them on, that drop deletes every row that
    references it. They are checked before the commit and turned on again afterwards.
    The PRAGMA only works outside a transaction, so it comes before the explicit BEGIN
    (which also makes the DDL transactional: pysqlite would autocommit it).
    """
    from alembic import command

    with _migrate_lock, engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                if sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                cfg = alembic_config(settings)
                cfg.attributes["connection"] = conn
                getattr(command, verb)(cfg, revision)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration to {revision} left rows whose foreign "
                                           f"keys point nowhere, e.g. {broken[:5]}; rolled back")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        rev: str | None = MigrationContext.configure(conn).get_current_revision()
        return rev


def head_revision(settings: Settings) -> str | None:
    return _head(str(MIGRATIONS_DIR))


@functools.lru_cache(maxsize=4)
def _head(migrations_dir: str) -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir)
    head: str | None = ScriptDirectory.from_config(cfg).get_current_head()
    return head


