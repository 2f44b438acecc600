"""Migration 0010 (revisions say their kind), up and down, on both databases."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tests.service.test_migrations import _run, database  # noqa: F401  (the fixture)

NOW = "2026-12-01 12:00:00"


def test_0010_marks_every_earlier_revision_a_correction(database: str,  # noqa: F811
                                                         tmp_path: Path) -> None:
    _run(database, tmp_path, ("upgrade", "0009"))
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO recording (id, title, source, access, status, sha256, size_bytes, "
            "duration, format_name, codec, sample_rate, channels, media_path, created_at, "
            "updated_at) VALUES (1, 't', 'interview', 'team', 'transcribed', :sha, 1, 1.0, "
            "'wav', 'pcm', 16000, 1, '1/original.wav', :now, :now)"),
            {"now": NOW, "sha": "0" * 64})
        conn.execute(sa.text(
            "INSERT INTO transcript (id, recording_id, version, backend, model, language, "
            "created_at) VALUES (1, 1, 1, 'import', 'test', 'zh', :now)"), {"now": NOW})
        conn.execute(sa.text(
            'INSERT INTO segment (id, transcript_id, recording_id, idx, start, "end", speaker, '
            "text, language, words, words_timed, search_text, edited, is_current) VALUES "
            "(1, 1, 1, 0, 0, 1, 'SPEAKER_00', '好', 'zh', '[]', 'asr', '好', true, true)"))
        conn.execute(sa.text(
            "INSERT INTO revision (id, segment_id, created_at, before_text, after_text, "
            "before_speaker, after_speaker) VALUES (1, 1, :now, '号', '好', 'SPEAKER_00', "
            "'SPEAKER_00')"), {"now": NOW})
    engine.dispose()

    _run(database, tmp_path, ("upgrade", "0010"))
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT kind FROM revision")).scalar_one() == "correct"
    engine.dispose()

    _run(database, tmp_path, ("downgrade", "0009"))
    engine = sa.create_engine(database)
    with engine.connect() as conn:
        assert "kind" not in {c["name"] for c in sa.inspect(conn).get_columns("revision")}
        assert conn.execute(sa.text("SELECT after_text FROM revision")).scalar_one() == "好"
    engine.dispose()
