"""Initial prompts that teach Whisper the names in a recording.

Whisper's ``initial_prompt`` is decoded as if it were the text just before the audio,
so names spelt there are much more likely to be spelt the same way in the transcript
(闫俊杰 rather than 严俊杰, MiniMax rather than Mini Max).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipelines.text import is_cjk, normalise_for_match, to_simplified

__all__ = ["build_prompt", "prompt_weight"]


def prompt_weight(text: str) -> int:
    """Rough length of ``text`` in Whisper tokens: CJK characters count two, others one.

    Whisper keeps at most 223 prompt tokens and cuts from the front, so a prompt must
    stay short enough that its opening words survive.
    """
    return sum(2 if is_cjk(ch) else 1 for ch in text)


def _unique(terms: Iterable[str], seen: set[str]) -> list[str]:
    out: list[str] = []
    for raw in terms:
        term = " ".join(raw.split())
        key = normalise_for_match(term)
        if key and key not in seen:
            seen.add(key)
            out.append(term)
    return out


def build_prompt(
    names: Sequence[str],
    organisations: Sequence[str] = (),
    language: str = "auto",
    max_chars: int = 200,
) -> str | None:
    """An initial prompt naming a recording's people and organisations, or None.

    For "zh" and "auto" (this archive is mostly Mandarin) it reads
    "以下是与闫俊杰、MiniMax的访谈。" in simplified script; for other languages
    "An interview with Yan Junjie, MiniMax." Terms are deduplicated (ignoring case,
    script and punctuation) in order, people first, and the list is cut so that
    :func:`prompt_weight` stays within ``max_chars``.
    """
    chinese = language in ("zh", "auto")
    terms = _unique((to_simplified(t) if chinese else t for t in (*names, *organisations)), set())
    if not terms:
        return None
    if chinese:
        head, sep, tail = "以下是与", "、", "的访谈。"
    else:
        head, sep, tail = "An interview with ", ", ", "."
    budget = max_chars - prompt_weight(head + tail)
    kept: list[str] = []
    used = 0
    for term in terms:
        cost = prompt_weight(term) + (prompt_weight(sep) if kept else 0)
        if used + cost > budget:
            break
        kept.append(term)
        used += cost
    if not kept:
        return None
    return head + sep.join(kept) + tail
