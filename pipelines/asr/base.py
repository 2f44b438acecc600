"""The ASR backend protocol, its options, and the clean-up every backend shares.

A backend is loaded once per worker process (``load_faster_whisper``,
``load_openai_whisper``) and then called with a 16 kHz mono float32 waveform; both
real backends and :class:`StaticAsrBackend` return the same :class:`Transcription`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pipelines.text import (
    asr_token,
    has_repetition_loop,
    is_hallucination,
    join_tokens,
    needs_space_between,
    normalise_for_match,
    to_simplified,
)
from pipelines.types import AsrSegment, ProgressCallback, Transcription, Word

__all__ = [
    "DEFAULT_ZH_PROMPT",
    "KEEP_SCRIPT_LANGUAGES",
    "AsrBackend",
    "AsrOptions",
    "StaticAsrBackend",
    "clean_transcription",
    "default_prompt",
    "segment_text",
]

#: The prompt used for Mandarin when the caller gives none. Whisper continues in the
#: script and punctuation of its prompt, so a short simplified sentence with full-width
#: punctuation keeps it from drifting into traditional characters.
DEFAULT_ZH_PROMPT = "以下是普通话的访谈记录，使用简体中文。"

#: Languages whose Han characters must not be folded to simplified script.
KEEP_SCRIPT_LANGUAGES = frozenset({"ja", "ko", "yue"})

Waveform = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AsrOptions:
    """How to transcribe: the same options mean the same thing for every backend.

    ``language`` is an ISO code ("zh", "en") or "auto" to detect it. ``vad`` skips
    non-speech (fewer hallucinations on silence, faster). ``initial_prompt`` biases
    spelling (names, terms); for "zh" a simplified-Chinese default is used if None.
    """

    language: str = "auto"
    beam_size: int = 5
    vad: bool = True
    initial_prompt: str | None = None
    word_timestamps: bool = True


@runtime_checkable
class AsrBackend(Protocol):
    """A loaded speech recogniser."""

    name: str
    model: str

    def transcribe(
        self,
        audio: Waveform,
        options: AsrOptions,
        progress: ProgressCallback | None = None,
    ) -> Transcription:
        """Transcribe 16 kHz mono float32 samples; ``progress("transcribe", f)`` may cancel."""
        ...


def default_prompt(options: AsrOptions) -> str | None:
    """The initial prompt to use: the caller's, else :data:`DEFAULT_ZH_PROMPT` for "zh"."""
    if options.initial_prompt:
        return options.initial_prompt
    if options.language == "zh":
        return DEFAULT_ZH_PROMPT
    return None


def segment_text(words: Sequence[Word], previous: str = "") -> str:
    """Segment text from its words, with Whisper's leading space where one is needed.

    ``Transcription.text`` concatenates segment texts, so a segment starts with a space
    exactly when it must be separated from the previous segment's text.
    """
    text = join_tokens(w.text for w in words)
    if previous and text and needs_space_between(previous.rstrip(), text):
        return " " + text
    return text


