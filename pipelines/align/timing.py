"""From token times to word times: the arithmetic of one alignment, free of any model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pipelines.align.speech import VAD_PAD, snap_edges
from pipelines.text import WordSpan, is_cjk, is_spoken, needs_space_between
from pipelines.types import Word

#: How far (seconds) a text's last word may be carried to the end of its speech.
_END_REACH = 0.6


def fix_first_token(
    starts: npt.NDArray[np.float64],
    ends: npt.NDArray[np.float64],
    token_bytes: Sequence[bytes],
    regions: Sequence[tuple[float, float]],
    window_start: float,
    span_start: float,
) -> None:
    """Give the window's first spoken token a real start (in place).

    The warping path starts the first token at the window's first frame, whatever was
    said before it. Its start is capped at twice the median token duration before its
    end, then moved to the onset of the speech (VAD) its end lies in. When that speech
    runs on from before the window, nothing in the audio marks the onset, and the
    span's own start (the ASR's or the cue's) is the bound instead.
    """
    spoken = [k for k, b in enumerate(token_bytes) if any(is_spoken(ch) for ch in _text(b))]
    if not spoken:
        return
    k = spoken[0]
    durations = (ends - starts)[spoken[1:]]
    durations = durations[durations > 0]
    cap = 2 * float(np.median(durations)) if len(durations) else 0.6
    cap = min(max(cap, 0.2), 1.0)
    start = max(float(starts[k]), float(ends[k]) - cap)
    core = float(ends[k]) - 0.02
    region = next(((s, e) for s, e in regions if s <= core < e), None)
    if region is not None and region[0] > window_start + 0.05:
        start = max(start, region[0])
    elif region is not None:
        start = max(start, min(span_start, core))
    starts[k] = min(start, float(ends[k]))
    # Tokens before it (an opening quote) move with it.
    for j in range(k):
        starts[j] = ends[j] = starts[k]


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="ignore") or "a"  # a partial character is spoken


def timed_words(
    words: Sequence[WordSpan],
    raw: Sequence[tuple[float, float, float] | None],
    regions: Sequence[tuple[float, float]],
    *,
    snap: bool,
) -> list[Word]:
    """Words from raw (start, end, probability) per word, None for punctuation alone.

    With ``snap``, word edges in non-speech are moved onto the speech inside the word.
    Punctuation alone sits, zero-length, where the word before it ends.
    """
    times = [None if r is None else [r[0], r[1]] for r in raw]
    spoken = [t for t in times if t is not None]
    if snap:
        for span in spoken:
            if span[1] > span[0]:
                span[0], span[1] = snap_edges(span[0], span[1], regions)
        if spoken:
            # The warping hands a text's last frames to what follows it (the next text,
            # or the end of text), so the last word tends to end early: carry it to the
            # end of its speech when that is near.
            last = spoken[-1]
            region = next(((s, e) for s, e in regions if s <= last[1] < e), None)
            if region is not None and region[1] - last[1] <= _END_REACH:
                last[1] = max(last[1], region[1] - VAD_PAD)
    out: list[Word] = []
    pending: list[WordSpan] = []
    for w, t, r in zip(words, times, raw, strict=True):
        if t is None or r is None:
            if out:
                out.append(Word(start=out[-1].end, end=out[-1].end, text=w.text,
                                probability=1.0, timing="aligned"))
            else:
                pending.append(w)
            continue
        start, end = round(t[0], 3), round(t[1], 3)
        for p in pending:
            out.append(Word(start=start, end=start, text=p.text, probability=1.0,
                            timing="aligned"))
        pending = []
        out.append(Word(start=start, end=end, text=w.text, probability=round(r[2], 4),
                        timing="aligned"))
    return out


def model_text(texts: Sequence[str]) -> tuple[str, list[list[int]]]:
    """The text the model reads for the pieces' ``texts``, and for each text where each
    of its characters landed in it (-1 for whitespace that was collapsed).

    Spaces are written as Whisper writes them: Latin text starts with one (" Hello"),
    words are separated by one, and none goes next to Chinese ("做MoE架构。Hello").
    """
    out: list[str] = []
    where: list[list[int]] = []
    for piece in texts:
        positions = [-1] * len(piece)
        pending_space = bool(out) or not is_cjk(piece.lstrip()[:1] or "a")
        for i, ch in enumerate(piece):
            if ch.isspace():
                pending_space = pending_space or bool(out)
                continue
            if pending_space and (not out or needs_space_between(out[-1], ch)):
                out.append(" ")
            pending_space = False
            positions[i] = len(out)
            out.append(ch)
        where.append(positions)
    return "".join(out), where


def char_times(
    text: str,
    token_bytes: Sequence[bytes],
    starts: npt.NDArray[np.float64],
    ends: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[list[int]]]:
    """Per character of ``text``: start, end and the tokens it is in.

    A token covering several pronounced characters ("我们", " Hello") is shared
    between them in equal parts; a character split over several tokens (a rare CJK
    character as two byte tokens) runs from the first to the last.
    """
    n = len(text)
    char_start = np.full(n, np.inf)
    char_end = np.full(n, -np.inf)
    char_tokens: list[list[int]] = [[] for _ in range(n)]
    char_bytes = np.cumsum([0] + [len(ch.encode("utf-8")) for ch in text])
    pos = 0
    for k, piece in enumerate(token_bytes):
        b0, b1 = pos, pos + len(piece)
        pos = b1
        first = int(np.searchsorted(char_bytes, b0, side="right")) - 1
        last = int(np.searchsorted(char_bytes, b1, side="left")) - 1
        chars = [c for c in range(max(first, 0), min(last, n - 1) + 1) if is_spoken(text[c])]
        if not chars:
            continue
        s, e = float(starts[k]), float(ends[k])
        m = len(chars)
        for j, c in enumerate(chars):
            char_start[c] = min(char_start[c], s + (e - s) * j / m)
            char_end[c] = max(char_end[c], s + (e - s) * (j + 1) / m)
            char_tokens[c].append(k)
    return char_start, char_end, char_tokens


def sub_text(text: str, words: Sequence[WordSpan]) -> tuple[str, list[WordSpan]]:
    """The text of a run of words, and the words re-indexed into it."""
    if not words:
        return "", []
    a, b = words[0].chars[0], words[-1].chars[-1] + 1
    return text[a:b], [WordSpan(w.text, tuple(c - a for c in w.chars)) for w in words]


def plan_chunk(
    words: Sequence[WordSpan],
    start: float,
    end: float,
    limit: float,
    regions: Sequence[tuple[float, float]],
) -> tuple[int, float]:
    """How many of ``words`` are expected to be said by ``limit`` (at least one), and
    when they are expected to end.

    The words share the *speech* (VAD) in [start, end] by character count, so a long
    pause does not push the estimate of the words after it too early.
    """
    clipped = [(max(s, start), min(e, end)) for s, e in regions if e > start and s < end]
    if not clipped:
        clipped = [(start, end)]
    lengths = np.cumsum([len(w.text) for w in words])
    total_speech = sum(e - s for s, e in clipped)
    by_limit = sum(max(0.0, min(e, limit) - s) for s, e in clipped)
    budget = lengths[-1] * by_limit / total_speech if total_speech > 0 else 0.0
    take = max(1, int(np.searchsorted(lengths, budget, side="right")))
    # The wall-clock time at which that share of the speech has passed.
    t = total_speech * float(lengths[take - 1]) / float(lengths[-1])
    for s, e in clipped:
        if t <= e - s:
            return take, s + t
        t -= e - s
    return take, clipped[-1][1]
