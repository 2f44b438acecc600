"""Chinese/English text utilities: script folding, search tokens, Whisper clean-up checks.

Everything here is pure and cheap; the OpenCC converter is built once per process.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "HALLUCINATION_PATTERNS",
    "WordSpan",
    "asr_token",
    "cjk_spaced",
    "compression_ratio",
    "has_repetition_loop",
    "is_cjk",
    "is_cjk_punctuation",
    "is_hallucination",
    "is_spoken",
    "join_tokens",
    "needs_space_between",
    "normalise_for_match",
    "to_simplified",
    "word_spans",
    "word_tokens",
]

# Han ideographs (all extension blocks and compatibility forms) plus Japanese kana:
# scripts written without spaces, so search has to index them one character at a time.
_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # Extension A
    (0x4E00, 0x9FFF),  # Unified Ideographs
    (0xF900, 0xFAFF),  # Compatibility Ideographs
    (0x20000, 0x2A6DF),  # Extension B
    (0x2A700, 0x2EBEF),  # Extensions C-F
    (0x2F800, 0x2FA1F),  # Compatibility Supplement
    (0x30000, 0x323AF),  # Extensions G-H
)

# Full-width punctuation never takes a space next to it when words are joined.
_CJK_PUNCT_RANGES: tuple[tuple[int, int], ...] = (
    (0x3000, 0x303F),  # CJK Symbols and Punctuation: 。、「」
    (0xFE30, 0xFE4F),  # CJK Compatibility Forms
    (0xFF00, 0xFFEF),  # Half-width and Full-width Forms: ，！？：
)

_NO_SPACE_BEFORE = frozenset(",.!?;:)]}%…'\"")
_NO_SPACE_AFTER = frozenset("([{")


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Fold traditional Chinese characters into simplified script (OpenCC ``t2s``)."""
    if not text or not any(is_cjk(ch) for ch in text):
        return text
    return str(_t2s().convert(text))


def is_cjk(ch: str) -> bool:
    """True for a Han ideograph or Japanese kana (a character written without spaces)."""
    if not ch:
        return False
    cp = ord(ch[0])
    if cp < 0x3040:
        return False
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def is_cjk_punctuation(ch: str) -> bool:
    """True for full-width punctuation such as 。，！？「」."""
    if not ch:
        return False
    cp = ord(ch[0])
    return any(lo <= cp <= hi for lo, hi in _CJK_PUNCT_RANGES) and not ch[0].isalnum()


def is_word_char(ch: str) -> bool:
    # Combining marks stay with their base letter (NFKC leaves some uncomposed).
    return ch.isalnum() or unicodedata.category(ch) in ("Mn", "Mc")


def _fold(text: str) -> str:
    # NFKC turns full-width Latin letters and digits (ＭｏＥ, １２) into ASCII first.
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


def cjk_spaced(text: str) -> str:
    """Text for a word-based full-text index (FTS5 ``unicode61``, PostgreSQL ``simple``).

    Lowercased, folded to simplified script, punctuation turned into spaces, every CJK
    character a token of its own and every other word kept whole::

        >>> cjk_spaced("MoE架構很重要!")
        'moe 架 构 很 重 要'

    Index and query text must both go through this function; a query becomes a phrase
    (``"架 构"``), which finds the two characters next to each other.
    """
    out: list[str] = []
    for ch in _fold(text):
        if is_cjk(ch):
            out.append(f" {ch} ")
        elif is_word_char(ch):
            out.append(ch)
        else:
            out.append(" ")
    return " ".join("".join(out).split())


def normalise_for_match(text: str) -> str:
    """Text reduced for fuzzy quote matching: simplified, lowercase, no punctuation or spaces."""
    return "".join(ch for ch in _fold(text) if is_word_char(ch))


def _needs_space(left: str, right: str) -> bool:
    a, b = left[-1], right[0]
    if is_cjk(a) or is_cjk(b) or is_cjk_punctuation(a) or is_cjk_punctuation(b):
        return False
    return b not in _NO_SPACE_BEFORE and a not in _NO_SPACE_AFTER


def join_tokens(tokens: Iterable[str]) -> str:
    """Join ASR word tokens into readable text.

    A token's leading space is Whisper's own word boundary, and it is the only reliable
    one: in Chinese mode Whisper splits a Latin word into pieces without spaces
    (``["用", "M", "ini", "Max", "模型"]``), while English words come as ``" Hello"``.
    So a space goes between two tokens exactly when the second starts with whitespace
    and neither side of the boundary is CJK (``" MoE"`` after ``"用"`` is glued) nor
    closing punctuation; tokens are stripped, and Chinese never gains spaces.
    """
    out: list[str] = []
    prev = ""
    for raw in tokens:
        tok = raw.strip()
        if not tok:
            continue
        if prev and raw[:1].isspace() and _needs_space(prev, tok):
            out.append(" ")
        out.append(tok)
        prev = tok
    return "".join(out)


def asr_token(raw: str) -> str:
    """A Whisper word token in canonical form: stripped, with one leading space if it had any.

    The leading space marks a word boundary for :func:`join_tokens`.
    """
    tok = raw.strip()
    return " " + tok if tok and raw[:1].isspace() else tok


def needs_space_between(left: str, right: str) -> bool:
    """True if joining ``left`` and ``right`` (both non-empty, stripped) needs a space."""
    return bool(left) and bool(right) and _needs_space(left, right)


