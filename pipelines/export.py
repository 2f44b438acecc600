"""Transcript exports: txt, md, srt, vtt, json and docx from speaker-attributed segments.

Exports take :class:`ExportSegment` rows whose ``speaker`` is already the display name
(the person's name where a label was mapped), so remapping a speaker reaches every
export without touching stored text. Reading formats (txt, md, docx) merge consecutive
segments of one speaker into a turn; two labels mapped to one person (``person_id``)
count as one speaker. Cue formats (srt, vtt) and json keep one entry per segment.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.escaping import md_text

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
    #: The person the label is mapped to; labels of one person read as one speaker.
    person_id: int | None = None
    #: A restriction level overlapping the segment ("off_record" ...), or "".
    restricted: str = ""


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


def _speaker_key(seg: ExportSegment) -> tuple[str, object]:
    # A person id is the identity when there is one: two labels mapped to one person
    # are one speaker even if a name were shared by two people.
    if seg.person_id is not None:
        return ("person", seg.person_id)
    return ("name", seg.speaker)


def _turns(doc: ExportDoc) -> list[tuple[str, float, float, list[str]]]:
    """Consecutive segments of one speaker merged into a turn (for reading exports)."""
    turns: list[tuple[str, float, float, list[str]]] = []
    last_key: tuple[str, object] | None = None
    for seg in doc.segments:
        key = _speaker_key(seg)
        if turns and key == last_key:
            name, start, _, texts = turns[-1]
            turns[-1] = (name, start, seg.end, [*texts, seg.text])
        else:
            turns.append((seg.speaker, seg.start, seg.end, [seg.text]))
        last_key = key
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
    # Title, names and text are the archive's, never Markdown or HTML of their own.
    lines = [f"# {md_text(doc.title)}", ""]
    lines += [f"- **{md_text(k)}**: {md_text(v)}" for k, v in doc.metadata.items() if v]
    if doc.metadata:
        lines.append("")
    for name, start, _, texts in _turns(doc):
        lines.append(f"**{md_text(name)}** `{hms(start)}`  ")
        lines.append(md_text(_join(texts)))
        lines.append("")
    return "\n".join(lines)


def _cue_text(seg: ExportSegment) -> str:
    # A blank line would end the cue early, and "-->" in the text would read as a timing
    # line: collapse line breaks inside a segment and replace the arrow.
    text = " ".join(seg.text.split()).replace("-->", "→")
    return f"{seg.speaker}: {text}" if seg.speaker else text


def _vtt_escape(text: str) -> str:
    # Cue text is markup in WebVTT: a bare "<" or "&" would start a tag or an entity.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
        text = _vtt_escape(" ".join(seg.text.split()).replace("-->", "→"))
        speaker = _vtt_escape(" ".join(seg.speaker.split()))
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
            {k: v for k, v in asdict(seg).items() if k not in ("words", "restricted")}
            | ({"restricted": seg.restricted} if seg.restricted else {})
            | {"words": [dict(w) for w in seg.words]}
            for seg in doc.segments
        ],
    }
    return json.dumps(body, ensure_ascii=False, indent=2) + "\n"


def to_docx(doc: ExportDoc) -> bytes:
    """A Word document: the metadata as a table under the title, then one paragraph per turn.

    The title and metadata also go into the page header, so every printed page says which
    recording and which transcript version it comes from.
    """
    from docx import Document
    from docx.oxml import OxmlElement
    from docx.shared import Pt
    from docx.text.paragraph import Paragraph

    document = Document()
    header = document.sections[0].header.paragraphs[0]
    header.text = " · ".join(
        [doc.title, *(f"{k}: {v}" for k, v in doc.metadata.items() if v and k == "version")]
    )
    document.add_heading(doc.title, level=1)
    rows = [(k, v) for k, v in doc.metadata.items() if v]
    if rows:
        table = document.add_table(rows=0, cols=2)
        table.style = "Table Grid"
        for key, value in rows:
            cells = table.add_row().cells
            cells[0].text = key
            cells[1].text = value
        document.add_paragraph()
    # Paragraphs are built detached and appended in one go: Document.add_paragraph looks
    # for the section properties among all body children on every call, which made a
    # 20 000-segment transcript take minutes instead of seconds.
    body = document.element.body
    section = body.sectPr
    for name, start, _, texts in _turns(doc):
        head = Paragraph(OxmlElement("w:p"), document)
        who = head.add_run(name)
        who.bold = True
        stamp = head.add_run(f"  [{hms(start)}]")
        stamp.font.size = Pt(8)
        text = Paragraph(OxmlElement("w:p"), document)
        text.add_run(_join(texts))
        body.append(head._p)
        body.append(text._p)
    if section is not None:
        body.append(section)  # lxml moves it: the section properties must come last
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


WRITERS: dict[str, Callable[[ExportDoc], str]] = {
    "txt": to_txt,
    "md": to_md,
    "srt": to_srt,
    "vtt": to_vtt,
    "json": to_json,
}

#: Every export format, in the order they are offered.
FORMATS: tuple[str, ...] = ("txt", "md", "srt", "vtt", "json", "docx")

MEDIA_TYPES: dict[str, str] = {
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def render(doc: ExportDoc, fmt: str) -> bytes:
    """The export in ``fmt`` as bytes (UTF-8 for the text formats)."""
    if fmt == "docx":
        return to_docx(doc)
    if fmt not in WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    return WRITERS[fmt](doc).encode("utf-8")
