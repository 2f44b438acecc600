"""Manuscript verification: find the quotations in a chapter and look for them on tape.

Finding: “…”, 「…」 and "…" within a paragraph, and ``>`` blocks (one quotation per
block, its own outer quote marks removed). Quoted text shorter than ``min_chars``
characters after normalisation (“窄AI”, “感知”) is a term in quote marks, not a remark:
it is counted in ``ignored_short`` and not matched.

Matching compares ``pipelines.text.normalise_for_match`` forms (simplified script,
lowercase, no punctuation or spaces) of the quotation and of the transcripts:

1. A candidate index maps every character trigram of the latest transcript versions to
   the segments holding it (sorted numpy arrays: one ``searchsorted`` per trigram). It
   is built once per database state and cached per process; the state is a handful of
   ``count``/``max`` aggregates, so any new version, correction or deletion rebuilds it.
2. Per quotation, its trigrams are looked up (the commonest ones skipped when rarer ones
   exist), segments are ranked by shared trigrams, and the best ``CANDIDATES`` visible
   ones are kept: never a fuzzy scan of the archive.
3. Each candidate is widened with the adjacent segments of the same speaker (a remark
   often spans segments), and rapidfuzz aligns the quotation inside that window; the
   similarity is the Indel ratio of the quotation and the aligned transcript text.
4. ``sourced``: the quotation occurs exactly; ``altered``: similarity ≥ ``ALTERED_MIN``,
   reported with the difference; else ``unsourced``. A quotation with an ellipsis
   (… / ...) is matched part by part, in one recording.

Visibility: only recordings the caller may see, and for authors never a segment that
overlaps an active off-record or deep-background restriction (such segments are left
out of candidates and windows, so neither a match nor a diff can reveal them).

If the text just before a quotation names a known person with a speech cue
(“闫俊杰坦言：”, "罗永浩说"), a match whose speaker is someone else is flagged with
``speaker_mismatch``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.distance import Indel
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from pipelines.text import normalise_for_match
from service.models.people import Person
from service.models.recordings import Access, Recording, Speaker
from service.models.users import Role, User
from service.visibility import is_redacted_for, withheld_current_segments

MIN_CHARS = 8
ALTERED_MIN = 0.8
CANDIDATES = 24
#: Trigrams held by more segments than this are skipped when the quotation has rarer ones.
COMMON_POSTINGS = 20_000
MAX_MATCHES = 5
_SEP = "\x00"

# ----------------------------------------------------------------------------- finding

_CURLY = re.compile(r"“([^“”\n]{1,4000})”")
_CORNER = re.compile(r"「((?:[^「」\n]|「[^「」\n]*」){1,4000})」")
_STRAIGHT = re.compile(r'(?<![\w=])"([^"\n]{1,4000})"(?!\w)')
_BLOCK = re.compile(r"^\s{0,3}>\s?(.*)$")
_OUTER = (("“", "”"), ("「", "」"), ('"', '"'), ("『", "』"))
_ELLIPSIS = re.compile(r"\s*(?:…+|\.{3,}|。{3,}|⋯+)\s*")
_SPEECH_CUE = re.compile(
    r"(?:说|道|问|答|讲|表示|坦言|直言|指出|强调|回忆|认为|提到|写道|称|笑称|感叹|总结|分享|承认|"
    r"解释|透露|告诉[^，。；]{0,12}|发言|宣布|回应|反问|补充|感慨|说过|曾说|问道|"
    r"says?|said|told|asked|recalled|explained|wrote|added|noted|put it)"
    r"[^，。；,.;]{0,12}?[：:，,]?\s*$|[：:]\s*$",
    re.IGNORECASE,
)


@dataclass
class Quotation:
    text: str
    kind: str  # curly | corner | straight | block
    line: int
    context: str


def _strip_md(text: str) -> str:
    return re.sub(r"\*\*|__|`", "", text)


def _unwrap(text: str) -> str:
    """A block that is one quotation in quote marks loses them; “a” and “b” keeps them."""
    t = text.strip().rstrip("。.")
    for a, b in _OUTER:
        if len(t) > len(a) + len(b) and t.startswith(a) and t.endswith(b):
            inner = t[len(a): -len(b)]
            if a not in inner and b not in inner:
                return inner.strip()
    return text.strip()


def find_quotations(text: str, *, min_chars: int = MIN_CHARS) -> tuple[list[Quotation], int]:
    """Every quotation in a manuscript, in order; and how many short quoted terms were skipped."""
    found: list[Quotation] = []
    short = 0
    lines = text.splitlines()
    i = 0
    prev_para = ""
    while i < len(lines):
        m = _BLOCK.match(lines[i])
        if m:
            start = i
            body: list[str] = []
            while i < len(lines) and (bm := _BLOCK.match(lines[i])):
                body.append(bm.group(1))
                i += 1
            quote = _unwrap(_strip_md("\n".join(body)).strip())
            if len(normalise_for_match(quote)) >= min_chars:
                found.append(Quotation(quote, "block", start + 1, prev_para[-80:]))
            elif quote:
                short += 1
            continue
        line = lines[i]
        spans: list[tuple[int, int, str, str]] = []
        for rx, kind in ((_CURLY, "curly"), (_CORNER, "corner"), (_STRAIGHT, "straight")):
            for qm in rx.finditer(line):
                if any(a <= qm.start() < b or qm.start() <= a < qm.end() for a, b, _, _ in spans):
                    continue
                spans.append((qm.start(), qm.end(), kind, qm.group(1)))
        for a, _b, kind, quote in sorted(spans):
            quote = _strip_md(quote).strip()
            if len(normalise_for_match(quote)) >= min_chars:
                found.append(Quotation(quote, kind, i + 1, _strip_md(line[:a])[-80:]))
            else:
                short += 1
        if line.strip():
            prev_para = _strip_md(line.strip())
        i += 1
    return found, short


def named_person(context: str, people: Sequence[tuple[int, str, list[str]]]
                 ) -> tuple[int, str] | None:
    """The person named just before a quotation with a speech cue, if any."""
    ctx = context.strip()
    if not _SPEECH_CUE.search(ctx):
        return None
    best: tuple[int, int, str] | None = None
    for pid, name, alts in people:
        for n in (name, *alts):
            if len(n) < 2:
                continue
            pos = ctx.rfind(n)
            if pos >= 0 and (best is None or pos + len(n) > best[0]):
                best = (pos + len(n), pid, name)
    return (best[1], best[2]) if best else None


# ----------------------------------------------------------------------------- index


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


def _trigram_keys(cps: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    c = cps.astype(np.uint64)
    return (c[:-2] << np.uint64(42)) | (c[1:-1] << np.uint64(21)) | c[2:]


def _codepoints(text: str) -> np.ndarray[Any, Any]:
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
        big = _SEP.join(texts) + _SEP
        cps = _codepoints(big)
        lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=n)
        row_of = np.repeat(np.arange(n, dtype=np.int32), lengths)
        keys = _trigram_keys(cps)
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


# ----------------------------------------------------------------------------- matching


class VerifyMatch(SQLModel):
    recording_id: int
    recording_title: str | None = None
    transcript_version: int | None = None
    start: float
    end: float
    speaker: str
    person_id: int | None = None
    person_name: str | None = None
    similarity: float
    #: The transcript's words over the match, normalised (no punctuation or spaces).
    transcript_text: str = ""
    speaker_mismatch: bool | None = None


class VerifyItem(SQLModel):
    index: int
    line: int
    kind: str
    quote_text: str
    status: str
    named_speaker: str | None = None
    named_person_id: int | None = None
    matches: list[VerifyMatch] = Field(default_factory=list)
    #: For ``altered``: the change from transcript to manuscript, ``[-said-]{+written+}``.
    diff: str | None = None


class VerifyReport(SQLModel):
    chapter_id: int | None = None
    data: list[VerifyItem]
    count: int
    sourced: int
    altered: int
    unsourced: int
    ignored_short: int
    segments_indexed: int
    index_built: bool
    index_seconds: float
    match_seconds: float


@dataclass
class _Hit:
    row_first: int
    row_last: int
    similarity: float
    text: str


@dataclass
class _Scope:
    visible: np.ndarray[Any, Any]  # bool per index row
    people: list[tuple[int, str, list[str]]] = field(default_factory=list)


def diff_text(source: str, quote: str) -> str:
    """``深度学习[-解决-]{+处理+}的是``: what the manuscript changed in the transcript's words."""
    out: list[str] = []
    for op in Indel.opcodes(source, quote):
        a, b = source[op.src_start:op.src_end], quote[op.dest_start:op.dest_end]
        if op.tag == "equal":
            out.append(a if len(a) <= 24 else a[:10] + "…" + a[-10:])
        else:
            if a:
                out.append(f"[-{a}-]")
            if b:
                out.append(f"{{+{b}+}}")
    return "".join(out)


