"""Merge ASR words with diarization turns into speaker-attributed segments.

The merge is a sweep over time-sorted words and turns: O((W + T) log T + W * S) for W
words, T turns and S speakers talking at the same moment (same-speaker turns are
merged first, so S is at most the number of speakers and in practice 1-2).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from dataclasses import replace

from pipelines.text import is_cjk, join_tokens
from pipelines.types import Segment, SpeakerTurn, Word

__all__ = ["DEFAULT_SPEAKER", "assign_speakers", "speaker_of_words"]

#: The label every word gets when there are no turns at all (diarization skipped or
#: found no speech). It looks like a pyannote label on purpose: such a transcript is
#: most often a single speaker, and it can be named like any other label.
DEFAULT_SPEAKER = "SPEAKER_00"

_SENTENCE_END = frozenset("。！？!?.…")
_CLAUSE_END = frozenset("，、；：,;:")


def _sanitise_words(words: Sequence[Word]) -> list[Word]:
    """Sort words by time and make their times monotonic.

    Negative durations are swapped, and a word that starts before the previous one
    ended is clipped to start there; segments can then never overlap.
    """
    fixed = [replace(w, start=w.end, end=w.start) if w.end < w.start else w for w in words]
    # Stable: words with equal times keep their input order.
    fixed.sort(key=lambda w: (w.start, w.end))
    out: list[Word] = []
    prev_end = float("-inf")
    for w in fixed:
        if w.start < prev_end:
            w = replace(w, start=prev_end, end=max(w.end, prev_end))
        out.append(w)
        prev_end = w.end
    return out


def _merge_turns(turns: Sequence[SpeakerTurn]) -> list[SpeakerTurn]:
    """Sort turns and fuse overlapping or touching turns of the same speaker."""
    norm = sorted(
        (SpeakerTurn(min(t.start, t.end), max(t.start, t.end), t.speaker) for t in turns),
        key=lambda t: (t.start, t.end, t.speaker),
    )
    open_by_speaker: dict[str, int] = {}
    out: list[SpeakerTurn] = []
    for t in norm:
        i = open_by_speaker.get(t.speaker)
        if i is not None and t.start <= out[i].end:
            if t.end > out[i].end:
                out[i] = SpeakerTurn(out[i].start, t.end, t.speaker)
            continue
        open_by_speaker[t.speaker] = len(out)
        out.append(t)
    # Fusing only extends ends, so the list is still sorted by start.
    return out


def speaker_of_words(words: Sequence[Word], turns: Sequence[SpeakerTurn]) -> list[str]:
    """The speaker of each word (``words`` sorted by start, times monotonic).

    A word gets the turn it overlaps most (on a tie the shorter turn); a word no turn
    overlaps (or a zero-length word) gets the nearest turn, preferring the earlier one
    on a tie, since a pause after someone speaks usually still belongs to them.
    """
    if not turns:
        return [DEFAULT_SPEAKER] * len(words)
    merged = _merge_turns(turns)
    starts = [t.start for t in merged]
    # prefix_best[i]: index of the turn with the latest end among merged[0..i].
    prefix_best: list[int] = []
    best = 0
    for i, t in enumerate(merged):
        if t.end > merged[best].end:
            best = i
        prefix_best.append(best)

    speakers: list[str] = []
    active: list[tuple[float, int]] = []  # heap of (end, turn index)
    nxt = 0
    for w in words:
        while nxt < len(merged) and merged[nxt].start < w.end:
            heapq.heappush(active, (merged[nxt].end, nxt))
            nxt += 1
        while active and active[0][0] <= w.start:
            heapq.heappop(active)
        best_i = -1
        best_key = (0.0, 0.0, 0)
        for _, i in active:
            t = merged[i]
            overlap = min(t.end, w.end) - max(t.start, w.start)
            if overlap <= 0:
                continue
            # Ties (a word inside two turns) go to the shorter turn, the more specific
            # one (a short interjection inside a long turn), then the earlier one.
            key = (overlap, -(t.end - t.start), -i)
            if best_i < 0 or key > best_key:
                best_key, best_i = key, i
        if best_i < 0:
            best_i = _nearest_turn(w, merged, starts, prefix_best)
        speakers.append(merged[best_i].speaker)
    return speakers


def _nearest_turn(
    w: Word, merged: list[SpeakerTurn], starts: list[float], prefix_best: list[int]
) -> int:
    mid = (w.start + w.end) / 2
    # Left: of the turns starting at or before the word's middle, the one ending last.
    k = bisect.bisect_right(starts, mid) - 1
    left = prefix_best[k] if k >= 0 else -1
    right = k + 1 if k + 1 < len(merged) else -1
    if left < 0:
        return right
    if right < 0:
        return left
    d_left = max(0.0, w.start - merged[left].end)
    d_right = max(0.0, merged[right].start - w.end)
    return left if d_left <= d_right else right


def _segment_language(text: str, language: str) -> str:
    # Mixed interviews: a transcript is "zh" but single answers may be all English.
    if (
        language == "zh"
        and not any(is_cjk(c) for c in text)
        and any(c.isascii() and c.isalpha() for c in text)
    ):
        return "en"
    # With per-segment detection ("auto") the transcript's language is only the first
    # one heard; Han characters in a segment still make it Chinese (not ja/ko/yue).
    if language not in ("zh", "ja", "ko", "yue") and any(is_cjk(c) for c in text):
        return "zh"
    return language


def _make_segment(words: list[Word], speaker: str, language: str) -> Segment:
    text = join_tokens(w.text for w in words)
    return Segment(
        start=words[0].start,
        end=words[-1].end,
        speaker=speaker,
        text=text,
        language=_segment_language(text, language),
        words=tuple(words),
    )


def _ends_with(w: Word, marks: frozenset[str]) -> bool:
    t = w.text.rstrip(" \"'”’」』)")
    return bool(t) and t[-1] in marks


def _best_split(chunk: list[Word]) -> int:
    """Where to cut a chunk that grew too long: the index the second part starts at."""
    for marks in (_SENTENCE_END, _CLAUSE_END):
        for i in range(len(chunk) - 1, 0, -1):
            if _ends_with(chunk[i - 1], marks):
                return i
    # No punctuation at all: cut at the longest pause.
    return max(range(1, len(chunk)), key=lambda i: (chunk[i].start - chunk[i - 1].end, i))


def _split_run(run: list[Word], *, soft_seconds: float, max_seconds: float) -> list[list[Word]]:
    """Cut one speaker's pause-free run into chunks of at most ``max_seconds``.

    After ``soft_seconds`` a chunk ends at the next sentence end; a chunk that would
    pass ``max_seconds`` is cut at its last sentence end, else its last clause end,
    else its longest pause. A single word longer than ``max_seconds`` stays whole.
    """
    chunks: list[list[Word]] = []
    cur: list[Word] = []
    for w in run:
        while cur and w.end - cur[0].start > max_seconds:
            if len(cur) == 1:
                chunks.append(cur)
                cur = []
                break
            cut = _best_split(cur)
            chunks.append(cur[:cut])
            cur = cur[cut:]
        cur.append(w)
        if _ends_with(w, _SENTENCE_END) and w.end - cur[0].start >= soft_seconds:
            chunks.append(cur)
            cur = []
    if cur:
        chunks.append(cur)
    return chunks


def assign_speakers(
    words: Sequence[Word],
    turns: Sequence[SpeakerTurn],
    *,
    language: str,
    max_pause: float = 1.0,
    max_segment_seconds: float = 30.0,
    soft_segment_seconds: float | None = None,
) -> tuple[Segment, ...]:
    """Attribute every word to a speaker and group words into transcript segments.

    Each word gets the speaker whose turn overlaps it most, else the nearest turn, else
    (no turns at all) :data:`DEFAULT_SPEAKER`. A segment is a run of one speaker's
    words; a new one starts after a pause longer than ``max_pause``, at the first
    sentence end (。！？.!?) once a segment is ``soft_segment_seconds`` long (default a
    third of ``max_segment_seconds``), and before ``max_segment_seconds`` is passed.

    Input may be unsorted; words with negative duration are swapped and overlapping
    words are clipped so that segments are ordered and never overlap. Segment text
    joins Chinese without spaces and other words with one space.
    """
    if max_segment_seconds <= 0:
        raise ValueError("max_segment_seconds must be positive")
    soft = max_segment_seconds / 3 if soft_segment_seconds is None else soft_segment_seconds
    ws = _sanitise_words(words)
    if not ws:
        return ()
    speakers = speaker_of_words(ws, turns)

    segments: list[Segment] = []
    run: list[Word] = [ws[0]]
    run_speaker = speakers[0]
    for w, spk in zip(ws[1:], speakers[1:], strict=True):
        if spk != run_speaker or w.start - run[-1].end > max_pause:
            for chunk in _split_run(run, soft_seconds=soft, max_seconds=max_segment_seconds):
                segments.append(_make_segment(chunk, run_speaker, language))
            run, run_speaker = [], spk
        run.append(w)
    for chunk in _split_run(run, soft_seconds=soft, max_seconds=max_segment_seconds):
        segments.append(_make_segment(chunk, run_speaker, language))
    return tuple(segments)
