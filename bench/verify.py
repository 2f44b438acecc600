"""Verify the whole seed draft against N synthetic one-hour transcripts; print timings.

The seed documents are found through SOURCEBOOK_SEEDS_DIR (default ../shared/seeds beside
the repository); without them the repository's own book draft and interview notes
(tests/fixtures) stand in, which is smaller: compare timings only with the same text.

Builds (once, reused with --db) a SQLite archive of ``--recordings`` recordings with
``--segments`` segments each (one hour, ~1 000 segments), written with the
same rows ``add_version`` writes (bulk, see ``_bulk_version``; ``--orm`` for the
real call). The text is 8–40-character slices of the
other seed documents (real Mandarin/English mix), and 20 of the draft's quotations are
planted verbatim and 10 with small changes, so matching does real work. Then it runs
``service.manuscript.verify.verify_text`` on the full draft: once cold (index built) and
``--runs`` times warm, as an editor and as an author.

    .venv/bin/python bench/verify.py --recordings 1000 --segments 1000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEEDS = Path(os.environ.get("SOURCEBOOK_SEEDS_DIR") or REPO.parent / "shared" / "seeds")
FIXTURES = REPO / "tests" / "fixtures"
SEED_DRAFT = SEEDS / "000_a6533fb138b35a81.txt"
DRAFT = SEED_DRAFT if SEED_DRAFT.is_file() else FIXTURES / "book_draft.md"


def corpus() -> str:
    paths = sorted(SEEDS.glob("00[1-4]_*.txt")) if SEEDS.is_dir() else []
    text = "".join(p.read_text(encoding="utf-8")
                   for p in paths or [FIXTURES / "interview_notes.md"])
    return "".join(text.split())


def _bulk_version(session: Any, recording_id: int, segs: list[Any]) -> None:
    """What ``add_version`` writes, as one executemany: the same rows and ``search_text``
    (``cjk_spaced``), without ORM objects, so a million segments load in minutes."""
    import sqlalchemy as sa

    from pipelines.text import cjk_spaced
    from service.models.recordings import Speaker
    from service.models.transcripts import Segment, Transcript

    t = Transcript(recording_id=recording_id, version=1, backend="import", model="bench",
                   language="zh", created_by=None)
    session.add(t)
    session.flush()
    session.execute(sa.insert(Segment), [
        {"transcript_id": t.id, "recording_id": recording_id, "idx": i,
         "start": round(s.start, 3), "end": round(s.end, 3), "speaker": s.speaker,
         "text": s.text, "language": s.language, "words": [], "words_timed": "asr",
         "search_text": cjk_spaced(s.text), "edited": False}
        for i, s in enumerate(segs)])
    session.add_all(Speaker(recording_id=recording_id, label=label)
                    for label in sorted({s.speaker for s in segs}))


def build(db: Path, recordings: int, segments: int, args_fast: bool = True) -> None:
    from sqlmodel import Session

    from service.config import Settings
    from service.crud.transcripts import SegmentIn, add_version
    from service.db import make_engine, migrate
    from service.manuscript.quotations import find_quotations
    from service.models.recordings import Recording

    settings = Settings(database_url=f"sqlite:///{db}", secret_key="bench")
    engine = make_engine(settings)
    migrate(engine, settings)
    rng = random.Random(5)
    text = corpus()
    quotes = [q.text for q in find_quotations(DRAFT.read_text(encoding="utf-8"))[0]]
    planted = rng.sample(quotes, 30)
    t0 = time.perf_counter()
    with Session(engine) as session:
        for r in range(recordings):
            rec = Recording(title=f"Synthetic interview {r}", sha256=f"{r:064x}", size_bytes=1,
                            duration=3600.0, format_name="wav", codec="pcm", sample_rate=16000,
                            channels=1, media_path=f"{r}/original.wav")
            session.add(rec)
            session.flush()
            assert rec.id is not None
            step = 3600.0 / segments
            segs = []
            for i in range(segments):
                n = rng.randint(8, 40)
                at = rng.randrange(0, len(text) - n)
                segs.append(SegmentIn(start=i * step, end=(i + 1) * step - 0.05,
                                      speaker=f"SPEAKER_0{rng.randint(0, 1)}",
                                      text=text[at:at + n], language="zh"))
            if r < len(planted):
                q = planted[r]
                if r >= 20:  # a small change: swap two characters in the middle
                    k = len(q) // 2
                    q = q[:k] + q[k + 1] + q[k] + q[k + 2:]
                segs[segments // 2] = SegmentIn(start=segs[segments // 2].start,
                                                end=segs[segments // 2].end,
                                                speaker="SPEAKER_00", text=q, language="zh")
            if args_fast:
                _bulk_version(session, rec.id, segs)
            else:
                add_version(session, recording_id=rec.id, segments=segs, backend="import",
                            model="bench", language="zh", created_by=None)
            if r % 50 == 49:
                session.commit()
                print(f"  {r + 1} recordings, {time.perf_counter() - t0:.0f} s", flush=True)
        session.commit()
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=1000)
    ap.add_argument("--segments", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--orm", action="store_true",
                    help="Write through add_version (slow: about 2 s per recording here)")
    ap.add_argument("--db", type=Path, default=Path("/tmp/sourcebook-bench-verify.db"))
    args = ap.parse_args()

    from sqlmodel import Session

    from service.config import Settings
    from service.db import make_engine
    from service.manuscript.quotations import find_quotations
    from service.manuscript.verify import verify_text
    from service.models.users import Role, User

    if not args.db.exists():
        print(f"building {args.recordings} x {args.segments} segments in {args.db} ...")
        build(args.db, args.recordings, args.segments, args_fast=not args.orm)
    engine = make_engine(Settings(database_url=f"sqlite:///{args.db}", secret_key="bench"))
    if DRAFT != SEED_DRAFT:
        print(f"seed material not found at {SEED_DRAFT}; using {DRAFT.relative_to(REPO)} "
              "(set SOURCEBOOK_SEEDS_DIR for the seed draft)", file=sys.stderr)
    draft = DRAFT.read_text(encoding="utf-8")
    found, short = find_quotations(draft)
    print(f"draft: {len(found)} quotations (+{short} short quoted terms skipped)")
    editor = User(id=10**6, name="bench-editor", role=Role.editor)
    author = User(id=10**6 + 1, name="bench-author", role=Role.author)
    with Session(engine) as session:
        t0 = time.perf_counter()
        cold = verify_text(session, engine, text=draft, user=editor)
        cold_total = time.perf_counter() - t0
        print(f"segments indexed: {cold.segments_indexed}")
        print(f"cold: total {cold_total:.2f} s (index build {cold.index_seconds:.2f} s, "
              f"matching {cold.match_seconds:.2f} s)")
        for user in (editor, author):
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                rep = verify_text(session, engine, text=draft, user=user)
                times.append(time.perf_counter() - t0)
            print(f"warm ({user.role.value}): median {statistics.median(times):.2f} s over "
                  f"{args.runs} runs (min {min(times):.2f}, max {max(times):.2f}); "
                  f"{rep.sourced} sourced, {rep.altered} altered, {rep.unsourced} unsourced")
    import resource

    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
