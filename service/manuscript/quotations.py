"""Finding the quotations in a chapter draft, and who a draft says is speaking.

“…”, 「…」 and "…" within a paragraph, and ``>`` blocks (one quotation per block, its
own outer quote marks removed). Quoted text shorter than ``min_chars`` characters after
normalisation (“窄AI”, “感知”) is a term in quote marks, not a remark: it is counted in
``ignored_short`` and not matched (``service.manuscript.verify`` matches the rest).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.text import normalise_for_match

#: Shorter quoted text (normalised) is a term in quote marks, not a remark.
MIN_CHARS = 8


_CURLY = re.compile(r"“([^“”\n]{1,4000})”")


_CORNER = re.compile(r"「((?:[^「」\n]|「[^「」\n]*」){1,4000})」")


_STRAIGHT = re.compile(r'(?<![\w=])"([^"\n]{1,4000})"(?!\w)')


_BLOCK = re.compile(r"^\s{0,3}>\s?(.*)$")


_OUTER = (("“", "”"), ("「", "」"), ('"', '"'), ("『", "』"))


ELLIPSIS = re.compile(r"\s*(?:…+|\.{3,}|。{3,}|⋯+)\s*")


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
