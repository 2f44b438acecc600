"""Parsers for published transcripts: SRT, WebVTT and Sourcebook JSON.

Validation is strict because an import becomes a transcript version that quotes and
citations are built on: a bad timestamp, cues that overlap or run backwards, text that
is not UTF-8, or a file with no cues is refused with :class:`ImportProblem`, whose
message starts with the line number. A UTF-8 byte-order mark and UTF-16 with a BOM
(what Windows tools write) are accepted.

Speakers come from ``<v Name>`` voice spans (WebVTT), from ``Name: `` or ``Name：``
prefixes (SRT and WebVTT), or from the ``speaker``/``label``/``person_id`` fields of a
Sourcebook JSON segment. Which label and person a name becomes is decided by the caller
(``service.crud.transcripts.import_version``), not here.

Exceptions::

    ValueError
     ├── ImportProblem       the body is not a valid transcript (a 400, with the line)
     └── UnknownFormat       neither the Content-Type nor the content says what it is (415)
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.export import JSON_FORMAT, JSON_VERSION
from pipelines.text import join_tokens

__all__ = [
    "CONTENT_TYPES",
    "Cue",
    "ImportProblem",
    "Parsed",
    "UnknownFormat",
    "decode",
    "detect",
    "parse",
    "parse_json",
    "parse_srt",
    "parse_vtt",
]

#: Media types that name a format outright; anything else is sniffed.
CONTENT_TYPES: dict[str, str] = {
    "text/srt": "srt",
    "application/x-subrip": "srt",
    "application/srt": "srt",
    "text/vtt": "vtt",
    "application/json": "json",
    "application/vnd.sourcebook.transcript+json": "json",
}

MAX_SPEAKER_CHARS = 50  # Speaker.label's column width


class ImportProblem(ValueError):
    """A transcript body that cannot be imported; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class UnknownFormat(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Cue:
    """One imported segment. Times are seconds, rounded to milliseconds."""

    start: float
    end: float
    text: str
    #: The speaker as written (a name, or a label such as SPEAKER_00); "" if none.
    speaker: str = ""
    #: Sourcebook JSON only: the diarization label and the person it was mapped to.
    label: str = ""
    person_id: int | None = None
    language: str = ""
    words: tuple[dict[str, Any], ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Parsed:
    format: str
    cues: list[Cue]
    language: str = ""
    title: str = ""
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- decoding

_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def decode(data: bytes) -> str:
    """UTF-8 text (with or without a BOM) or UTF-16 with a BOM, newlines as ``\\n``."""
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom):], name
            break
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "utf-8":
            line = data.count(b"\n", 0, exc.start) + 1
            bad = data[exc.start:exc.start + 1].hex()
            raise ImportProblem(
                line,
                f"the file is not UTF-8 text (byte 0x{bad} cannot be decoded; GBK or Big5 "
                "files must be saved as UTF-8 first)",
            ) from None
        line = data[:exc.start].decode(encoding, errors="replace").count("\n") + 1
        raise ImportProblem(line, f"the file is not valid {encoding.upper()} text") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ImportProblem(
            line, "the file contains NUL bytes: UTF-16 without a byte-order mark is not "
            "supported; save it as UTF-8",
        )
    text = text.removeprefix("\ufeff")  # a BOM written twice, or inside UTF-16
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_not_empty(text: str) -> None:
    if not text.strip():
        raise ImportProblem(1, "the file is empty; send an SRT, WebVTT or Sourcebook JSON "
                               "transcript with at least one cue")


