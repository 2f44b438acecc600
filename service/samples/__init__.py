"""Sample material for a first hour with Sourcebook (``sourcebook samples DIR``).

Everything is real enough to go through the whole product, and made offline:

- ``call.wav``: pyannote.audio's two-speaker telephone call (30 s, English), shipped
  inside that package;
- ``mandarin.wav`` and ``interview.vtt``: a Mandarin dialogue of 20-30 s spoken by
  espeak-ng, and its published transcript as WebVTT with the times of the speech. The
  lines come from the seed podcast notes where they are present, else from the small
  notes of this package (``notes.md``);
- ``outline.md``: the seed book's outline, else this package's own (``outline.md``);
- ``draft.md``: a draft chapter that quotes both recordings, so verification finds
  its sources;
- ``release.pdf``: a one-page signed release for the consent record.

The seed documents are found through ``SOURCEBOOK_SEEDS_DIR`` (by default ``../shared/
seeds`` beside the project); without them the package's own material is used.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from service.samples.pdf import one_page_pdf
from service.samples.speech import Line, SpeechError, Spoken, require_tools, speak

__all__ = ["CALL_QUOTE", "FILES", "SampleError", "Written", "default_seeds_dir",
           "interview_lines", "outline_text", "write_samples"]

HERE = Path(__file__).resolve().parent
SEED_BOOK = "000_*.txt"
SEED_NOTES = "001_*.txt"

#: What the sample call says from 14.4 s to 17.8 s (pyannote's own reference, sample.stm).
CALL_QUOTE = (14.4, 17.8, "And I'm Sheila in Texas, originally from Chicago.")

#: The files written, in the order the walkthrough uses them.
FILES = ("call.wav", "mandarin.wav", "interview.vtt", "outline.md", "draft.md", "release.pdf")

_TURN = re.compile(r"^\*\*([^*：:\s]{1,20})\*\*\s*[：:]\s*(.+)$")
_SENTENCE = re.compile(r"[^。！？!?]+[。！？!?]?")
_DRAFT_HEADING = re.compile(r"^#{1,6}\s.*《")


class SampleError(RuntimeError):
    """The samples cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class Written:
    path: Path
    what: str


def default_seeds_dir() -> Path:
    """``../shared/seeds`` beside the project (used when SOURCEBOOK_SEEDS_DIR is unset)."""
    return HERE.parents[1].parent / "shared" / "seeds"


def _seed(seeds_dir: Path | None, pattern: str) -> Path | None:
    if seeds_dir is None or not seeds_dir.is_dir():
        return None
    found = sorted(seeds_dir.glob(pattern))
    return found[0] if found else None


def outline_text(seeds_dir: Path | None) -> tuple[str, str]:
    """(Markdown, where it came from): the seed book's outline, without the drafts after
    it, or this package's outline."""
    book = _seed(seeds_dir, SEED_BOOK)
    if book is None:
        return (HERE / "outline.md").read_text(encoding="utf-8"), "the project's own outline"
    lines = book.read_text(encoding="utf-8").splitlines()
    # The seed book is its outline followed by drafts that start with the book title again.
    titled = [i for i, line in enumerate(lines) if _DRAFT_HEADING.match(line)]
    end = titled[1] if len(titled) > 1 else len(lines)
    body = "\n".join(lines[:end]).rstrip()
    return body.removesuffix("---").rstrip() + "\n", f"the seed book's outline ({book.name})"


def interview_lines(seeds_dir: Path | None) -> tuple[list[Line], str]:
    """Lines of the interview notes (``**Name**：text``), first sentence of each turn."""
    notes = _seed(seeds_dir, SEED_NOTES)
    source = notes if notes is not None else HERE / "notes.md"
    lines: list[Line] = []
    for raw in source.read_text(encoding="utf-8").splitlines():
        m = _TURN.match(raw.strip())
        if not m:
            continue
        text = m.group(2).replace("**", "").strip()
        first = next((s.strip() for s in _SENTENCE.findall(text) if s.strip()), "")
        # A spoken line of 8-32 characters: long enough to quote, short enough that
        # three of them fit in the clip.
        if 8 <= len(first) <= 32:
            lines.append(Line(m.group(1), first))
    where = f"the seed podcast notes ({notes.name})" if notes else "the project's own notes"
    return lines, where


