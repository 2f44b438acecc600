"""Transcript exports: txt, md, srt, vtt and json from speaker-attributed segments.

Exports take :class:`ExportSegment` rows whose ``speaker`` is already the display name
(the person's name where a label was mapped), so remapping a speaker reaches every
export without touching stored text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

JSON_FORMAT = "sourcebook-transcript"
JSON_VERSION = 1


@dataclass(frozen=True, slots=True)
class ExportSegment:
    start: float
    end: float
    speaker: str
    text: str
    label: str = ""
    language: str = ""
    words: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ExportDoc:
    title: str
    segments: Sequence[ExportSegment]
    language: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


def hms(seconds: float) -> str:
    """``hh:mm:ss`` (citations and plain-text exports)."""
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _turns(doc: ExportDoc) -> list[tuple[str, float, float, list[str]]]:
    """Consecutive segments of one speaker merged into a turn (for reading exports)."""
    turns: list[tuple[str, float, float, list[str]]] = []
    for seg in doc.segments:
        if turns and turns[-1][0] == seg.speaker:
            name, start, _, texts = turns[-1]
            turns[-1] = (name, start, seg.end, [*texts, seg.text])
        else:
            turns.append((seg.speaker, seg.start, seg.end, [seg.text]))
    return turns


def _join(texts: Sequence[str]) -> str:
    from pipelines.text import join_tokens

    return join_tokens(t.strip() for t in texts if t.strip())


def to_txt(doc: ExportDoc) -> str:
    lines = [doc.title, ""]
    lines += [f"{k}: {v}" for k, v in doc.metadata.items() if v]
    if doc.metadata:
        lines.append("")
    for name, start, _, texts in _turns(doc):
        lines.append(f"[{hms(start)}] {name}: {_join(texts)}")
    return "\n".join(lines) + "\n"


def to_md(doc: ExportDoc) -> str:
    lines = [f"# {doc.title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in doc.metadata.items() if v]
    if doc.metadata:
        lines.append("")
    for name, start, _, texts in _turns(doc):
        lines.append(f"**{name}** `{hms(start)}`  ")
        lines.append(_join(texts))
        lines.append("")
    return "\n".join(lines)


def _cue_text(seg: ExportSegment) -> str:
    # A blank line would end the cue early; collapse line breaks inside a segment.
    text = " ".join(seg.text.split())
    return f"{seg.speaker}: {text}" if seg.speaker else text


def to_srt(doc: ExportDoc) -> str:
    out = []
    for i, seg in enumerate(s for s in doc.segments if s.text.strip()):
        end = max(seg.end, seg.start + 0.001)
        out.append(f"{i + 1}\n{_clock(seg.start, ',')} --> {_clock(end, ',')}\n{_cue_text(seg)}\n")
    return "\n".join(out)


def to_vtt(doc: ExportDoc) -> str:
    out = ["WEBVTT", ""]
    for seg in doc.segments:
        if not seg.text.strip():
            continue
        end = max(seg.end, seg.start + 0.001)
        text = " ".join(seg.text.split()).replace("-->", "→")
        speaker = seg.speaker.replace(">", "")
        out.append(f"{_clock(seg.start, '.')} --> {_clock(end, '.')}")
        out.append(f"<v {speaker}>{text}" if speaker else text)
        out.append("")
    return "\n".join(out)


def to_json(doc: ExportDoc) -> str:
    body = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "title": doc.title,
        "language": doc.language,
        "metadata": dict(doc.metadata),
        "segments": [
            {k: v for k, v in asdict(seg).items() if k != "words"}
            | {"words": [dict(w) for w in seg.words]}
            for seg in doc.segments
        ],
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


WRITERS = {"txt": to_txt, "md": to_md, "srt": to_srt, "vtt": to_vtt, "json": to_json}