@dataclass(frozen=True, slots=True)
class WordSpan:
    """One word of a typed text and where its characters are in that text.

    ``chars`` are the indices of the word's characters in the text (whitespace between
    a word and punctuation attached to it is not part of it, so they need not be
    contiguous); ``text`` is those characters joined.
    """

    text: str
    chars: tuple[int, ...]

    @property
    def spoken(self) -> tuple[int, ...]:
        """Indices of the characters that are pronounced (letters, digits, CJK)."""
        return tuple(i for i, ch in zip(self.chars, self.text, strict=True) if is_spoken(ch))


def is_spoken(ch: str) -> bool:
    """True for a character that has a sound: a letter, digit, or CJK character."""
    return is_cjk(ch) or is_word_char(ch)


def word_spans(text: str) -> list[WordSpan]:
    """The product's words of a typed text, with their character positions.

    One word per CJK character, Latin words (anything up to whitespace or a CJK
    character) whole, punctuation attached to the word before it, or to the next word
    at the very start of the text::

        >>> [w.text for w in word_spans("“MoE架构很重要。”Hello, world!")]
        ['“MoE', '架', '构', '很', '重', '要。”', 'Hello,', 'world!']

    This is the one tokenizer of typed text: corrections, imports and alignment all
    cut words with it, so a word the service stores is a word the aligner timed.
    """
    spans: list[list[int]] = []
    word: list[int] = []
    lead: list[int] = []  # punctuation before the first word
    for i, ch in enumerate(text):
        if ch.isspace():
            if word:
                spans.append(word)
                word = []
        elif is_cjk(ch):
            if word:
                spans.append(word)
                word = []
            spans.append([*lead, i])
            lead = []
        elif ch.isalnum() or word:
            word = [*lead, *word, i] if lead else [*word, i]
            lead = []
        elif spans:
            spans[-1].append(i)
        else:
            lead.append(i)
    if word:
        spans.append(word)
    elif lead:
        spans.append(lead)
    return [WordSpan("".join(text[i] for i in s), tuple(s)) for s in spans]


def word_tokens(text: str) -> list[str]:
    """The words of a typed text as strings; see :func:`word_spans`."""
    return [w.text for w in word_spans(text)]


# Lines Whisper invents on silence and music, learnt from subtitle files in its
# training data. Each pattern is matched with ``fullmatch`` against
# ``normalise_for_match(text)`` (simplified, lowercase, no punctuation or spaces).
# Markers that never occur in a real interview (amara.org, 独播剧场) match anywhere in
# the line, subtitle credits (字幕由…, …字幕组) only as a short line; polite phrases a speaker
# might really say ("thanks for watching") match only when they are the whole line.
_HALLUCINATION_SOURCES: tuple[str, ...] = (
    r".*amaraorg.*",
    r"字幕(由|提供|制作|志愿者|by|校对|翻译).{0,24}",
    r".{0,16}字幕组",
    r"(中文|简体|繁体|双语)字幕.{0,24}",
    r".*(点赞|订阅).*(订阅|转发|打赏|分享|点赞).*",
    r".*请不吝.*",
    r".*明镜与点点.*",
    r".*独播剧场.*",
    r".*yoyotelevision.*",
    r".*castingwords.*",
    r".*subtitles?(by|created|provided|made).*",
    r".*(transcribed|transcription|captions?|translated)by.*(com|org|net|team)",
    r"(thanks?|thankyou)(so|very)?(much)?(for)?watching(thevideo)?",
    r"(please)?(like(and|&)?)?subscribe(tomychannel|tothechannel)?",
    r"(谢谢|感谢)(大家|您的?)?(收看|观看|收听)",
    r"(欢迎)?订阅(我的)?(频道)?",
    r"本(字幕|节目|视频)(由|提供).*",
    r"www\w*(com|org|net|cn)",
)

#: Compiled patterns of lines Whisper invents on silence; see :func:`is_hallucination`.
HALLUCINATION_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p) for p in _HALLUCINATION_SOURCES
)


def is_hallucination(text: str) -> bool:
    """True if ``text`` is a line Whisper typically invents on silence or music.

    Matching is done after folding to simplified script and stripping case, punctuation
    and spaces, so "字幕由 Amara.org 社群提供" and "字幕由Amara.org社群提供" both match.
    """
    norm = normalise_for_match(text)
    if not norm:
        return False
    return any(p.fullmatch(norm) for p in HALLUCINATION_PATTERNS)


# A unit of 2..40 characters repeated five or more times in a row, or one character
# fifteen or more times: longer than people really repeat themselves ("对对对对").
_LOOP_UNIT = re.compile(r"(.{2,40}?)\1{4,}")
_LOOP_CHAR = re.compile(r"(.)\1{14,}")
#: Whisper's own rejection threshold for a 30 s window (``compression_ratio_threshold``).
COMPRESSION_RATIO_THRESHOLD = 2.4
# zlib's header makes short strings look incompressible; below this the ratio is noise.
_MIN_BYTES_FOR_RATIO = 120


def compression_ratio(text: str) -> float:
    """Length of ``text`` in UTF-8 over its zlib-compressed length (Whisper's loop signal)."""
    data = text.encode("utf-8")
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data))


def has_repetition_loop(text: str) -> bool:
    """True if ``text`` looks like a decoding loop (the same words repeated over and over).

    Two signals: a unit of 2-40 characters repeated at least five times in a row (or a
    single character fifteen times) after normalisation, or a zlib compression ratio
    above Whisper's 2.4 on text long enough for the ratio to mean something.
    """
    norm = normalise_for_match(text)
    if _LOOP_CHAR.search(norm):
        return True
    m = _LOOP_UNIT.search(norm)
    if m and len(m.group(0)) >= 16:
        return True
    data = text.encode("utf-8")
    return len(data) >= _MIN_BYTES_FOR_RATIO and compression_ratio(text) > (
        COMPRESSION_RATIO_THRESHOLD
    )
