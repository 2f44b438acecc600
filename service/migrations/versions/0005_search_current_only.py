"""search indexes only the current transcript version, with filter tokens (SQLite)

Revision ID: 0005
Revises: 0004

Until now every version of every transcript was in the full-text index, and a query
read each hit's segment row to keep only the current version, the visible recordings
and the filters: ~4 us a hit, so a word with 200 000 hits took seconds. Now:

- ``segment.is_current`` marks the segments of each recording's latest version; only
  those are indexed (older versions stay readable with ``?version=N``);
- SQLite: ``segment_fts`` has a second column, ``search_meta``, of filter tokens:
  ``r<recording id>``, ``l<hex of language>`` and ``p<person id>`` (0: unmapped) from
  the speaker map, which triggers on ``speaker`` keep current; so the recording,
  language, person and visibility filters are answered by the index alone. Its external content is the view
  ``segment_search`` (current segments, with the tokens computed), so a ``rebuild``
  yields exactly what the triggers maintain; the triggers compute the same expression
  from ``old.*`` when deleting, as an external-content table requires;
- PostgreSQL: the GIN index becomes partial (``WHERE is_current``);
- ``ix_segment_span`` (recording, current, start, end) finds the segments under a
  restricted span without reading the rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _meta(row: str, person: str | None = None) -> str:
    # Hex keeps any language code a single unicode61 token; the search side
    # (service.search.meta_token) encodes the same way. The person comes from the
    # recording's speaker map unless the caller (a speaker trigger) says which.
    if person is None:
        person = ("(SELECT sp.person_id FROM speaker sp WHERE sp.recording_id = "  # noqa: S608
                  f"{row}.recording_id AND sp.label = {row}.speaker)")
    return (f"'r' || {row}.recording_id || ' l' || hex({row}.language) || "
            f"' p' || coalesce({person}, 0)")


def _speaker_reindex(old_person: str, new_person: str, row: str) -> str:
    """Trigger body: re-index the current segments of one speaker label."""
    match = (f"FROM segment s WHERE s.recording_id = {row}.recording_id "
             f"AND s.speaker = {row}.label AND s.is_current")
    return (f"INSERT INTO segment_fts(segment_fts, rowid, search_text, search_meta) "
            f"SELECT 'delete', s.id, s.search_text, {_meta('s', old_person)} {match}; "
            f"INSERT INTO segment_fts(rowid, search_text, search_meta) "
            f"SELECT s.id, s.search_text, {_meta('s', new_person)} {match};")


SQLITE_FTS = [
    f"""CREATE VIEW segment_search AS
        SELECT id, search_text, {_meta('segment')} AS search_meta
        FROM segment WHERE is_current""",  # noqa: S608 (constant SQL: no user input)
    """CREATE VIRTUAL TABLE segment_fts USING fts5(
        search_text, search_meta, content='segment_search', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    f"""CREATE TRIGGER segment_fts_ai AFTER INSERT ON segment WHEN new.is_current BEGIN
        INSERT INTO segment_fts(rowid, search_text, search_meta)
        VALUES (new.id, new.search_text, {_meta('new')});
    END""",  # noqa: S608 (constant SQL: no user input)
    f"""CREATE TRIGGER segment_fts_ad AFTER DELETE ON segment WHEN old.is_current BEGIN
        INSERT INTO segment_fts(segment_fts, rowid, search_text, search_meta)
        VALUES ('delete', old.id, old.search_text, {_meta('old')});
    END""",  # noqa: S608 (constant SQL: no user input)
    # One trigger, two conditional statements: the old entry must be gone before the
    # new one is added, and separate triggers would fire in an unspecified order.
    f"""CREATE TRIGGER segment_fts_au
        AFTER UPDATE OF search_text, speaker, language, recording_id, is_current ON segment
        BEGIN
        INSERT INTO segment_fts(segment_fts, rowid, search_text, search_meta)
        SELECT 'delete', old.id, old.search_text, {_meta('old')} WHERE old.is_current;
        INSERT INTO segment_fts(rowid, search_text, search_meta)
        SELECT new.id, new.search_text, {_meta('new')} WHERE new.is_current;
    END""",
    # The speaker map is part of every indexed segment's tokens (the person filter is
    # one token), so mapping, remapping, unmapping (also by a person's deletion, whose
    # SET NULL runs as an UPDATE) and removing a label re-index that label's segments.
    f"""CREATE TRIGGER speaker_fts_ai AFTER INSERT ON speaker
        WHEN new.person_id IS NOT NULL BEGIN
        {_speaker_reindex('NULL', 'new.person_id', 'new')}
    END""",
    f"""CREATE TRIGGER speaker_fts_ad AFTER DELETE ON speaker
        WHEN old.person_id IS NOT NULL BEGIN
        {_speaker_reindex('old.person_id', 'NULL', 'old')}
    END""",
    f"""CREATE TRIGGER speaker_fts_au AFTER UPDATE OF person_id ON speaker
        WHEN old.person_id IS NOT new.person_id BEGIN
        {_speaker_reindex('old.person_id', 'new.person_id', 'old')}
    END""",
    """CREATE TRIGGER speaker_label_fixed BEFORE UPDATE OF label, recording_id ON speaker
        WHEN old.label IS NOT new.label OR old.recording_id IS NOT new.recording_id BEGIN
        SELECT RAISE(ABORT, 'a speaker label cannot be renamed or moved; map it to a person');
    END""",
]

