"""revisions say what kind of edit they record: a correction, a split or a merge

Revision ID: 0010
Revises: 0009

``revision.kind`` is ``correct`` (text and/or speaker of one segment, every revision
before this one), ``split`` (one segment cut in two: each half holds one, with the whole
text as ``before_text``) or ``merge`` (two neighbours joined: ``before_text`` holds both
texts on two lines). Added with plain ALTER TABLE, so SQLite's FTS triggers on
``segment`` stay as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("revision", sa.Column("kind", sa.String(length=16), nullable=False,
                                        server_default="correct"))


def downgrade() -> None:
    with op.batch_alter_table("revision") as batch:
        batch.drop_column("kind")
