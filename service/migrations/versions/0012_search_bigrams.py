"""search: CJK bigrams beside single characters in the PostgreSQL index

Revision ID: 0012
Revises: 0011

A Chinese word was a phrase of single characters, so on PostgreSQL 模型 meant building
and intersecting the GIN posting lists of 模 and 型 (each in a quarter or more of a
large archive): 0.2-0.7 s at 1 M segments. The index now also holds every pair of
adjacent CJK characters as a lexeme of its own (``模 型 是`` indexes 模, 型, 是, 模型,
型是), so a word of n >= 2 characters is the AND of its n - 1 bigrams, one short
posting list each. The exact phrase is still checked by LIKE on ``search_text``.

The pairs are computed in the database by ``search_vector(search_text)``, the index
expression, so every write path stays as it is; the index stays partial (current
segments only) and keeps its name. SQLite is unchanged: FTS5 reads its phrases from
positions and stops at its LIMIT.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: pipelines.text._CJK_RANGES at the time of writing: what ``cjk_spaced`` makes a token of
#: its own, and so what the query side pairs (a test checks that the two agree).
CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3040, 0x30FF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2EBEF),
    (0x2F800, 0x2FA1F),
    (0x30000, 0x323AF),
)


def _escape(cp: int) -> str:
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


CJK_CLASS = "[" + "".join(f"{_escape(lo)}-{_escape(hi)}" for lo, hi in CJK_RANGES) + "]"

# In search_text every CJK character is a token of its own between single spaces, so
# the pairs are the neighbouring tokens (the token list zipped with itself shifted by
# one) that are both a single CJK character. About 4x the cost of to_tsvector alone,
# paid once per written segment.
SEARCH_VECTOR = f"""
CREATE FUNCTION search_vector(search_text text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_tsvector('simple'::regconfig, search_text || coalesce(' ' || (
        SELECT string_agg(x || y, ' ') FROM unnest(a, a[2:]) AS p(x, y)
        WHERE x ~ '^{CJK_CLASS}$' AND y ~ '^{CJK_CLASS}$'), ''))
    FROM string_to_array(search_text, ' ') AS a
$$"""  # noqa: S608 (constant SQL: no user input)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("DROP INDEX IF EXISTS ix_segment_search")
    op.execute(SEARCH_VECTOR)
    op.execute("CREATE INDEX ix_segment_search ON segment "
               "USING gin (search_vector(search_text)) WHERE is_current")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("DROP INDEX IF EXISTS ix_segment_search")
    op.execute("DROP FUNCTION IF EXISTS search_vector(text)")
    op.execute("CREATE INDEX ix_segment_search ON segment "
               "USING gin (to_tsvector('simple', search_text)) WHERE is_current")
