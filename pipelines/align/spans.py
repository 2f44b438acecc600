"""What to align: a span of text, the checks' thresholds, and the fallback estimates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.text import is_cjk, word_spans
from pipelines.types import Word

SAMPLE_RATE = 16_000
#: Whisper's context: the most audio one alignment window may hold, in seconds.
MAX_WINDOW = 30.0
#: Audio taken on each side of a span, so words that were cut by the segment boundary
#: (or only moved a little in a correction) still find their sound.
DEFAULT_MARGIN = 0.75
#: Audio beyond the margins that voice activity detection looks at for context.
VAD_CONTEXT = 2.0
#: Audio to give :meth:`Aligner.align` on each side of a span (:func:`window_bounds`).
AUDIO_MARGIN = DEFAULT_MARGIN + VAD_CONTEXT
#: Text tokens Whisper's decoder reads at once (448 positions, less the start sequence).
MAX_TEXT_TOKENS = 440

Waveform = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class AlignSpan:
    """One text to time, with the span (absolute seconds) it belongs to."""

    text: str
    start: float
    end: float
    #: "zh", "en", ... or "auto"; the text's script decides where they disagree.
    language: str = "auto"


@dataclass(frozen=True)
class AlignSettings:
    """Thresholds of the checks; the defaults are the measured ones (bench/align.py)."""

    margin: float = DEFAULT_MARGIN
    #: Below this mean log-probability per token the text is "not spoken" ...
    min_log_prob: float = -3.0
    #: ... and this for Chinese/Japanese text: one token per character, and homophones
    #: the audio cannot tell apart, make correct text less likely token by token.
    min_log_prob_cjk: float = -3.8
    #: Less speech than this inside a span (seconds) is "silence" ...
    min_speech: float = 0.12
    #: ... or less than this share of the span when it is short.
    min_speech_share: float = 0.25
    #: More pronounced words per second than this is "degenerate" (crammed).
    max_words_per_second: float = 15.0
    #: A joint window (imports) is not stretched over a gap longer than this.
    max_gap: float = 3.0
    #: Move word edges that fall in non-speech onto the nearest speech edge inside them.
    snap_to_speech: bool = True
    #: Cut a margin at the pause before (after) the span, or close to the span where
    #: speech runs through it: speech in the window that is not in the text pulls the
    #: first (last) words towards it.
    trim_margins: bool = True
    #: Seconds of audio the encoder reads at least (faster-whisper only): a window is
    #: padded to this rather than to Whisper's 30 s. A 10 s segment then costs a
    #: quarter of the CPU; word starts move a little (p95 0.12 s instead of 0.08-0.09 s
    #: against the ASR's, bench/RESULTS.md). 30 restores Whisper's own context.
    min_context: float = 10.0
    #: Voice activity threshold (Silero) for the silence check and the snapping.
    vad_threshold: float = 0.35


def estimate_words(text: str, start: float, end: float) -> tuple[Word, ...]:
    """Words of ``text`` spread over [start, end] in proportion to their lengths.

    The fallback wherever times cannot be measured: each word gets the share of the
    span its character count is of the whole text. Times are rounded to milliseconds;
    probability is 1.0 (a person typed the text) and timing "estimated".
    """
    spans = word_spans(text)
    total = sum(len(w.text) for w in spans)
    if not total:
        return ()
    length = max(0.0, end - start)
    words: list[Word] = []
    done = 0
    for w in spans:
        w_start = start + length * done / total
        done += len(w.text)
        words.append(
            Word(
                start=round(w_start, 3),
                end=round(start + length * done / total, 3),
                text=w.text,
                probability=1.0,
                timing="estimated",
            )
        )
    return tuple(words)


def window_bounds(
    start: float, end: float, duration: float, margin: float = AUDIO_MARGIN
) -> tuple[float, float]:
    """The audio to cut for aligning [start, end]: the span plus ``margin`` each side,
    clipped to the recording [0, duration]. The default gives the alignment its margin
    and voice activity detection its context."""
    return max(0.0, start - margin), min(duration, max(end + margin, start))


def align_language(text: str, hint: str = "auto", *, multilingual: bool = True) -> str | None:
    """The Whisper language to align ``text`` in; None if the model cannot read it.

    The text's script wins over the hint: Chinese characters are aligned as "zh" (kana
    as "ja"), even in a recording marked English, and Latin-only text as "en" unless
    the hint names another language written in Latin script (a segment of English
    inside a Mandarin interview is aligned as English). An English-only model reads
    only Latin text.
    """
    if any(is_cjk(ch) for ch in text):
        language = "ja" if any("\u3040" <= ch <= "\u30ff" for ch in text) else "zh"
    elif hint in ("auto", "", "zh", "ja", "yue"):
        language = "en"
    else:
        language = hint
    if not multilingual:
        return "en" if language == "en" else None
    return language


def word_cut(words: Sequence[str], text: str, head: str) -> int | None:
    """How many of a segment's ``words`` belong to ``head``, the first part of ``text``.

    ``words`` are the segment's stored word texts (a recogniser's tokens or the product's
    words); they spell ``text`` up to whitespace. Returns ``k`` so that ``words[:k]``
    spell ``head``, or None where they do not spell the text, or where the cut falls
    inside one of them (Whisper heard "我们" as one token and the cut is between its
    characters): those words have no time of their own to cut at, so the caller
    estimates and aligns instead.
    """
    compact = [''.join(w.split()) for w in words]
    if ''.join(compact) != ''.join(text.split()):
        return None
    wanted = len(''.join(head.split()))
    done = 0
    for k, w in enumerate(compact):
        if done == wanted:
            return k if 0 < k < len(compact) else None
        done += len(w)
        if done > wanted:
            return None
    return None
