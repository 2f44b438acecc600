"""Alignment: word times say where they come from; corrections carried to new versions

``transcript.carried`` (int) and ``transcript.conflicts`` (JSON list) record, on a
version made by transcribing again, how many corrections of the version before were
replayed onto it and which could not be, with the reason.

Revision ID: 0008
Revises: 0007

``segment.words_timed`` was a boolean: true for the recogniser's own word times (and,
wrongly, for imported cues that had no word times at all), false once a correction
spread the words by character share. It becomes a string with three values:

- ``asr``: the recogniser's word times;
- ``aligned``: times from forced alignment of the segment's text (a correction, an
  import) against its audio;
- ``estimated``: spread over the segment by character share, or no words at all.

true becomes ``asr`` where the segment has words and ``estimated`` where it has none;
false becomes ``estimated``. Downgrade maps ``estimated`` to false and the others to
true. SQLite: the column is added, filled, the old one dropped and the new one renamed
(ALTER TABLE, SQLite 3.35+); no trigger or view reads this column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_NO_WORDS = "(words IS NULL OR CAST(words AS TEXT) IN ('[]', 'null', ''))"


def upgrade() -> None:
    op.add_column("transcript", sa.Column("carried", sa.Integer(), nullable=False,
                                          server_default="0"))
    op.add_column("transcript", sa.Column("conflicts", sa.JSON(), nullable=True))
    op.add_column("segment", sa.Column("words_timing", sa.String(16), nullable=False,
                                       server_default="asr"))
    true = "true" if op.get_bind().dialect.name == "postgresql" else "1"
    op.execute(f"UPDATE segment SET words_timing = CASE WHEN words_timed = {true} "  # noqa: S608
               f"AND NOT {_NO_WORDS} THEN 'asr' ELSE 'estimated' END")
    op.drop_column("segment", "words_timed")
    op.alter_column("segment", "words_timing", new_column_name="words_timed",
                    existing_type=sa.String(16), existing_nullable=False)


def downgrade() -> None:
    op.drop_column("transcript", "conflicts")
    op.drop_column("transcript", "carried")
    op.add_column("segment", sa.Column("words_bool", sa.Boolean(), nullable=False,
                                       server_default=sa.true()))
    op.execute("UPDATE segment SET words_bool = (words_timed <> 'estimated')")
    op.drop_column("segment", "words_timed")
    op.alter_column("segment", "words_bool", new_column_name="words_timed",
                    existing_type=sa.Boolean(), existing_nullable=False)