def _candidates(index: SegmentIndex, q: str, scope: _Scope) -> list[int]:
    if len(q) < 3 or index.keys.size == 0:
        return []
    qk = np.unique(_trigram_keys(_codepoints(q)))
    lo = np.searchsorted(index.keys, qk, "left")
    hi = np.searchsorted(index.keys, qk, "right")
    df = hi - lo
    present = df > 0
    if not present.any():
        return []
    rare = present & (df <= COMMON_POSTINGS)
    if rare.sum() < max(3, present.sum() // 4):
        # Mostly common trigrams: take the rarest eight whatever their size.
        order = np.argsort(np.where(present, df, np.iinfo(np.int64).max))[:8]
        rare = np.zeros_like(present)
        rare[order[present[order]]] = True
    parts = [index.rows[a:b] for a, b in zip(lo[rare], hi[rare], strict=True)]
    rows, counts = np.unique(np.concatenate(parts), return_counts=True)
    keep = scope.visible[rows]
    rows, counts = rows[keep], counts[keep]
    if rows.size == 0:
        return []
    top = np.argsort(-counts, kind="stable")[:CANDIDATES]
    return [int(r) for r in rows[top]]


def _window(index: SegmentIndex, row: int, q_len: int, scope: _Scope) -> tuple[int, int]:
    """Rows [first, last] around ``row``: up to ``q_len`` characters each side, same
    transcript, same speaker, visible rows only."""
    t, spk = index.trans_ids[row], index.speakers[row]

    def same(p: int) -> bool:
        return bool(index.trans_ids[p] == t and index.speakers[p] == spk and scope.visible[p])

    first = last = row
    left = right = 0
    while first > 0 and left < q_len and same(first - 1):
        first -= 1
        left += len(index.texts[first])
    while last + 1 < len(index.texts) and right < q_len and same(last + 1):
        last += 1
        right += len(index.texts[last])
    return first, last


def _align(q: str, text: str) -> tuple[float, int, int]:
    """(similarity, start, end) of the best place for ``q`` in ``text``."""
    pos = text.find(q)
    if pos >= 0:
        return 1.0, pos, pos + len(q)
    if len(text) <= len(q):
        return fuzz.ratio(q, text) / 100.0, 0, len(text)
    al = fuzz.partial_ratio_alignment(q, text)
    if al is None:
        return 0.0, 0, 0
    s0, e0 = al.dest_start, al.dest_end
    best = (fuzz.ratio(q, text[s0:e0]) / 100.0, s0, e0)
    if best[0] < ALTERED_MIN * 0.85:
        return best
    # partial_ratio aligns a window as long as the quotation; words added or cut in the
    # manuscript move the true ends, so slide each end (alternately) to the best ratio.
    reach = max(3, len(q) // 6)
    for _ in range(2):
        _, s, e = best
        for ne in range(max(s + 1, e - reach), min(len(text), e + reach) + 1):
            r = fuzz.ratio(q, text[s:ne]) / 100.0
            if r > best[0]:
                best = (r, s, ne)
        _, s, e = best
        for ns in range(max(0, s - reach), min(e - 1, s + reach) + 1):
            r = fuzz.ratio(q, text[ns:e]) / 100.0
            if r > best[0]:
                best = (r, ns, e)
    return best


def _match_one(index: SegmentIndex, q: str, scope: _Scope) -> list[_Hit]:
    hits: dict[tuple[int, int], _Hit] = {}
    for row in _candidates(index, q, scope):
        first, last = _window(index, row, len(q), scope)
        texts = index.texts[first:last + 1]
        joined = "".join(texts)
        sim, s, e = _align(q, joined)
        if sim < ALTERED_MIN * 0.9:
            continue
        # Which rows the aligned characters fall in.
        offsets = np.cumsum([0, *(len(t) for t in texts)])
        r0 = first + int(np.searchsorted(offsets, s, "right")) - 1
        r1 = first + int(np.searchsorted(offsets, max(s, e - 1), "right")) - 1
        key = (r0, r1)
        if key not in hits or hits[key].similarity < sim:
            hits[key] = _Hit(r0, r1, sim, joined[s:e])
    return sorted(hits.values(), key=lambda h: -h.similarity)


def _elided_parts(quote: str) -> list[str]:
    parts = [normalise_for_match(p) for p in _ELLIPSIS.split(quote)]
    parts = [p for p in parts if p]
    if len(parts) < 2 or any(len(p) < 4 for p in parts):
        return []
    return parts


def _match_elided(index: SegmentIndex, parts: list[str], scope: _Scope) -> list[_Hit]:
    """Each part in order, all in one recording: an ellipsis marks a legitimate cut."""
    per_part = [_match_one(index, p, scope) for p in parts]
    if any(not hs for hs in per_part):
        return []
    out: list[_Hit] = []
    for first in per_part[0][:3]:
        rec = index.rec_ids[first.row_first]
        chain, last_row, ok = [first], first.row_last, True
        for hs in per_part[1:]:
            nxt = next((h for h in hs if index.rec_ids[h.row_first] == rec
                        and h.row_first >= last_row), None)
            if nxt is None:
                ok = False
                break
            chain.append(nxt)
            last_row = nxt.row_last
        if ok:
            total = sum(len(p) for p in parts)
            sim = sum(h.similarity * len(p) for h, p in zip(chain, parts, strict=True)) / total
            out.append(_Hit(chain[0].row_first, chain[-1].row_last, round(sim, 4),
                            "…".join(h.text for h in chain)))
    return sorted(out, key=lambda h: -h.similarity)


def _scope(session: Session, index: SegmentIndex, user: User) -> _Scope:
    visible = np.ones(index.size, dtype=bool)
    if user.role not in (Role.editor, Role.admin):
        allowed = session.exec(
            select(Recording.id).where(
                (col(Recording.access) == Access.team) | (col(Recording.created_by) == user.id))
        ).all()
        visible &= np.isin(index.rec_ids, np.array(list(allowed), dtype=np.int64))
    if is_redacted_for(user):
        withheld = session.connection().execute(withheld_current_segments()).scalars().all()
        visible &= ~np.isin(index.seg_ids, np.array(withheld, dtype=np.int64))
    people = [(p.id, p.name, list(p.alt_names or [])) for p in session.exec(select(Person))
              if p.id is not None]
    return _Scope(visible, people)


class _Names:
    """Recording titles and speaker maps, read once per request for the recordings hit."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.titles: dict[int, str] = {}
        self.speakers: dict[tuple[int, str], tuple[int | None, str | None]] = {}
        self.loaded: set[int] = set()

    def load(self, rec_ids: set[int]) -> None:
        todo = rec_ids - self.loaded
        if not todo:
            return
        self.loaded |= todo
        for rid, title in self.session.exec(
                select(Recording.id, Recording.title).where(col(Recording.id).in_(todo))).all():
            if rid is not None:
                self.titles[rid] = title
        for s, p in self.session.exec(
            select(Speaker, Person).join(Person, col(Person.id) == col(Speaker.person_id),
                                         isouter=True)
            .where(col(Speaker.recording_id).in_(todo))
        ).all():
            self.speakers[(s.recording_id, s.label)] = (s.person_id, p.name if p else None)


def _describe(names: _Names, index: SegmentIndex, hits: Sequence[_Hit],
              named: tuple[int, str] | None) -> list[VerifyMatch]:
    if not hits:
        return []
    names.load({int(index.rec_ids[h.row_first]) for h in hits})
    out: list[VerifyMatch] = []
    for h in hits:
        rid = int(index.rec_ids[h.row_first])
        label = index.speakers[h.row_first]
        pid, pname = names.speakers.get((rid, label), (None, None))
        mismatch = None if named is None or pid is None else pid != named[0]
        out.append(VerifyMatch(
            recording_id=rid, recording_title=names.titles.get(rid),
            transcript_version=index.versions.get(rid),
            start=float(index.starts[h.row_first]), end=float(index.ends[h.row_last]),
            speaker=label, person_id=pid, person_name=pname,
            similarity=round(h.similarity, 4), transcript_text=h.text,
            speaker_mismatch=mismatch,
        ))
    return out


def verify_text(session: Session, engine: Engine, *, text: str, user: User,
                min_chars: int = MIN_CHARS, chapter_id: int | None = None) -> VerifyReport:
    """Find and match every quotation of ``text`` against what ``user`` may see."""
    quotations, short = find_quotations(text, min_chars=min_chars)
    index, built = index_for(engine)
    t0 = time.perf_counter()
    scope = _scope(session, index, user)
    names = _Names(session)
    items: list[VerifyItem] = []
    tally = {"sourced": 0, "altered": 0, "unsourced": 0}
    for i, qt in enumerate(quotations, start=1):
        q = normalise_for_match(qt.text)
        hits = _match_one(index, q, scope)
        if not hits or hits[0].similarity < 1.0:
            parts = _elided_parts(qt.text)
            if parts:
                elided = _match_elided(index, parts, scope)
                if elided and (not hits or elided[0].similarity > hits[0].similarity):
                    hits = elided
        hits = [h for h in hits if h.similarity >= ALTERED_MIN]
        named = named_person(qt.context, scope.people)
        if hits and hits[0].similarity >= 1.0:
            status = "sourced"
            hits = [h for h in hits if h.similarity >= 1.0]
        elif hits:
            status = "altered"
        else:
            status = "unsourced"
        tally[status] += 1
        matches = _describe(names, index, hits[:MAX_MATCHES], named)
        items.append(VerifyItem(
            index=i, line=qt.line, kind=qt.kind, quote_text=qt.text, status=status,
            named_speaker=named[1] if named else None,
            named_person_id=named[0] if named else None, matches=matches,
            diff=diff_text(hits[0].text.replace("…", ""), q) if status == "altered" else None,
        ))
    return VerifyReport(
        chapter_id=chapter_id, data=items, count=len(items), ignored_short=short,
        segments_indexed=index.size, index_built=built,
        index_seconds=round(index.build_seconds, 3),
        match_seconds=round(time.perf_counter() - t0, 3), **tally,
    )