def detect(content_type: str | None, text: str) -> str:
    """``srt``, ``vtt`` or ``json``: from the Content-Type, else from the content."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in CONTENT_TYPES:
        return CONTENT_TYPES[media]
    head = text.lstrip()
    if head.startswith("WEBVTT"):
        return "vtt"
    if head.startswith(("{", "[")):
        return "json"
    lines = [ln.strip() for ln in head.split("\n", 3)]
    if len(lines) >= 2 and lines[0].isdigit() and "-->" in lines[1]:
        return "srt"
    raise UnknownFormat(
        f"Cannot tell the transcript format (Content-Type {media or 'missing'}). Send SRT "
        "(text/srt or application/x-subrip), WebVTT (text/vtt) or Sourcebook JSON "
        "(application/json)."
    )


def parse(data: bytes, content_type: str | None = None, *,
          known_speakers: Iterable[str] = ()) -> Parsed:
    """Decode, detect and parse a transcript body; raises ImportProblem or UnknownFormat."""
    text = decode(data)
    _check_not_empty(text)
    fmt = detect(content_type, text)
    if fmt == "srt":
        return parse_srt(text, known_speakers=known_speakers)
    if fmt == "vtt":
        return parse_vtt(text, known_speakers=known_speakers)
    return parse_json(text)


# --------------------------------------------------------------------------- timing

_SRT_TIME = re.compile(r"(\d{1,3}):(\d{2}):(\d{2}),(\d{3})")
_VTT_TIME = re.compile(r"(?:(\d{1,3}):)?(\d{2}):(\d{2})\.(\d{3})")


def _ms(match: re.Match[str], raw: str, line: int) -> int:
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    if minutes > 59 or seconds > 59:
        raise ImportProblem(line, f"bad timestamp {raw!r}: minutes and seconds must be 00-59")
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis


def _timing(line_text: str, line: int, *, vtt: bool) -> tuple[int, int]:
    pattern, example = (_VTT_TIME, "00:01:02.500") if vtt else (_SRT_TIME, "00:01:02,500")
    parts = line_text.split("-->")
    if len(parts) != 2:
        raise ImportProblem(line, f"expected a timing line such as '{example} --> "
                                  f"00:01:04.000', found {line_text[:80]!r}")
    left = parts[0].strip()
    right_fields = parts[1].split()
    right = right_fields[0] if right_fields else ""
    if not vtt and len(right_fields) > 1 and not all(":" in f for f in right_fields[1:]):
        raise ImportProblem(line, f"unexpected text after the end time: {line_text[:80]!r}")
    times: list[int] = []
    for raw in (left, right):
        m = pattern.fullmatch(raw)
        if m is None:
            raise ImportProblem(line, f"bad timestamp {raw[:40]!r}; expected the form {example}")
        times.append(_ms(m, raw, line))
    start, end = times
    if end <= start:
        raise ImportProblem(line, f"the cue ends ({right}) at or before it starts ({left})")
    return start, end


def _check_order(cues: Sequence[Cue]) -> None:
    for prev, cue in itertools.pairwise(cues):
        if cue.start < prev.end:
            raise ImportProblem(
                cue.line,
                f"this cue starts at {cue.start:.3f}s, before the previous cue (line "
                f"{prev.line}) ends at {prev.end:.3f}s: cues must be in order and must not "
                "overlap",
            )


# --------------------------------------------------------------------------- speakers

_PREFIX = re.compile(r"(?P<name>[^\s:：][^:：]{0,49}?)\s*[:：]\s*(?P<rest>\S.*)", re.DOTALL)
_NOT_IN_NAMES = frozenset("，。,.!?！？;；\"“”「」()（）[]【】<>《》")
_LABEL = re.compile(r"SPEAKER_\d+")


def _prefix(text: str) -> tuple[str, str] | None:
    m = _PREFIX.fullmatch(text)
    if m is None:
        return None
    name = m.group("name").strip()
    if (name.count(" ") > 3 or any(ch in _NOT_IN_NAMES for ch in name)
            or name.replace(" ", "").isdigit()):
        return None
    return name, m.group("rest").strip()


def _attribute(raw: list[tuple[str, str, int, int, int]], known: Iterable[str],
               ) -> list[Cue]:
    """Cues from (voice, text, start, end, line), with ``Name:`` prefixes resolved.

    A prefix is taken as a speaker only if it is a known name or label, looks like a
    diarization label, starts at least two cues, or most cues have a prefix: "他说：…"
    once in a talk is text.
    A cue without a speaker continues the previous speaker's turn, as published
    transcripts name the speaker only when it changes.
    """
    known_set = set(known)
    counts: dict[str, int] = {}
    for voice, text, *_ in raw:
        if not voice and (p := _prefix(text)):
            counts[p[0]] = counts.get(p[0], 0) + 1
    # In a file where most cues start with "Name:", every such prefix is a speaker, even
    # one who speaks once (our own SRT export writes one on every cue).
    prefixed = 2 * sum(counts.values()) >= len(raw)
    cues: list[Cue] = []
    current = ""
    for voice, text, start, end, line in raw:
        speaker, body = voice, text
        if not voice and (p := _prefix(text)):
            name, rest = p
            if prefixed or counts[name] >= 2 or name in known_set or _LABEL.fullmatch(name):
                speaker, body = name, rest
        if speaker:
            if len(speaker) > MAX_SPEAKER_CHARS:
                raise ImportProblem(line, f"speaker name longer than {MAX_SPEAKER_CHARS} "
                                          "characters")
            current = speaker
        cues.append(Cue(start=start / 1000, end=end / 1000, text=body, speaker=current,
                        line=line))
    return cues


# --------------------------------------------------------------------------- SRT

def parse_srt(text: str, *, known_speakers: Iterable[str] = ()) -> Parsed:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, text, blank line."""
    _check_not_empty(text)
    lines = text.split("\n")
    raw: list[tuple[str, str, int, int, int]] = []
    i, n = 0, len(lines)
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        number_line = i + 1
        if not lines[i].strip().isdigit():
            raise ImportProblem(number_line, f"expected a cue number, found {lines[i][:80]!r}")
        i += 1
        if i >= n or not lines[i].strip():
            raise ImportProblem(i + 1, "expected a timing line after the cue number")
        start, end = _timing(lines[i].strip(), i + 1, vtt=False)
        timing_line = i + 1
        i += 1
        body: list[str] = []
        while i < n and lines[i].strip():
            if "-->" in lines[i]:
                raise ImportProblem(i + 1, "a timing line inside cue text: a blank line is "
                                           "missing before the cue number above it")
            body.append(lines[i])
            i += 1
        if not body:
            raise ImportProblem(timing_line, "the cue has no text")
        raw.append(("", join_tokens(body), start, end, number_line))
    if not raw:
        raise ImportProblem(1, "no cues found")
    cues = _attribute(raw, known_speakers)
    _check_order(cues)
    return Parsed(format="srt", cues=cues)