def _loop_free_words(words: list[Word], *, max_unit: int = 12, min_repeats: int = 4) -> list[Word]:
    """Drop the repeats of a word n-gram that occurs ``min_repeats`` or more times in a row.

    The first occurrence is kept: a loop usually starts with something really said.
    """
    keys = [normalise_for_match(w.text) for w in words]
    out: list[Word] = []
    i = 0
    n = len(words)
    while i < n:
        cut = False
        for unit in range(1, min(max_unit, (n - i) // min_repeats) + 1):
            # One-word units need more repeats: "no no no no" is real speech.
            need = min_repeats if unit > 1 else 3 * min_repeats
            pattern = keys[i : i + unit]
            if not all(pattern):
                continue
            reps = 1
            while keys[i + reps * unit : i + (reps + 1) * unit] == pattern:
                reps += 1
            if reps >= need:
                out.extend(words[i : i + unit])
                i += reps * unit
                cut = True
                break
        if not cut:
            out.append(words[i])
            i += 1
    return out


def _simplify_word(w: Word) -> Word:
    simplified = to_simplified(w.text)
    if simplified == w.text:
        return w
    return replace(w, text=simplified, original=w.original or w.text)


def clean_transcription(
    transcription: Transcription,
    *,
    language: str | None = None,
    simplify: bool | None = None,
    prompt: str | None = None,
) -> Transcription:
    """Shared post-processing of every backend's raw output.

    - drops segments that are Whisper's inventions on silence (:func:`is_hallucination`)
      or empty;
    - cuts repetition loops: repeated word n-grams inside a segment lose their repeats,
      a loop segment without words is dropped, and the same text in three or more
      consecutive segments is kept once;
    - folds traditional characters to simplified (keeping the original in
      ``Word.original``) unless the language is one of :data:`KEEP_SCRIPT_LANGUAGES`
      (``simplify`` overrides);
    - drops segments that merely repeat the initial ``prompt`` (Whisper echoes its
      prompt on audio it cannot make out);
    - puts word text in canonical form (:func:`asr_token`) and rebuilds segment text
      from the words;
    - sets ``language`` to the requested language when it is not "auto".
    """
    lang = transcription.language
    if language and language != "auto":
        lang = language
    if simplify is None:
        simplify = lang not in KEEP_SCRIPT_LANGUAGES

    prompt_key = normalise_for_match(prompt or "")
    segments: list[AsrSegment] = []
    keys: list[str] = []
    previous_text = ""
    for seg in transcription.segments:
        words = [replace(w, text=asr_token(w.text)) for w in seg.words]
        words = [w for w in words if w.text]
        if simplify:
            words = [_simplify_word(w) for w in words]
        raw = seg.text if not simplify else to_simplified(seg.text)
        if is_hallucination(raw):
            continue
        if words:
            if has_repetition_loop(join_tokens(w.text for w in words)):
                words = _loop_free_words(words)
            text = segment_text(words, previous_text)
            start, end = min(seg.start, words[0].start), max(seg.end, words[-1].end)
        else:
            if has_repetition_loop(raw):
                continue
            text = raw.strip()
            if previous_text and text and needs_space_between(previous_text.rstrip(), text):
                text = " " + text
            start, end = seg.start, seg.end
        key = normalise_for_match(text)
        if not key or _is_prompt_echo(key, prompt_key):
            continue
        keys.append(key)
        segments.append(replace(seg, start=start, end=end, text=text, words=tuple(words)))
        previous_text = text
    return replace(transcription, language=lang, segments=_drop_repeated_segments(segments, keys))


def _is_prompt_echo(key: str, prompt_key: str) -> bool:
    """True if a segment's normalised text is a piece of the prompt or starts like it."""
    if not prompt_key:
        return False
    if len(key) >= 4 and key in prompt_key:
        return True
    # "以下是与闫俊杰、贠烨祎、贠烨祎…": the prompt's opening followed by a loop of names.
    return len(prompt_key) >= 6 and key.startswith(prompt_key[:6])


def _drop_repeated_segments(
    segments: list[AsrSegment], keys: list[str], min_run: int = 3
) -> tuple[AsrSegment, ...]:
    """Keep one of ``min_run`` or more consecutive segments with the same text.

    Base models loop across segments ("I don't hear that in New Jersey now" again and
    again); two equal segments in a row ("Yes." "Yes.") are left alone.
    """
    out: list[AsrSegment] = []
    i = 0
    while i < len(segments):
        j = i + 1
        while j < len(segments) and keys[j] == keys[i]:
            j += 1
        out.extend(segments[i : i + 1] if j - i >= min_run else segments[i:j])
        i = j
    return tuple(out)


class StaticAsrBackend:
    """An in-memory backend returning a fixed transcription (for tests of later stages)."""

    name = "static"

    def __init__(self, transcription: Transcription, *, model: str = "static") -> None:
        self.transcription = transcription
        self.model = model
        self.calls: list[AsrOptions] = []

    def transcribe(
        self,
        audio: Waveform,
        options: AsrOptions,
        progress: ProgressCallback | None = None,
    ) -> Transcription:
        """Return the fixed transcription, cleaned like a real backend's output."""
        self.calls.append(options)
        if progress is not None:
            progress("transcribe", 0.0)
        result = clean_transcription(self.transcription, language=options.language)
        if progress is not None:
            progress("transcribe", 1.0)
        return result
