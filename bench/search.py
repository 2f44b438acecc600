"""Search benchmark: N generated segments, SQLite FTS5 and PostgreSQL, vs a plain LIKE scan.

Text is cut from the seed documents (SOURCEBOOK_SEEDS_DIR, default ../shared/seeds:
interview notes, the book draft, articles; without them the repository's own book draft
and interview notes in tests/fixtures, a smaller vocabulary): clauses of real mixed
Chinese/English sentences stitched into segments of about 7 s (1 000 000 segments
~ 2 000 hours), plus one segment in ten of English made
from the seeds' English word frequencies. Everything is loaded through
``service.crud.transcripts.add_version``, the write path of the worker and imports,
one recording (``--per-recording`` segments) per transaction.

Then, for each query, ``service.search.search_results`` (count + top-20 page + snippets,
as the API runs it) is timed ``--repeat`` times; a LIKE scan on ``segment.text`` (first 20
rows, and the count) is timed in the same run for comparison.

    .venv/bin/python bench/search.py --segments 1000000 --db both
    .venv/bin/python bench/search.py --segments 20000 --db sqlite     # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.config import Settings  # noqa: E402
from service.crud.transcripts import SegmentIn, add_version  # noqa: E402
from service.db import make_engine, migrate  # noqa: E402
from service.models.consent import Restriction, RestrictionLevel  # noqa: E402
from service.models.glossary import GlossaryTerm, TermKind  # noqa: E402
from service.models.people import Person  # noqa: E402
from service.models.recordings import Recording, RecordingStatus, Speaker  # noqa: E402
from service.models.transcripts import Segment  # noqa: E402
from service.models.users import Role, User  # noqa: E402
from service.search import search_results  # noqa: E402

SEEDS = Path(os.environ.get("SOURCEBOOK_SEEDS_DIR") or REPO.parent / "shared" / "seeds")
FIXTURES = REPO / "tests" / "fixtures"
SECRET = "bench-secret"
SECONDS_PER_SEGMENT = 7.2

# (label, q, filters). The rare word occurs once in the seeds, the common character is
# the most frequent one in Chinese text; the others are typical searches of the book team.
QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    ("rare Chinese word 伯克希尔", "伯克希尔", {}),
    ("name 闫俊杰", "闫俊杰", {}),
    ("2-char word 模型", "模型", {}),
    ("1 char 钱", "钱", {}),
    ("most common char 的", "的", {}),
    ("English word agent", "agent", {}),
    ("English prefix transform*", "transform*", {}),
    ("phrase 第一性原理", "第一性原理", {}),
    ('phrase "deep research"', '"deep research"', {}),
    ("mixed MoE 架构", "MoE 架构", {}),
    ("filtered 模型 person_id", "模型", {"person": True}),
    ("filtered 模型 recording_id", "模型", {"recording": True}),
    ("author (restrictions) 模型", "模型", {"author": True}),
    # Other names of a person and an organisation (issue 18 item 5): pinyin, a nickname,
    # a glossary alias. With --aliases each query also runs without expansion.
    ("pinyin Yan Junjie", "Yan Junjie", {}),
    ("nickname 闫总", "闫总", {}),
    ("organisation alias 海螺AI", "海螺AI", {}),
]
LIKE_QUERIES: list[tuple[str, str]] = [
    ("LIKE rare 伯克希尔", "伯克希尔"),
    ("LIKE 模型", "模型"),
    ("LIKE English agent", "agent"),
]


def seed_text() -> str:
    parts = []
    paths = sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []
    if not paths:
        print(f"seed material not found at {SEEDS}; using tests/fixtures "
              "(set SOURCEBOOK_SEEDS_DIR for the seeds)", file=sys.stderr)
        paths = [FIXTURES / "book_draft.md", FIXTURES / "interview_notes.md"]
    for path in paths:
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\*+|#+|^>\s*|^-\s+|^---$", "", text, flags=re.M)
        parts.append(text)
    return "\n".join(parts)


class Generator:
    """Realistic segment text from the seeds' clauses and English word frequencies."""

    def __init__(self, rng: random.Random) -> None:
        text = seed_text()
        clauses = [c.strip() for c in re.split(r"[。！？；\n]|(?<=[.!?])\s+", text)]
        self.clauses = [c for c in clauses if 4 <= len(c) <= 120]
        words = Counter(w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]+", text))
        glue = ["the", "a", "of", "and", "to", "is", "we", "that", "it", "in", "you", "this"]
        for w in glue:
            words[w] += 200
        self.words = list(words)
        self.weights = list(words.values())
        self.rng = rng

    def chinese(self) -> str:
        k = self.rng.choices([1, 2, 3, 4], weights=[3, 4, 2, 1])[0]
        picked = self.rng.sample(self.clauses, k)
        return "，".join(picked) + "。"

    def english(self) -> str:
        n = self.rng.randint(6, 18)
        words = self.rng.choices(self.words, weights=self.weights, k=n)
        return " ".join(words).capitalize() + "."

    def segment(self) -> tuple[str, str]:
        if self.rng.random() < 0.1:
            return self.english(), "en"
        return self.chinese(), "zh"


