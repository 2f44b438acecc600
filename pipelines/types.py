"""Frozen dataclasses exchanged between pipeline stages.

Times are seconds from the start of the normalised audio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: The one progress hook: ``progress(stage, fraction)`` with ``fraction`` in 0..1.
#: It may raise ``CancelledError`` to stop the run at that point.
ProgressCallback = Callable[[str, float], None]

STAGES: tuple[str, ...] = ("normalise", "transcribe", "diarize", "merge", "store")


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
