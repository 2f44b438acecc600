"""The candidate index of verification: every character trigram of the latest
transcript versions, mapped to the segments holding it.

Sorted numpy arrays (one ``searchsorted`` per trigram). It is built once per database
state and cached per process; the state is a handful of ``count``/``max`` aggregates,
so any new version, correction or deletion rebuilds it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from pipelines.text import normalise_for_match

#: Joins the segments' texts into one string; no trigram spans it.
SEP = "\x00"


@dataclass
class SegmentIndex:
    """A snapshot of the latest transcript versions, with a trigram → segments index."""

    seg_ids: np.ndarray[Any, Any]
    rec_ids: np.ndarray[Any, Any]
    trans_ids: np.ndarray[Any, Any]
    starts: np.ndarray[Any, Any]
    ends: np.ndarray[Any, Any]
    speakers: list[str]
    texts: list[str]
    versions: dict[int, int]
    keys: np.ndarray[Any, Any]
    rows: np.ndarray[Any, Any]
    build_seconds: float = 0.0

    @property
    def size(self) -> int:
        return len(self.texts)


def trigram_keys(cps: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    c = cps.astype(np.uint64)
    return (c[:-2] << np.uint64(42)) | (c[1:-1] << np.uint64(21)) | c[2:]


def codepoints(text: str) -> np.ndarray[Any, Any]:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


_LATEST = """
SELECT s.id, s.recording_id, s.transcript_id, s.start, s."end", s.speaker, s.search_text,
       s.text, t.version
FROM segment s
JOIN transcript t ON t.id = s.transcript_id
JOIN (SELECT recording_id, max(version) AS v FROM transcript GROUP BY recording_id) lt
  ON lt.recording_id = t.recording_id AND lt.v = t.version
ORDER BY s.transcript_id, s.idx
"""


_STATE = """
SELECT (SELECT count(*) FROM segment), (SELECT max(id) FROM segment),
       (SELECT count(*) FROM revision), (SELECT max(id) FROM revision),
       (SELECT count(*) FROM transcript), (SELECT max(id) FROM transcript),
       (SELECT max(created_at) FROM transcript)
"""


def build_index(engine: Engine) -> SegmentIndex:
    """Read the latest versions' segments and index their trigrams (seconds for 1 M rows)."""
    t0 = time.perf_counter()
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(_LATEST).all()
    n = len(rows)
    texts = [
        (r[6] or "").replace(" ", "") if r[6] else normalise_for_match(r[7] or "")
        for r in rows
    ]
    versions = {int(r[1]): int(r[8]) for r in rows}
    seg_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    rec_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=n)
    trans_ids = np.fromiter((r[2] for r in rows), dtype=np.int64, count=n)
    starts = np.fromiter((r[3] for r in rows), dtype=np.float64, count=n)
    ends = np.fromiter((r[4] for r in rows), dtype=np.float64, count=n)
    speakers = [str(r[5]) for r in rows]
    del rows
    if n:
        big = SEP.join(texts) + SEP
        cps = codepoints(big)
        lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=n)
        row_of = np.repeat(np.arange(n, dtype=np.int32), lengths)
        keys = trigram_keys(cps)
        sep = cps == 0
        ok = ~(sep[:-2] | sep[1:-1] | sep[2:])
        keys, row_at = keys[ok], row_of[:-2][ok]
        order = np.argsort(keys, kind="stable")
        keys, row_at = keys[order], row_at[order]
    else:
        keys, row_at = np.zeros(0, np.uint64), np.zeros(0, np.int32)
    return SegmentIndex(seg_ids, rec_ids, trans_ids, starts, ends, speakers, texts, versions,
                        keys, row_at, time.perf_counter() - t0)


_cache: dict[str, tuple[tuple[Any, ...], SegmentIndex]] = {}


_cache_lock = threading.Lock()


def _state(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        return tuple(conn.exec_driver_sql(_STATE).one())


def index_for(engine: Engine) -> tuple[SegmentIndex, bool]:
    """The cached index for this database's current state; True if it was (re)built now."""
    name = engine.url.render_as_string(hide_password=True)
    state = _state(engine)
    with _cache_lock:
        hit = _cache.get(name)
        if hit is not None and hit[0] == state:
            return hit[1], False
        index = build_index(engine)
        # One database per process in production; a few in tests. Keep the memory bounded.
        if len(_cache) >= 4:
            _cache.clear()
        _cache[name] = (state, index)
        return index, True
