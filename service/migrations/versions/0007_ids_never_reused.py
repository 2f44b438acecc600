"""ids are never reused: AUTOINCREMENT on every table the audit log names (SQLite)

Revision ID: 0007
Revises: 0005 (written beside 0006; the merge puts it after 0006)

A SQLite ``INTEGER PRIMARY KEY`` gives a new row the highest id in use plus one, so
deleting the newest quote and making another gave the new one the deleted one's id, and
the audit log then named two quotes by one id. ``AUTOINCREMENT`` never hands out an id
twice; SQLite can add it only by rebuilding the table (create, copy, drop, rename).

- Rebuilt with Alembic's batch mode (``recreate="always"``): columns, data, indexes,
  unique and foreign key constraints are carried over as they are.
- Triggers and views are not: every one (the FTS triggers on ``segment`` and ``speaker``,
  the view ``segment_search`` the index reads, the append-only triggers of the audit
  log) is read from ``sqlite_master`` first, dropped, and created again from its own
  SQL afterwards. Segment ids do not change, so the full-text index stays valid as it is.
- The rebuild drops tables that others reference: with foreign keys on, that drop would
  delete the referencing rows (``ON DELETE CASCADE``). ``service.db.run_migrations`` turns
  them off around the migration and checks them before committing; run without it,
  this migration refuses to start.
- An id a deleted row had before this migration is not handed out again either: each
  table's counter starts past the highest id its audit events name.
- PostgreSQL: nothing to do; a sequence never goes back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: table -> the ``object_type`` its rows have in the audit log.
TABLES = {
    "user": "user",
    "apitoken": "token",
    "person": "person",
    "recording": "recording",
    "job": "job",
    "transcript": "transcript",
    "segment": "segment",
    "chapter": "chapter",
    "quote": "quote",
    "consentagreement": "consent",
    "restriction": "restriction",
}


def _sqlite() -> sa.Connection | None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "migration 0007 rebuilds tables, and with SQLite's foreign keys on, dropping "
            "the old table would delete every row that references it. Run it with "
            "`sourcebook migrate` (service.db.run_migrations), which turns them off.")
    return bind


def _rebuild(bind: sa.Connection, *, autoincrement: bool) -> None:
    saved = bind.exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('trigger', 'view') "
        "AND sql IS NOT NULL ORDER BY type = 'trigger', rowid").all()
    for kind, name, _ in reversed(saved):  # triggers first, then the views they may read
        op.execute(f'DROP {kind.upper()} "{name}"')
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass
    for _, _, sql in saved:  # views first, then triggers
        op.execute(sql)


def upgrade() -> None:
    bind = _sqlite()
    if bind is None:
        return
    _rebuild(bind, autoincrement=True)
    for table, object_type in TABLES.items():
        # The copy set each counter to the highest id present; a deleted row's id that
        # the audit log already names must not come back either.
        named = bind.execute(sa.text(
            "SELECT max(CAST(object_id AS INTEGER)) FROM auditevent "
            "WHERE object_type = :t AND object_id GLOB '[0-9]*' "
            "AND object_id NOT GLOB '*[^0-9]*'"), {"t": object_type}).scalar()
        if named is None:
            continue
        bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) SELECT :n, 0 "
                             "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = :n)"),
                     {"n": table})
        bind.execute(sa.text("UPDATE sqlite_sequence SET seq = max(seq, :s) WHERE name = :n"),
                     {"s": int(named), "n": table})


def downgrade() -> None:
    bind = _sqlite()
    if bind is None:
        return
    _rebuild(bind, autoincrement=False)
    for table in TABLES:
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :n"), {"n": table})
