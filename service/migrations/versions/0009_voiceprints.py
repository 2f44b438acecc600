"""voice recognition with consent: agreements say ``voiceprint``, voiceprints hold samples

Revision ID: 0009
Revises: 0008

- ``consentagreement.voiceprint`` (boolean, default false): consent to voice recognition.
- ``speaker.embedding_model``: which model made the label's embedding (only embeddings of
  one model are comparable); NULL for embeddings stored before, which are recomputed from
  the audio when a label is named.
- ``speaker.suggestion_person_id`` / ``suggestion_similarity``: who the label sounds like.
- ``person.voiceprint`` becomes ``{"samples": [...]}``. A voiceprint of the old shape (one
  vector, no source, no model) was never tied to a consent record, and no agreement said
  ``voiceprint: true`` before this revision, so every existing one is deleted and
  ``biometric_consent`` (now derived from the agreements) is false for everyone.
- For the same reason the embeddings of named labels are deleted (a named label's
  embedding is biometric data); unnamed labels keep theirs.

Columns are added with plain ALTER TABLE (no table rebuild), so SQLite's FTS triggers on
``speaker`` and ``segment`` stay as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("consentagreement", sa.Column(
        "voiceprint", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("speaker", sa.Column("embedding_model", sa.String(length=200), nullable=True))
    op.add_column("speaker", sa.Column("suggestion_person_id", sa.Integer(), nullable=True))
    op.add_column("speaker", sa.Column("suggestion_similarity", sa.Float(), nullable=True))
    op.execute(sa.text("UPDATE person SET voiceprint = NULL, biometric_consent = :f")
               .bindparams(f=False))
    # Named labels' embeddings are biometric data of people who (as of now) gave no consent.
    op.execute(sa.text("UPDATE speaker SET embedding = NULL WHERE person_id IS NOT NULL"))


def downgrade() -> None:
    # The old code reads a voiceprint as one vector; the samples cannot become one honestly.
    op.execute(sa.text("UPDATE person SET voiceprint = NULL, biometric_consent = :f")
               .bindparams(f=False))
    op.drop_column("speaker", "suggestion_similarity")
    op.drop_column("speaker", "suggestion_person_id")
    op.drop_column("speaker", "embedding_model")
    op.drop_column("consentagreement", "voiceprint")
