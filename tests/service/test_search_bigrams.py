"""PostgreSQL searches Chinese words by their CJK bigrams (migration 0012) and finds
exactly what SQLite finds.

The same corpus (the seed interview notes, English and mixed lines, a person mapped to
a speaker) is written to a SQLite and a PostgreSQL database in one test, and every
query's hits and count are compared between the two, page by page.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from pipelines.text import _CJK_RANGES, cjk_spaced, is_cjk
from service.crud.transcripts import SegmentIn, add_version
from service.models.people import Person
from service.models.recordings import Recording, RecordingStatus, Speaker
from service.models.users import Role, User
from service.search import parse_query, search_results
from service.search.postgres import _lexemes
from tests.conftest import POSTGRES_URL, _truncate_postgres, make_settings
from tests.factories import REPO
from tests.service.test_search import ENGLISH, MIXED, notes_sections

MIGRATION = REPO / "service" / "migrations" / "versions" / "0012_search_bigrams.py"

EDITOR = User(id=1, name="editor", role=Role.editor)

#: Chinese words of 2, 3, 4 and 5 characters, mixed Chinese/English, prefixes, phrases,
#: single characters; each also with the speaker filter.
QUERIES = [
    "模型", "创业", "闫俊杰", "姚顺雨", "强化学习", "长期主义", "第一性原理", "产品经理",
    "MoE 架构", "MiniMax 模型", "模型 agent", "transform*", "agent*", "scal*",
    '"deep research"', '"架构的选择"', "的", "钱", "moe", "型是", "模型模型",
]


def _migration() -> Any:
    spec = importlib.util.spec_from_file_location("migration_0012", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bigrams(search_text: str) -> set[str]:
    tokens = search_text.split()
    return {a + b for a, b in itertools.pairwise(tokens)
            if len(a) == len(b) == 1 and is_cjk(a) and is_cjk(b)}


def _load(engine: sa.Engine) -> int:
    """The corpus, written through the worker's write path; returns 闫俊杰's person id."""
    yao, yan = notes_sections()
    yan = yan + [(9000.0 + i, 9000.5 + i, "SPEAKER_01", t) for i, t in enumerate(MIXED)]
    english = [(i * 10.0, i * 10.0 + 8, "SPEAKER_00", t) for i, t in enumerate(ENGLISH)]
    with Session(engine) as session:
        person = Person(name="闫俊杰")
        session.add(person)
        for title, segs, language in (("姚顺雨", yao, "zh"), ("闫俊杰", yan, "zh"),
                                      ("agents", english, "en")):
            rec = Recording(
                title=title, sha256=hashlib.sha256(title.encode()).hexdigest(), size_bytes=1,
                duration=10_000.0, format_name="wav", codec="pcm_s16le", sample_rate=16000,
                channels=1, media_path=f"{title}/original.wav",
                status=RecordingStatus.transcribed)
            session.add(rec)
            session.flush()
            assert rec.id is not None
            add_version(session, recording_id=rec.id, backend="import", model="test",
                        language=language, created_by=None, segments=[
                            SegmentIn(start=a, end=b, speaker=s, text=t, language=language)
                            for a, b, s, t in segs])
            if title == "闫俊杰":
                session.flush()
                speaker = session.exec(select(Speaker).where(
                    Speaker.recording_id == rec.id, Speaker.label == "SPEAKER_00")).one()
                speaker.person_id = person.id
        session.commit()
        assert person.id is not None
        return person.id


@pytest.fixture
def engines(tmp_path: Path, sqlite_template: Path) -> Iterator[dict[str, sa.Engine]]:
    """The same corpus in SQLite and PostgreSQL: {"sqlite": engine, "postgres": engine}."""
    from service.db import make_engine

    path = tmp_path / "sourcebook.db"
    shutil.copy(sqlite_template, path)
    _truncate_postgres(POSTGRES_URL)
    out = {"sqlite": make_engine(make_settings(tmp_path, f"sqlite:///{path}")),
           "postgres": make_engine(make_settings(tmp_path, POSTGRES_URL))}
    people = {name: _load(e) for name, e in out.items()}
    assert people["sqlite"] == people["postgres"]
    yield out
    for e in out.values():
        e.dispose()


def _everything(engine: sa.Engine, **kwargs: Any) -> tuple[int, list[tuple[str, float, str]]]:
    """Every hit of a query, page by page: (count, sorted (recording, start, text))."""
    hits: list[tuple[str, float, str]] = []
    count = None
    with Session(engine) as session:
        while True:
            found = search_results(session, user=EDITOR, limit=50, offset=len(hits), **kwargs)
            assert count is None or found.count == count
            count = found.count
            if not found.hits:
                break
            hits += [(h.recording_title, h.start, h.text) for h in found.hits]
    assert count is not None and len(hits) == count
    return count, sorted(hits)


# --- the query side --------------------------------------------------------------------

def test_a_chinese_phrase_is_queried_by_its_bigrams() -> None:
    def lexemes(q: str) -> list[str]:
        return _lexemes(parse_query(q).phrases[0])

    assert lexemes("模型") == ["'模型'"]
    assert lexemes("闫俊杰") == ["'闫俊'", "'俊杰'"]
    assert lexemes("第一性原理") == ["'第一'", "'一性'", "'性原'", "'原理'"]
    assert lexemes("的") == ["'的'"]
    assert lexemes("agent") == ["'agent'"]
    assert lexemes("transform*") == ["'transform':*"]
    # A CJK character next to no other one stays a single character.
    assert lexemes('"gpt 模 型 x 的"') == ["'模型'", "'gpt'", "'x'", "'的'"]
    assert lexemes('"模型 deep*"') == ["'模型'", "'deep':*"]


def test_the_migration_pairs_exactly_what_search_tokenises_alone() -> None:
    assert _migration().CJK_RANGES == _CJK_RANGES


# --- PostgreSQL against SQLite ----------------------------------------------------------

@pytest.mark.postgres
def test_both_databases_find_the_same_segments(engines: dict[str, sa.Engine]) -> None:
    person = _load_person_id(engines["postgres"])
    checked = 0
    for q in QUERIES:
        for flt in ({}, {"person_id": person}):
            sqlite = _everything(engines["sqlite"], q=q, **flt)
            postgres = _everything(engines["postgres"], q=q, **flt)
            assert postgres == sqlite, (q, flt)
            checked += sqlite[0]
    assert checked > 100  # the queries do find things


@pytest.mark.postgres
def test_phrases_of_two_three_and_four_characters_are_exact(
        engines: dict[str, sa.Engine]) -> None:
    """Bigrams are necessary, not sufficient: 模型模型 holds 模型 and 型模, and a segment
    with both apart must not match; the LIKE check keeps the phrase exact."""
    with Session(engines["postgres"]) as session:
        rec = Recording(title="bigram traps", sha256="b" * 64, size_bytes=1, duration=60.0,
                        format_name="wav", codec="pcm_s16le", sample_rate=16000, channels=1,
                        media_path="traps/original.wav", status=RecordingStatus.transcribed)
        session.add(rec)
        session.flush()
        assert rec.id is not None
        texts = ["型模与模型", "原理第一性", "第一性原理", "闫俊x杰", "闫俊杰"]
        add_version(session, recording_id=rec.id, backend="import", model="test",
                    language="zh", created_by=None, segments=[
                        SegmentIn(start=i, end=i + 1, speaker="SPEAKER_00", text=t,
                                  language="zh") for i, t in enumerate(texts)])
        session.commit()
        rec_id = rec.id
    for q, want in (("模型模型", set()), ("第一性原理", {"第一性原理"}),
                    ("闫俊杰", {"闫俊杰"}), ("俊杰", {"闫俊杰"})):
        with Session(engines["postgres"]) as session:
            found = search_results(session, user=EDITOR, q=q, recording_id=rec_id,
                                   aliases=False)
            assert {h.text for h in found.hits} == want, q


def _load_person_id(engine: sa.Engine) -> int:
    with Session(engine) as session:
        pid = session.exec(select(Person.id).where(Person.name == "闫俊杰")).one()
        assert pid is not None
        return pid


# --- the PostgreSQL index ---------------------------------------------------------------

@pytest.mark.postgres
def test_the_index_holds_every_pair_of_adjacent_cjk_characters(
        engines: dict[str, sa.Engine]) -> None:
    rng = random.Random(18)
    alphabet = "模型的闫俊杰カタ𠀀 ab1 é,。Ａ"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
             for _ in range(200)]
    texts += ["", "的", "模 型", "x模y型z", "闫俊杰", "𠀀𠀁𠀂"]
    with engines["postgres"].connect() as conn:
        for text in texts:
            spaced = cjk_spaced(text)
            lexemes = set(conn.execute(sa.text(
                "SELECT unnest(tsvector_to_array(search_vector(:t)))"), {"t": spaced}
            ).scalars())
            assert lexemes == set(spaced.split()) | _bigrams(spaced), text


@pytest.mark.postgres
def test_a_two_character_word_is_one_bigram_lookup_in_the_index(
        engines: dict[str, sa.Engine]) -> None:
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "search_vector" in statement:
            statements.append((statement, params))

    engine = engines["postgres"]
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with Session(engine) as session:
            assert search_results(session, user=EDITOR, q="模型", aliases=False).hits
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    statement, params = statements[0]
    assert "'模型'" in params.values()
    with engine.connect() as conn:
        # A few hundred segments are cheaper to scan than to look up, so the plan is
        # asked for with the other ways in shut (rolled back): can the query use the GIN
        # index, i.e. is its expression the index's, and with what lexemes?
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("DROP INDEX ix_segment_span")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
        conn.rollback()
    assert "Bitmap Index Scan on ix_segment_search" in plan, plan
    # One lexeme, the bigram: not '模' & '型'.
    assert "Index Cond: (search_vector((search_text)::text) @@ '''模型'''::tsquery)" in plan, plan


@pytest.mark.postgres
def test_the_newest_window_is_the_same_walked_or_looked_up(
        engines: dict[str, sa.Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the count cap, the matches of a common word come from a walk down the
    primary key, of a rarer one from the GIN index: all ways give the same page, with
    SQLite's window (ranked by length in characters there, in bytes here) and tail."""
    from service.search import postgres, scope

    monkeypatch.setattr(scope, "COUNT_CAP", 10)
    monkeypatch.setattr(scope, "RANK_WINDOW", 6)
    person = _load_person_id(engines["postgres"])
    for q, flt in (("模型", {}), ("的", {}), ("我们", {}), ("闫俊杰", {}),
                   ("的", {"person_id": person})):
        with Session(engines["sqlite"]) as session:
            want = [h.segment_id for h in search_results(
                session, user=EDITOR, q=q, limit=30, **flt).hits]
        pages: list[list[int]] = []
        # GIN then a GIN window; GIN then a walked window; counted by walking alone.
        for walk_rows, common in ((0, 2.0), (10**9, 2.0), (10**9, 0.0)):
            monkeypatch.setattr(postgres, "WALK_ROWS", walk_rows)
            monkeypatch.setattr(postgres, "COMMON_DENSITY", common)
            with Session(engines["postgres"]) as session:
                found = search_results(session, user=EDITOR, q=q, limit=30, **flt)
            assert (found.count, found.count_exact, found.ranked_within) == (10, False, 6)
            got = [h.segment_id for h in found.hits]
            assert set(got[:6]) == set(want[:6]) and got[6:] == want[6:], (q, flt, walk_rows)
            pages.append(got)
        assert pages[0] == pages[1] == pages[2], q
