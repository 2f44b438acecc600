"""Migration 0009 (voice recognition with consent), up and down, on both databases."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tests.service.test_migrations import _run, database  # noqa: F401  (the fixture)

NOW = "2026-11-25 12:00:00"


def test_0009_deletes_old_voiceprints_and_adds_the_consent_field(database: str,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    _run(database, tmp_path, ("upgrade", "0008"))
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO person (id, name, alt_names, kind, biometric_consent, voiceprint, "
            "created_at, updated_at) VALUES (1, '闫俊杰', '[]', 'founder', true, "
            "'[0.1, 0.2]', :now, :now)"), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO consentagreement (id, person_id, status, form, attribution, "
            "approval_required, created_at, updated_at) VALUES (1, 1, 'granted', 'signed', "
            "'on_record', false, :now, :now)"), {"now": NOW})
        conn.execute(sa.text(
            "INSERT INTO recording (id, title, source, access, status, sha256, size_bytes, "
            "duration, format_name, codec, sample_rate, channels, media_path, created_at, "
            "updated_at) VALUES (1, 't', 'interview', 'team', 'transcribed', :sha, 1, 1.0, "
            "'wav', 'pcm', 16000, 1, '1/original.wav', :now, :now)"),
            {"now": NOW, "sha": "0" * 64})
        for i, (label, pid) in enumerate((("SPEAKER_00", 1), ("SPEAKER_01", None))):
            conn.execute(sa.text(
                "INSERT INTO speaker (id, recording_id, label, person_id, embedding) "
                "VALUES (:id, 1, :label, :pid, '[0.5, 0.5]')"),
                {"id": i + 1, "label": label, "pid": pid})
    engine.dispose()

    _run(database, tmp_path, ("upgrade", "0009"))
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        # A vector with no source, no model and no consent record behind it: deleted.
        assert conn.execute(sa.text("SELECT voiceprint IS NULL, "
                                    "biometric_consent FROM person")).one() == (True, False)
        assert conn.execute(sa.text("SELECT voiceprint FROM consentagreement")
                            ).scalar_one() in (False, 0)
        # The named label's embedding is gone; the unnamed one keeps its own.
        assert conn.execute(sa.text("SELECT label, embedding IS NULL FROM speaker ORDER BY id")
                            ).all() == [("SPEAKER_00", True), ("SPEAKER_01", False)]
        cols = {c["name"] for c in sa.inspect(conn).get_columns("speaker")}
        assert {"embedding_model", "suggestion_person_id", "suggestion_similarity"} <= cols
    engine.dispose()

    _run(database, tmp_path, ("downgrade", "0008"))
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        cols = {c["name"] for c in sa.inspect(conn).get_columns("speaker")}
        assert "embedding_model" not in cols
        cols = {c["name"] for c in sa.inspect(conn).get_columns("consentagreement")}
        assert "voiceprint" not in cols
    engine.dispose()
