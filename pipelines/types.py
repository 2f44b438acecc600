"""Frozen dataclasses exchanged between pipeline stages.

Times are seconds from the start of the normalised audio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

#: The one progress hook: ``progress(stage, fraction)`` with ``fraction`` in 0..1 (a
#: :class:`Stage`; "align" for :mod:`pipelines.align`, which is no stage of a run).
#: It may raise ``CancelledError`` to stop the run at that point.
ProgressCallback = Callable[[str, float], None]


class Stage(StrEnum):
    """The stages of a transcription run, in order. The values are what the API, the job
    table and the CLI show; ``store`` is the service's (the transcript written)."""

    normalise = "normalise"
    transcribe = "transcribe"
    diarize = "diarize"
    merge = "merge"
    store = "store"
    #: An "align" job's one stage: timing given text (corrections, imports) to the audio.
    align = "align"


#: Where a word's times come from:
#:
#: - ``asr``: the speech recogniser's own word timestamps;
#: - ``aligned``: a given text (a correction, an import) aligned to the audio by
#:   :mod:`pipelines.align`, with its checks passed;
#: - ``estimated``: spread over the segment by character share, because alignment
#:   failed or was not run. Such times say roughly where, never exactly where.
Timing = Literal["asr", "aligned", "estimated"]

#: Why an alignment fell back to estimates (see :class:`Alignment`).
AlignFailure = Literal[
    "empty",  # the text has no words
    "no_audio",  # the span lies outside the audio given
    "unsupported",  # the model cannot read this text (Chinese with an English-only model)
    "silence",  # no speech in the span
    "not_spoken",  # the model does not hear this text in the audio
    "degenerate",  # the alignment crammed the words together or outside the span
]


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What probing a media file found."""

    duration: float
    sample_rate: int
    channels: int
    codec: str
    format_name: str


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word (for Chinese usually one or a few characters)."""

    start: float
    end: float
    text: str
    probability: float
    #: The text before script normalisation (e.g. traditional characters), if it differed.
    original: str | None = None
    #: Where the times come from; see :data:`Timing`.
    timing: Timing = "asr"


@dataclass(frozen=True, slots=True)
class AsrSegment:
    """A segment as the ASR model produced it, before speaker assignment."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0


@dataclass(frozen=True, slots=True)
class Transcription:
    """The output of an ASR backend: the same shape for every backend."""

    language: str
    language_probability: float
    duration: float
    segments: tuple[AsrSegment, ...]
    backend: str
    model: str

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(w for s in self.segments for w in s.words)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    """A span of time in which one speaker talks."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True, slots=True)
class Diarization:
    """Who spoke when, plus one embedding per speaker label."""

    turns: tuple[SpeakerTurn, ...]
    embeddings: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(sorted({t.speaker for t in self.turns}))


@dataclass(frozen=True, slots=True)
class Segment:
    """A speaker-attributed run of words: what a transcript is made of."""

    start: float
    end: float
    speaker: str
    text: str
    language: str
    words: tuple[Word, ...]


@dataclass(frozen=True, slots=True)
class Alignment:
    """A given text timed against the audio of its span (:mod:`pipelines.align`).

    ``timing`` is "aligned" only when every word was aligned and passed the checks;
    otherwise it is "estimated", ``failure`` says which check failed and ``reason``
    says it in words, and the words that could not be aligned carry character-share
    estimates (``Word.timing == "estimated"``), never invented times.
    """

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    timing: Timing
    failure: AlignFailure | None = None
    reason: str | None = None
    #: Mean log-probability per text token of the text given the audio (None: not run).
    log_prob: float | None = None
    #: Seconds of speech voice activity detection found inside [start, end].
    speech: float = 0.0