OLD_SQLITE = [
    "DROP TRIGGER IF EXISTS speaker_fts_ai",
    "DROP TRIGGER IF EXISTS speaker_fts_ad",
    "DROP TRIGGER IF EXISTS speaker_fts_au",
    "DROP TRIGGER IF EXISTS speaker_label_fixed",
    "DROP TRIGGER IF EXISTS segment_fts_ai",
    "DROP TRIGGER IF EXISTS segment_fts_ad",
    "DROP TRIGGER IF EXISTS segment_fts_au",
    "DROP TABLE IF EXISTS segment_fts",
]

# The latest version of each recording is its current one.
MARK_OLD_VERSIONS = """
UPDATE segment SET is_current = false
WHERE transcript_id IN (
    SELECT t.id FROM transcript t
    WHERE EXISTS (SELECT 1 FROM transcript n
                  WHERE n.recording_id = t.recording_id AND n.version > t.version))
"""


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for stmt in OLD_SQLITE:
            op.execute(stmt)
    else:
        op.execute("DROP INDEX IF EXISTS ix_segment_search")
    with op.batch_alter_table("segment") as batch_op:
        batch_op.add_column(sa.Column("is_current", sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.create_index("ix_segment_span",
                              ["recording_id", "is_current", "start", "end"])
    op.execute(MARK_OLD_VERSIONS)
    if sqlite:
        for stmt in SQLITE_FTS:
            op.execute(stmt)
        op.execute("INSERT INTO segment_fts(segment_fts) VALUES ('rebuild')")
    else:
        op.execute("CREATE INDEX ix_segment_search ON segment "
                   "USING gin (to_tsvector('simple', search_text)) WHERE is_current")


OLD_SQLITE_FTS = [
    """CREATE VIRTUAL TABLE segment_fts USING fts5(
        search_text, content='segment', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER segment_fts_ai AFTER INSERT ON segment BEGIN
        INSERT INTO segment_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    """CREATE TRIGGER segment_fts_ad AFTER DELETE ON segment BEGIN
        INSERT INTO segment_fts(segment_fts, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
    END""",
    """CREATE TRIGGER segment_fts_au AFTER UPDATE OF search_text ON segment BEGIN
        INSERT INTO segment_fts(segment_fts, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
        INSERT INTO segment_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
]


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for stmt in OLD_SQLITE:
            op.execute(stmt)
        op.execute("DROP VIEW IF EXISTS segment_search")
    else:
        op.execute("DROP INDEX IF EXISTS ix_segment_search")
    with op.batch_alter_table("segment") as batch_op:
        batch_op.drop_index("ix_segment_span")
        batch_op.drop_column("is_current")
    if sqlite:
        # Dropping a column rebuilt the table (and its triggers) above.
        for stmt in OLD_SQLITE_FTS:
            op.execute(stmt)
        op.execute("INSERT INTO segment_fts(segment_fts) VALUES ('rebuild')")
    else:
        op.execute("CREATE INDEX ix_segment_search ON segment "
                   "USING gin (to_tsvector('simple', search_text))")
