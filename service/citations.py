"""Citation strings for quotes and bibliography entries for chapters.

Pure formatting over a :class:`Source`; ``service.crud.quotes`` gathers the facts.

Names: a name written in Chinese (or Japanese) script is kept as written: family name
first, no comma inversion, no spaces (闫俊杰). A name in Latin script is given in
natural order in a note ("Sam Altman") and inverted in a bibliography ("Altman, Sam").
Several interviewers are joined with 、 when all are Chinese names, else with "and".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pipelines.escaping import md_text
from pipelines.text import is_cjk

Style = Literal["chicago", "short"]
STYLES: tuple[Style, ...] = ("chicago", "short")
UNKNOWN_SPEAKER = "Unidentified speaker"


@dataclass(frozen=True)
class Source:
    """What a citation is built from: one recording and a moment in it."""

    speaker: str | None
    interviewers: list[str] = field(default_factory=list)
    location: str | None = None
    recorded_on: date | None = None
    title: str | None = None
    start: float | None = None
    recording_id: int | None = None


def hms(seconds: float) -> str:
    """``754.9`` → ``00:12:34`` (whole seconds, rounded down, as a listener would find it)."""
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def is_cjk_name(name: str) -> bool:
    letters = [ch for ch in name if not ch.isspace() and ch not in "·・."]
    return bool(letters) and sum(is_cjk(ch) for ch in letters) * 2 >= len(letters)


def display_name(name: str) -> str:
    """A name as it stands in a note: CJK names without spaces, others normalised."""
    name = " ".join(name.split())
    return name.replace(" ", "") if is_cjk_name(name) else name


def inverted_name(name: str) -> str:
    """A name as it heads a bibliography entry: "Altman, Sam"; Chinese names unchanged."""
    name = display_name(name)
    if is_cjk_name(name) or " " not in name:
        return name
    first, last = name.rsplit(" ", 1)
    return f"{last}, {first}"


def short_name(name: str) -> str:
    """The family name for a short note; a Chinese name stays whole (闫俊杰, not 闫)."""
    name = display_name(name)
    if is_cjk_name(name) or " " not in name:
        return name
    return name.rsplit(" ", 1)[1]


def join_names(names: list[str]) -> str:
    shown = [display_name(n) for n in names if n.strip()]
    if not shown:
        return ""
    if all(is_cjk_name(n) for n in shown):
        return "、".join(shown)
    if len(shown) <= 2:
        return " and ".join(shown)
    return ", ".join(shown[:-1]) + ", and " + shown[-1]


def cite(src: Source, style: Style = "chicago") -> str:
    """A note citing one quote.

    ``chicago``: ``闫俊杰, interview by 张三, Shanghai, 2025-03-01, recording "…", 00:12:34.``
    ``short``: ``闫俊杰, interview, 2025-03-01, 00:12:34.``
    Parts that are not known are left out, never invented.
    """
    speaker = display_name(src.speaker) if src.speaker else UNKNOWN_SPEAKER
    if style == "short":
        parts = [short_name(speaker) if src.speaker else speaker, "interview"]
        if src.recorded_on:
            parts.append(src.recorded_on.isoformat())
    else:
        by = join_names(src.interviewers)
        parts = [speaker, f"interview by {by}" if by else "interview"]
        if src.location:
            parts.append(src.location.strip())
        if src.recorded_on:
            parts.append(src.recorded_on.isoformat())
        if src.title:
            parts.append(f'recording "{src.title.strip()}"')
    if src.start is not None:
        parts.append(hms(src.start))
    return ", ".join(parts) + "."


def bibliography_entry(src: Source, quoted_at: list[float] | None = None) -> str:
    """One Markdown list item of a chapter's sources (Chicago bibliography form); names,
    place and title are escaped (``md_text``), so none of them adds HTML or a link."""
    speaker = inverted_name(src.speaker) if src.speaker else UNKNOWN_SPEAKER
    parts = [f"{md_text(speaker)}. Interview"]
    by = join_names(src.interviewers)
    if by:
        parts[0] += f" by {md_text(by)}"
    tail = ", ".join(x for x in (md_text(src.location) if src.location else None,
                                 src.recorded_on.isoformat() if src.recorded_on else None) if x)
    if tail:
        parts.append(tail)
    if src.title:
        parts.append(f'Recording "{md_text(src.title)}"')
    if src.recording_id is not None:
        parts.append(f"Sourcebook recording {src.recording_id}")
    entry = "- " + ". ".join(parts) + "."
    if quoted_at:
        entry += " Quoted at " + ", ".join(hms(t) for t in sorted(quoted_at)) + "."
    return entry
