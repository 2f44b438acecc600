"""glossary: terms with their aliases, for search by any of a thing's names

Revision ID: 0011
Revises: 0010

A new table only (``glossaryterm``); nothing is copied from ``person``: search reads
people's names and ``alt_names`` live beside the glossary, so neither can go stale.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.models.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "glossaryterm",
        sa.Column("term", sa.String(length=100), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("kind", sa.Enum("person", "organisation", "product", "other",
                                  name="termkind", native_enum=False, length=32),
                  nullable=False),
        sa.Column("notes", sa.String(length=2000), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", service.models.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", service.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_glossaryterm_term", "glossaryterm", ["term"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_glossaryterm_term", table_name="glossaryterm")
    op.drop_table("glossaryterm")