# --------------------------------------------------------------------------- WebVTT

_VOICE = re.compile(r"<v(?:\.[^\s>]*)?(?:[ \t]+([^>]*))?>")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>|<\d[\d:.]*>")


def _vtt_text(lines: Sequence[str]) -> tuple[str, str]:
    """(voice, plain text) of a cue's payload: tags stripped, entities unescaped."""
    joined = "\n".join(lines)
    voice_match = _VOICE.search(joined)
    voice = html.unescape(voice_match.group(1) or "").strip() if voice_match else ""
    plain = [html.unescape(_TAG.sub("", ln)) for ln in lines]
    return " ".join(voice.split()), join_tokens(plain)


def parse_vtt(text: str, *, known_speakers: Iterable[str] = ()) -> Parsed:
    """WebVTT: the ``WEBVTT`` header, then cues (optional id, timing, payload)."""
    _check_not_empty(text)
    lines = text.split("\n")
    first = lines[0].lstrip("\ufeff")
    if not (first == "WEBVTT" or first.startswith(("WEBVTT ", "WEBVTT\t"))):
        raise ImportProblem(1, "a WebVTT file must start with the line 'WEBVTT'")
    i, n = 1, len(lines)
    while i < n and lines[i].strip():  # header lines (Kind:, Language: ...)
        if "-->" in lines[i]:
            raise ImportProblem(i + 1, "a blank line is missing after the WEBVTT header")
        i += 1
    raw: list[tuple[str, str, int, int, int]] = []
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        block_start = i
        block: list[str] = []
        while i < n and lines[i].strip():
            block.append(lines[i])
            i += 1
        head = block[0].strip()
        if head.split(maxsplit=1)[0] in ("NOTE", "STYLE", "REGION") and "-->" not in head:
            continue
        timing_at = 0 if "-->" in block[0] else 1
        if timing_at >= len(block) or "-->" not in block[timing_at]:
            raise ImportProblem(block_start + timing_at + 1 if timing_at < len(block)
                                else block_start + 1,
                                f"expected a timing line such as '00:01:02.500 --> "
                                f"00:01:04.000' after the cue id {head[:60]!r}")
        line = block_start + timing_at + 1
        start, end = _timing(block[timing_at].strip(), line, vtt=True)
        payload = block[timing_at + 1:]
        for k, ln in enumerate(payload):
            if "-->" in ln:
                raise ImportProblem(line + 1 + k, "a timing line inside cue text: a blank "
                                                  "line is missing before it")
        voice, plain = _vtt_text(payload)
        if not plain.strip():
            raise ImportProblem(line, "the cue has no text")
        raw.append((voice, plain, start, end, line))
    if not raw:
        raise ImportProblem(len(lines), "no cues found after the WEBVTT header")
    cues = _attribute(raw, known_speakers)
    _check_order(cues)
    return Parsed(format="vtt", cues=cues)


# --------------------------------------------------------------------------- JSON

_WS = re.compile(r"[ \t\n\r]*")