def _timestamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _vtt(spoken: list[Spoken]) -> str:
    cues = [f"{i}\n{_timestamp(s.start)} --> {_timestamp(s.end)}\n<v {s.speaker}>{s.text}\n"
            for i, s in enumerate(spoken, start=1)]
    return "WEBVTT\n\n" + "\n".join(cues)


def _draft(spoken: list[Spoken]) -> str:
    question = spoken[0]
    answer = next((s for s in spoken if s.speaker != question.speaker), spoken[-1])
    return (
        "# 第一章 一通电话（草稿）\n\n"
        "这一章从两段录音写起。第一段是一通电话：两位陌生人在线上相遇，"
        "其中一位这样介绍自己：\n\n"
        f"> {CALL_QUOTE[2]}\n\n"
        f"第二段是一次中文访谈。{question.speaker}问：“{question.text}”\n\n"
        f"{answer.speaker}的回答是：“{answer.text}”\n\n"
        "这两句话都能在录音里找到，核对时会标出它们的出处。\n"
    )


def _release() -> bytes:
    return one_page_pdf("Release and consent to quote", [
        "I agree that the recording of my interview, its transcript and quotations",
        "from it may be used in the book, on the record and attributed to me by name.",
        "I may withdraw this consent in writing before the book goes to print.",
        "",
        "Signed: ______________________        Date: 2025-03-01",
        "",
        "(Sample document written by `sourcebook samples`.)",
    ])


def _pyannote_sample() -> Path:
    spec = importlib.util.find_spec("pyannote.audio")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "sample" / "sample.wav"
        if path.is_file():
            return path
    raise SampleError("pyannote.audio's sample call is missing; run `make setup` to install "
                      "pyannote.audio into .venv")


def write_samples(out_dir: Path, *, seeds_dir: Path | None, force: bool = False,
                  ) -> list[Written]:
    """Write every sample file into ``out_dir``; refuses to replace files unless ``force``."""
    targets = [out_dir / name for name in FILES]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise SampleError(f"{', '.join(p.name for p in existing)} already "
                          f"{'exists' if len(existing) == 1 else 'exist'} in {out_dir}; pass "
                          "--force to overwrite them, or choose another folder")
    call = _pyannote_sample()
    try:
        require_tools()  # before anything is written: no half set of samples
    except SpeechError as exc:
        raise SampleError(str(exc)) from None
    lines, notes_from = interview_lines(seeds_dir)
    if len({line.speaker for line in lines}) < 2:
        raise SampleError(f"{notes_from} hold fewer than two speakers' lines")
    outline, outline_from = outline_text(seeds_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Written] = []

    shutil.copyfile(call, out_dir / "call.wav")
    written.append(Written(out_dir / "call.wav",
                           "a telephone call, two speakers, 30 s, English (pyannote.audio's "
                           f"sample); {CALL_QUOTE[0]}-{CALL_QUOTE[1]} s: {CALL_QUOTE[2]!r}"))
    try:
        spoken = speak(lines, out_dir / "mandarin.wav")
    except SpeechError as exc:
        raise SampleError(str(exc)) from None
    if len(spoken) < 2:
        raise SampleError(f"{notes_from} hold too few lines short enough for a 30 s clip")
    speakers = "、".join(dict.fromkeys(s.speaker for s in spoken))
    written.append(Written(out_dir / "mandarin.wav",
                           f"a Mandarin dialogue, {spoken[-1].end:.1f} s, {speakers} "
                           f"(espeak-ng, lines from {notes_from})"))
    (out_dir / "interview.vtt").write_text(_vtt(spoken), encoding="utf-8")
    written.append(Written(out_dir / "interview.vtt",
                           f"its published transcript as WebVTT, {len(spoken)} cues"))
    (out_dir / "outline.md").write_text(outline, encoding="utf-8")
    written.append(Written(out_dir / "outline.md", f"the book outline: {outline_from}"))
    (out_dir / "draft.md").write_text(_draft(spoken), encoding="utf-8")
    written.append(Written(out_dir / "draft.md",
                           "a draft chapter quoting both recordings"))
    (out_dir / "release.pdf").write_bytes(_release())
    written.append(Written(out_dir / "release.pdf", "a one-page signed release (PDF)"))
    return written
