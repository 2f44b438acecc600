"""API tokens can expire

Revision ID: 0006
Revises: 0005

``apitoken.expires_at`` (nullable): when the token stops working. Set for web sign-in
sessions (14 days) and, with SOURCEBOOK_TOKEN_TTL_DAYS, for every token issued; NULL
means no expiry of its own. Existing tokens keep NULL (the TTL setting, when set, still
counts from their ``created_at``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import service.models.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apitoken", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", service.models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("apitoken", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