def _segment_line(text: str, index: int) -> int:
    """The line on which segment ``index`` starts (error paths only; 1 if unsure).

    The decoder keeps no positions, so the already valid document is walked again with
    ``raw_decode``, value by value, down to the ``segments`` array: it skips whole values
    with the C scanner, so a 20 MB body takes well under a second.
    """
    dec = json.JSONDecoder()

    def skip_ws(pos: int) -> int:
        match = _WS.match(text, pos)
        return match.end() if match else pos

    try:
        pos = skip_ws(0)
        if text[pos] != "{":
            return 1
        pos += 1
        while True:
            key, pos = dec.raw_decode(text, skip_ws(pos))
            pos = skip_ws(skip_ws(pos) + 1)  # past the ':'
            if key == "segments":
                break
            _, pos = dec.raw_decode(text, pos)
            pos = skip_ws(pos)
            if text[pos] != ",":
                return 1
            pos += 1
        if text[pos] != "[":
            return 1
        pos += 1
        for k in range(index + 1):
            pos = skip_ws(pos)
            if k == index:
                return text.count("\n", 0, pos) + 1
            _, pos = dec.raw_decode(text, pos)
            pos = skip_ws(pos)
            if text[pos] != ",":
                return 1
            pos += 1
    except (ValueError, IndexError):
        pass
    return 1


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_json(text: str) -> Parsed:
    """Sourcebook JSON, as ``GET …/transcript/export?format=json`` writes it."""
    _check_not_empty(text)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportProblem(exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})"
                            ) from None
    if not isinstance(body, dict) or body.get("format") != JSON_FORMAT:
        raise ImportProblem(1, f"not a Sourcebook transcript: the top level must be an object "
                               f"with \"format\": \"{JSON_FORMAT}\"")
    if body.get("version") != JSON_VERSION:
        raise ImportProblem(1, f"unsupported Sourcebook JSON version {body.get('version')!r}; "
                               f"this server reads version {JSON_VERSION}")
    segments = body.get("segments")
    if not isinstance(segments, list) or not segments:
        raise ImportProblem(1, "\"segments\" must be a non-empty list")
    cues: list[Cue] = []
    for i, seg in enumerate(segments):
        try:
            cues.append(_json_cue(seg, i))
        except _SegmentError as exc:
            raise ImportProblem(_segment_line(text, i), f"segment {i + 1}: {exc}") from None
    for k in range(1, len(cues)):
        if cues[k].start < cues[k - 1].end:
            raise ImportProblem(
                _segment_line(text, k),
                f"segment {k + 1} starts at {cues[k].start:.3f}s, before segment {k} ends at "
                f"{cues[k - 1].end:.3f}s: segments must be in order and must not overlap",
            )
    language = body.get("language")
    title = body.get("title")
    return Parsed(format="json", cues=cues, language=language if isinstance(language, str)
                  else "", title=title if isinstance(title, str) else "")


class _SegmentError(ValueError):
    pass


def _json_cue(seg: Any, index: int) -> Cue:
    if not isinstance(seg, dict):
        raise _SegmentError("each segment must be an object")
    start, end = _number(seg.get("start")), _number(seg.get("end"))
    if start is None or end is None or start < 0:
        raise _SegmentError("\"start\" and \"end\" must be numbers of seconds, start >= 0")
    if end < start:
        raise _SegmentError(f"ends ({end}) before it starts ({start})")
    text = seg.get("text")
    if not isinstance(text, str):
        raise _SegmentError("\"text\" must be a string")
    strings = {k: seg.get(k, "") for k in ("speaker", "label", "language")}
    for key, value in strings.items():
        if not isinstance(value, str):
            raise _SegmentError(f"\"{key}\" must be a string")
        if key != "language" and len(value) > MAX_SPEAKER_CHARS:
            raise _SegmentError(f"\"{key}\" is longer than {MAX_SPEAKER_CHARS} characters")
    person_id = seg.get("person_id")
    if person_id is not None and (isinstance(person_id, bool) or not isinstance(person_id, int)):
        raise _SegmentError("\"person_id\" must be an integer or null")
    words = seg.get("words", [])
    if not isinstance(words, list):
        raise _SegmentError("\"words\" must be a list")
    checked: list[dict[str, Any]] = []
    for k, w in enumerate(words):
        ws = _number(w.get("start")) if isinstance(w, dict) else None
        we = _number(w.get("end")) if isinstance(w, dict) else None
        if not isinstance(w, dict) or ws is None or we is None or we < ws \
                or not isinstance(w.get("text"), str):
            raise _SegmentError(f"word {k + 1} needs numeric start <= end and a text")
        prob = _number(w.get("probability", 1.0))
        checked.append({"start": ws, "end": we, "text": w["text"],
                        "probability": 1.0 if prob is None else prob})
    return Cue(
        start=round(start, 3), end=round(end, 3), text=text, speaker=strings["speaker"],
        label=strings["label"], person_id=person_id, language=strings["language"],
        words=tuple(checked), line=index,
    )
