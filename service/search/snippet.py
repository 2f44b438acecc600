"""Snippets: the segment's original text around its hits, with the hits marked.

Cut from the original (traditional script, capitals and punctuation as spoken) with
the hits marked «like this»; positions are mapped back from the folded tokens,
character by character.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from pipelines.text import is_cjk, is_word_char, to_simplified
from service.search.query import ParsedQuery, Phrase

SNIPPET_CHARS = 80


#: How much text comes before the first hit in a snippet cut from a long segment.
SNIPPET_LEAD = 20


MARK_OPEN = "«"


MARK_CLOSE = "»"


ELLIPSIS = "…"


@lru_cache(maxsize=4096)
def _base(token: str) -> str:
    # FTS5's unicode61 (remove_diacritics 2) matches "cafe" with "café": compare alike.
    decomposed = unicodedata.normalize("NFD", token)
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def _folded_pieces(text: str) -> list[str]:
    """For each character of ``text``, what it becomes in the index (maybe several chars)."""
    pieces = [unicodedata.normalize("NFKC", ch) for ch in text]
    joined = "".join(pieces)
    simplified = to_simplified(joined)
    if len(simplified) == len(joined):
        # OpenCC converts in context (乾隆 keeps 乾, 乾燥 becomes 干燥) and almost always
        # char for char, so the whole-text conversion is distributed back.
        out, pos = [], 0
        for piece in pieces:
            out.append(simplified[pos:pos + len(piece)].lower())
            pos += len(piece)
        return out
    return [to_simplified(piece).lower() for piece in pieces]


def tokens_with_spans(text: str) -> list[tuple[str, int, int]]:
    """The index tokens of ``text`` with the [start, end) of each in the original text."""
    tokens: list[tuple[str, int, int]] = []
    word: list[str] = []
    word_start = 0
    word_end = 0

    def flush() -> None:
        if word:
            # cjk_spaced normalises whole words, composing e + U+0301 into é.
            tokens.append((unicodedata.normalize("NFC", "".join(word)), word_start, word_end))
            word.clear()

    for i, piece in enumerate(_folded_pieces(text)):
        for ch in piece:
            if is_cjk(ch):
                flush()
                tokens.append((ch, i, i + 1))
            elif is_word_char(ch):
                if not word:
                    word_start = i
                word.append(ch)
                word_end = i + 1
            else:
                flush()
    flush()
    return tokens


def _hits(tokens: Sequence[tuple[str, int, int]], phrases: Sequence[Phrase],
          ) -> list[tuple[int, int]]:
    bases = [_base(t) for t, _, _ in tokens]
    spans: list[tuple[int, int]] = []
    for phrase in phrases:
        want = [_base(t) for t in phrase.tokens]
        n = len(want)
        for i in range(len(bases) - n + 1):
            if bases[i:i + n - 1] != want[:-1]:
                continue
            last = bases[i + n - 1]
            if last == want[-1] or (phrase.prefix and last.startswith(want[-1])):
                spans.append((tokens[i][1], tokens[i + n - 1][2]))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def snippet(text: str, parsed: ParsedQuery, width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``text`` around the first hit, hits marked «…».

    Cut from the original text, so the reader sees the script and spelling that was
    spoken (閆俊傑 is marked when 闫俊杰 was searched for).
    """
    hits = _hits(tokens_with_spans(text), parsed.marked)
    if len(text) <= width:
        lo, hi = 0, len(text)
    elif hits:
        first_start, first_end = hits[0]
        lo = max(0, first_start - SNIPPET_LEAD)
        hi = min(len(text), max(lo + width, first_end))
        lo = max(0, min(lo, hi - width))
    else:
        lo, hi = 0, width
    out: list[str] = [ELLIPSIS] if lo > 0 else []
    pos = lo
    for a, b in hits:
        a, b = max(a, lo), min(b, hi)
        if a >= b:
            continue
        out += [text[pos:a], MARK_OPEN, text[a:b], MARK_CLOSE]
        pos = b
    out.append(text[pos:hi])
    if hi < len(text):
        out.append(ELLIPSIS)
    return "".join(out)