def load(engine: sa.Engine, n_segments: int, per_recording: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    gen = Generator(rng)
    n_recordings = max(1, n_segments // per_recording)
    with Session(engine) as session:
        person = Person(name="闫俊杰", alt_names=["闫总"], organisation="MiniMax")
        session.add(person)
        session.add(GlossaryTerm(term="MiniMax", aliases=["稀宇科技", "海螺AI"],
                                 kind=TermKind.organisation))
        session.commit()
        person_id = person.id
    assert person_id is not None
    t0 = time.perf_counter()
    chars = 0
    for r in range(n_recordings):
        with Session(engine) as session:
            title = f"bench interview {r}"
            rec = Recording(
                title=title, sha256=hashlib.sha256(title.encode()).hexdigest(), size_bytes=1,
                duration=per_recording * SECONDS_PER_SEGMENT, format_name="wav",
                codec="pcm_s16le", sample_rate=16000, channels=1,
                media_path=f"{r}/original.wav", status=RecordingStatus.transcribed,
            )
            session.add(rec)
            session.flush()
            assert rec.id is not None
            segments = []
            for i in range(per_recording):
                text, language = gen.segment()
                chars += len(text)
                start = i * SECONDS_PER_SEGMENT
                segments.append(SegmentIn(
                    start=start, end=start + SECONDS_PER_SEGMENT - 0.3,
                    speaker=f"SPEAKER_0{rng.randint(0, 2)}", text=text, language=language,
                ))
            add_version(session, recording_id=rec.id, segments=segments, backend="bench",
                        model="generated", language="zh", created_by=None)
            if r % 10 == 0:
                session.flush()
                speaker = session.exec(select(Speaker).where(
                    Speaker.recording_id == rec.id, Speaker.label == "SPEAKER_00")).one()
                speaker.person_id = person_id
                session.add(Restriction(recording_id=rec.id, start=600.0, end=900.0,
                                        level=RestrictionLevel.off_record))
            session.commit()
        if r % max(1, n_recordings // 20) == 0:
            done = (r + 1) * per_recording
            rate = done / (time.perf_counter() - t0)
            print(f"  loaded {done:>9} segments, {rate:,.0f}/s", flush=True)
    elapsed = time.perf_counter() - t0
    return {"load_s": round(elapsed, 1), "segments": n_recordings * per_recording,
            "recordings": n_recordings, "avg_chars": round(chars / (n_recordings * per_recording),
                                                           1),
            "segments_per_s": round(n_recordings * per_recording / elapsed)}


def sizes(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            fts = conn.exec_driver_sql(
                "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'segment_fts%'").scalar_one()
            seg = conn.exec_driver_sql(
                "SELECT sum(pgsize) FROM dbstat WHERE name = 'segment'").scalar_one()
            total = conn.exec_driver_sql("PRAGMA page_count").scalar_one() * page
            return {"index_mb": round(fts / 2**20, 1), "segment_table_mb": round(seg / 2**20, 1),
                    "database_mb": round(total / 2**20, 1)}
        idx = conn.exec_driver_sql(
            "SELECT pg_relation_size('ix_segment_search')").scalar_one()
        seg = conn.exec_driver_sql("SELECT pg_table_size('segment')").scalar_one()
        total = conn.exec_driver_sql(
            "SELECT pg_database_size(current_database())").scalar_one()
        return {"index_mb": round(idx / 2**20, 1), "segment_table_mb": round(seg / 2**20, 1),
                "database_mb": round(total / 2**20, 1)}


def rebuild(engine: sa.Engine) -> float:
    """Seconds to build the whole index from the stored search_text."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("INSERT INTO segment_fts(segment_fts) VALUES ('rebuild')")
        else:
            conn.exec_driver_sql("REINDEX INDEX ix_segment_search")
    return round(time.perf_counter() - t0, 1)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    fn()  # warm the cache: the figures are for a running server
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times, out


def stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 1), "p95_ms": round(p95, 1)}


def run_queries(engine: sa.Engine, repeat: int, like_repeat: int, only: str | None = None,
                aliases: bool = False) -> list[dict[str, Any]]:
    editor = User(id=1, name="bench editor", role=Role.editor)
    author = User(id=2, name="bench author", role=Role.author)
    with Session(engine) as session:
        person_id = session.exec(select(Person.id)).first()
        rec_id = session.exec(select(Recording.id).order_by(col(Recording.id)).offset(
            session.exec(select(sa.func.count()).select_from(Recording)).one() // 2)).first()
    results = []
    for label, q, flt in QUERIES:
        if only and only not in label:
            continue
        kwargs: dict[str, Any] = {
            "user": author if flt.get("author") else editor, "q": q, "limit": 20, "offset": 0,
            "person_id": person_id if flt.get("person") else None,
            "recording_id": rec_id if flt.get("recording") else None, "language": None,
        }
        with Session(engine) as session:
            def one(s: Session = session, kw: dict[str, Any] = kwargs) -> Any:
                return search_results(s, **kw)

            times, found = timed(one, repeat)
            plain: dict[str, Any] = {}
            if aliases:
                # Side by side in one run: the same query without expansion.
                def bare(s: Session = session, kw: dict[str, Any] = kwargs) -> Any:
                    return search_results(s, **kw, aliases=False)

                bare_times, bare_found = timed(bare, repeat)
                median, bare_median = statistics.median(times), statistics.median(bare_times)
                plain = {"no_alias_median_ms": round(bare_median, 1),
                         "no_alias_matches": bare_found.count,
                         "alias_cost_ms": round(median - bare_median, 1),
                         "alias_ratio": round(median / bare_median, 2) if bare_median else None}
        count = found.count if found.count_exact else f">{found.count}"
        results.append({"query": label, "matches": count, **stats(times),
                        "ranked_within": found.ranked_within, **plain})
        print(f"  {label:<32} {count:>9} matches  {results[-1]}", flush=True)
    for label, needle in LIKE_QUERIES if not only else []:
        pattern = f"%{needle}%"
        with Session(engine) as session:
            top = sa.select(col(Segment.id), col(Segment.text)).where(
                Segment.text.like(pattern)).limit(20)  # type: ignore[attr-defined]
            count_q = sa.select(sa.func.count()).select_from(Segment).where(
                Segment.text.like(pattern))  # type: ignore[attr-defined]

            def both(s: Session = session, t: Any = top, c: Any = count_q) -> int:
                s.execute(t).all()
                return int(s.execute(c).scalar_one())

            times, count = timed(both, like_repeat)
        results.append({"query": label + " (first 20 + count)", "matches": count,
                        **stats(times)})
        print(f"  {label:<32} {count:>9} matches  {results[-1]}", flush=True)
    return results


def run(db: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(database_url=url, secret_key=SECRET, data_dir=Path(args.workdir))
    engine = make_engine(settings)
    out: dict[str, Any] = {"db": db}
    if not args.reuse:
        if db == "sqlite":
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(sa.engine.make_url(url).database + suffix).unlink(missing_ok=True)  # type: ignore[operator]
            engine = make_engine(settings)
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        migrate(engine, settings)
        print(f"{db}: loading {args.segments} segments", flush=True)
        out |= load(engine, args.segments, args.per_recording, args.seed)
        if db == "postgres":
            t0 = time.perf_counter()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            out["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)
    out |= sizes(engine)
    print(f"{db}: {out}", flush=True)
    if not args.no_queries:
        out["queries"] = run_queries(engine, args.repeat, args.like_repeat, args.only,
                                     args.aliases)
    if not args.no_rebuild:
        out["index_rebuild_s"] = rebuild(engine)
        print(f"{db}: full index rebuild {out['index_rebuild_s']} s", flush=True)
    engine.dispose()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--segments", type=int, default=1_000_000)
    p.add_argument("--per-recording", type=int, default=1000)
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--workdir", default="/tmp/sourcebook-bench-search")
    p.add_argument("--postgres-url",
                   default="postgresql+psycopg://postgres@127.0.0.1:5432/bench_search_a")
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--like-repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--reuse", action="store_true", help="query an existing database")
    p.add_argument("--no-rebuild", action="store_true")
    p.add_argument("--no-queries", action="store_true", help="load only")
    p.add_argument("--only", help="run only the queries whose label contains this")
    p.add_argument("--aliases", action="store_true",
                   help="also run each query without alias expansion, side by side")
    p.add_argument("--json", help="write the results here as JSON")
    args = p.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    results = []
    if args.db in ("sqlite", "both"):
        url = f"sqlite:///{Path(args.workdir) / f'search-{args.segments}.db'}"
        results.append(run("sqlite", url, args))
    if args.db in ("postgres", "both"):
        results.append(run("postgres", args.postgres_url, args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
