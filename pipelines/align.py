"""Forced alignment: time a GIVEN text (a correction, an imported cue) against its audio.

Whisper's cross-attention, in the heads known to follow the audio (the model's
``alignment_heads``), is read while the decoder is fed the given text; dynamic time
warping over those attention weights gives each text token the frames it was spoken
in (20 ms resolution). faster-whisper (``ctranslate2.models.Whisper.align``) and
openai-whisper (``whisper.timing.find_alignment``) both do this for their own word
timestamps; here the same machinery is fed a text the model did not produce. No new
weights: the aligner wraps the Whisper model the worker already loaded for ASR.

::

    aligner = Aligner.for_backend(models.asr("faster-whisper", "base", "int8")[0])
    result = aligner.align(window, "我们很早就决定做 MoE 架构。", start=12.3, end=17.9,
                           offset=window_start)
    result.timing      # "aligned" or "estimated"
    result.words       # frozen Words, absolute times, one per CJK character

Words are the product's words (:func:`pipelines.text.word_spans`): one per CJK
character, Latin words whole, punctuation attached to the word before. A Whisper
token covering several characters ("我们") is shared between them by character count;
a word's time runs from its first pronounced character to its last, so punctuation
(which often soaks up a pause in the attention) never stretches a word.

It says when it fails and never invents times. Each span is checked:

- ``silence``: voice activity detection (Silero, shipped with faster-whisper) finds
  (almost) no speech inside the span;
- ``not_spoken``: the text is unlikely given the audio: the mean log-probability per
  token of the text, given the audio, under the model (teacher forcing) is below
  :attr:`AlignSettings.min_log_prob` (-3.0; -3.8 for Chinese). Measured with tiny.en
  and base (bench/RESULTS.md, "Alignment"): right English text -0.04..-2.5 (human
  reference cues included), right Chinese text -0.3..-3.3 (a synthetic voice
  included); another segment's text, or half of it replaced, -3.75..-5.5; unrelated
  or other-language text -4.7..-10.6;
- ``degenerate``: the words came out crammed (more than 15 words a second), mostly
  zero-length, outside their own span in a shared window, or the text is longer than
  Whisper reads at once (440 tokens in 30 s);
- ``unsupported``: Chinese text and an English-only model;
- ``no_audio``, ``empty``: the span is not in the audio given, the text has no words.

A failed span keeps its words spread over the span by character share
(:func:`estimate_words`, the service's rule for corrections), flagged ``estimated``.

Where the times come from, and their limits:

- The warping path must start on the window's first frame and end on its last, so
  speech in a margin that is not in the text pulls the first (last) words towards it.
  Margins are therefore cut at the pause before (after) the span; where speech runs
  through the span's edge there is no pause, and the span's own edge (the ASR's or
  the cue's) bounds the window instead. The first spoken token's start is then capped
  at twice the median token duration before its end and moved to the speech onset.
- Word edges that fall in non-speech are moved onto the speech inside the word.
- Whisper reads 30 s at a time. Spans up to 30 s with their margins are aligned in
  one window; consecutive spans of one language (an import's cues) share a window
  when they fit (one encoder pass per ~30 s of audio); a longer span is aligned in
  consecutive windows: the words expected in a window are estimated from the share of
  the remaining text over the remaining *speech* (VAD), aligned, the words that end
  before the window's last 4 s are kept and the next window starts after them. A
  window that fails leaves its words estimated (the span is then "estimated") and the
  next one carries on from where they were expected to end.
- The times are as good as the model's attention: 20 ms frames; for base and tiny
  models the median distance to the ASR's own word starts is 10-20 ms, p95 about
  120 ms (80-90 ms with Whisper's full 30 s context, :attr:`AlignSettings.min_context`,
  at four times the CPU); against true turn starts and ends (the mixed fixture) the
  median is 35-40 ms, p95 about 100 ms (bench/RESULTS.md).
- Tokenisation is Whisper's own BPE (tiktoken, from openai-whisper's assets), not the
  CTranslate2 model's ``tokenizer.json``, whose merges differ for multilingual models.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pipelines.errors import ModelError
from pipelines.text import WordSpan, is_cjk, is_spoken, needs_space_between, word_spans
from pipelines.types import AlignFailure, Alignment, ProgressCallback, Word

__all__ = [
    "AUDIO_MARGIN",
    "DEFAULT_MARGIN",
    "MAX_WINDOW",
    "AlignSettings",
    "AlignSpan",
    "Aligner",
    "align_language",
    "estimate_words",
    "load_aligner",
    "window_bounds",
]

SAMPLE_RATE = 16_000
#: Whisper's context: the most audio one alignment window may hold, in seconds.
MAX_WINDOW = 30.0
#: Audio taken on each side of a span, so words that were cut by the segment boundary
#: (or only moved a little in a correction) still find their sound.
DEFAULT_MARGIN = 0.75
#: Audio beyond the margins that voice activity detection looks at for context.
VAD_CONTEXT = 2.0
#: Audio to give :meth:`Aligner.align` on each side of a span (:func:`window_bounds`).
AUDIO_MARGIN = DEFAULT_MARGIN + VAD_CONTEXT
#: Seconds at the end of a window of a long span whose words are left to the next window.
_LONG_TAIL = 4.0
#: Text tokens Whisper's decoder reads at once (448 positions, less the start sequence).
MAX_TEXT_TOKENS = 440
#: How far (seconds) a text's last word may be carried to the end of its speech.
_END_REACH = 0.6
#: Padding voice activity detection puts around speech (seconds).
_VAD_PAD = 0.1
#: Encoder frames per second (10 ms mel hop, stride-2 convolution).
_FRAMES_PER_SECOND = 50

Waveform = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class AlignSpan:
    """One text to time, with the span (absolute seconds) it belongs to."""

    text: str
    start: float
    end: float
    #: "zh", "en", ... or "auto"; the text's script decides where they disagree.
    language: str = "auto"


@dataclass(frozen=True)
class AlignSettings:
    """Thresholds of the checks; the defaults are the measured ones (bench/align.py)."""

    margin: float = DEFAULT_MARGIN
    #: Below this mean log-probability per token the text is "not spoken" ...
    min_log_prob: float = -3.0
    #: ... and this for Chinese/Japanese text: one token per character, and homophones
    #: the audio cannot tell apart, make correct text less likely token by token.
    min_log_prob_cjk: float = -3.8
    #: Less speech than this inside a span (seconds) is "silence" ...
    min_speech: float = 0.12
    #: ... or less than this share of the span when it is short.
    min_speech_share: float = 0.25
    #: More pronounced words per second than this is "degenerate" (crammed).
    max_words_per_second: float = 15.0
    #: A joint window (imports) is not stretched over a gap longer than this.
    max_gap: float = 3.0
    #: Move word edges that fall in non-speech onto the nearest speech edge inside them.
    snap_to_speech: bool = True
    #: Cut a margin at the pause before (after) the span, or close to the span where
    #: speech runs through it: speech in the window that is not in the text pulls the
    #: first (last) words towards it.
    trim_margins: bool = True
    #: Seconds of audio the encoder reads at least (faster-whisper only): a window is
    #: padded to this rather than to Whisper's 30 s. A 10 s segment then costs a
    #: quarter of the CPU; word starts move a little (p95 0.12 s instead of 0.08-0.09 s
    #: against the ASR's, bench/RESULTS.md). 30 restores Whisper's own context.
    min_context: float = 10.0
    #: Voice activity threshold (Silero) for the silence check and the snapping.
    vad_threshold: float = 0.35


class _Engine(Protocol):
    """What an ASR backend's model must offer for alignment."""

    name: str
    multilingual: bool

    def tokens(self, text: str) -> tuple[list[int], list[bytes]]: ...

    def supports(self, language: str) -> bool: ...

    def encode(self, audio: Waveform, min_seconds: float) -> Any: ...

    def align(
        self, state: Any, language: str, tokens: list[int]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...


# ----------------------------------------------------------------------------- estimates


def estimate_words(text: str, start: float, end: float) -> tuple[Word, ...]:
    """Words of ``text`` spread over [start, end] in proportion to their lengths.

    The fallback wherever times cannot be measured: each word gets the share of the
    span its character count is of the whole text. Times are rounded to milliseconds;
    probability is 1.0 (a person typed the text) and timing "estimated".
    """
    spans = word_spans(text)
    total = sum(len(w.text) for w in spans)
    if not total:
        return ()
    length = max(0.0, end - start)
    words: list[Word] = []
    done = 0
    for w in spans:
        w_start = start + length * done / total
        done += len(w.text)
        words.append(
            Word(
                start=round(w_start, 3),
                end=round(start + length * done / total, 3),
                text=w.text,
                probability=1.0,
                timing="estimated",
            )
        )
    return tuple(words)


def window_bounds(
    start: float, end: float, duration: float, margin: float = AUDIO_MARGIN
) -> tuple[float, float]:
    """The audio to cut for aligning [start, end]: the span plus ``margin`` each side,
    clipped to the recording [0, duration]. The default gives the alignment its margin
    and voice activity detection its context."""
    return max(0.0, start - margin), min(duration, max(end + margin, start))


def align_language(text: str, hint: str = "auto", *, multilingual: bool = True) -> str | None:
    """The Whisper language to align ``text`` in; None if the model cannot read it.

    The text's script wins over the hint: Chinese characters are aligned as "zh" (kana
    as "ja"), even in a recording marked English, and Latin-only text as "en" unless
    the hint names another language written in Latin script (a segment of English
    inside a Mandarin interview is aligned as English). An English-only model reads
    only Latin text.
    """
    if any(is_cjk(ch) for ch in text):
        language = "ja" if any("\u3040" <= ch <= "\u30ff" for ch in text) else "zh"
    elif hint in ("auto", "", "zh", "ja", "yue"):
        language = "en"
    else:
        language = hint
    if not multilingual:
        return "en" if language == "en" else None
    return language


# ----------------------------------------------------------------------------- engines


#: Whisper's pre-tokenisation pattern (GPT-2's), as openai-whisper builds its encoding.
_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@lru_cache(maxsize=2)
def _encoding(multilingual: bool) -> Any:
    """Whisper's text BPE (tiktoken, from openai-whisper's assets) without importing torch.

    Not the ``tokenizer.json`` of the CTranslate2 model: for the multilingual models
    its merges differ from the ones Whisper was trained with (" there" becomes " " +
    "there"), and the model finds such token sequences very unlikely (log-probability
    -14 for the lone space), which would read as "not spoken". Token ids are the same
    in both, so the ids work for either backend.
    """
    import base64
    import importlib.util

    import tiktoken

    spec = importlib.util.find_spec("whisper")
    if spec is None or spec.origin is None:
        raise ModelError("openai-whisper is not installed; its tokenizer files are needed")
    name = "multilingual" if multilingual else "gpt2"
    path = Path(spec.origin).parent / "assets" / f"{name}.tiktoken"
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in path.read_text().splitlines() if line)
    }
    return tiktoken.Encoding(
        name=f"sourcebook-{name}", pat_str=_PAT, mergeable_ranks=ranks, special_tokens={}
    )


def _tokens(text: str, multilingual: bool) -> tuple[list[int], list[bytes]]:
    enc = _encoding(multilingual)
    ids = [int(i) for i in enc.encode_ordinary(text)]
    return ids, [enc.decode_single_token_bytes(i) for i in ids]


def _jump_times(
    text_indices: npt.NDArray[np.int64], time_indices: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Seconds at which the warping path enters each text row (one per token, plus EOT)."""
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    return np.asarray(time_indices[jumps], dtype=np.float64) / _FRAMES_PER_SECOND


class _CT2Engine:
    """faster-whisper / CTranslate2: ``Whisper.align`` on an encoder output kept per window."""

    name = "faster-whisper"

    def __init__(self, model: Any) -> None:
        self._model = model
        self.multilingual = bool(model.model.is_multilingual)
        self._tokenizers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _tokenizer(self, language: str) -> Any:
        with self._lock:
            if language not in self._tokenizers:
                from faster_whisper.tokenizer import Tokenizer

                self._tokenizers[language] = Tokenizer(
                    self._model.hf_tokenizer,
                    self.multilingual,
                    task="transcribe",
                    language=language if self.multilingual else None,
                )
            return self._tokenizers[language]

    def tokens(self, text: str) -> tuple[list[int], list[bytes]]:
        return _tokens(text, self.multilingual)

    def supports(self, language: str) -> bool:
        if not self.multilingual:
            return language == "en"
        return self._model.hf_tokenizer.token_to_id(f"<|{language}|>") is not None

    def encode(self, audio: Waveform, min_seconds: float) -> Any:
        from faster_whisper.audio import pad_or_trim

        features = self._model.feature_extractor(audio)
        frames = min(features.shape[-1] - 1, 3000)
        # CTranslate2 encodes any number of frames (the positional embedding is sliced):
        # padding a short window to min_seconds, not to 30 s, saves most of the encoder.
        padded = min(3000, max(round(min_seconds * 100), frames + frames % 2))
        encoded = self._model.encode(pad_or_trim(features[:, :frames], padded))
        return encoded, frames

    def align(
        self, state: Any, language: str, tokens: list[int]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        encoded, frames = state
        tok = self._tokenizer(language)
        result = self._model.model.align(
            encoded, list(tok.sot_sequence), [tokens], frames, median_filter_width=7
        )[0]
        pairs = np.asarray(result.alignments, dtype=np.int64).reshape(-1, 2)
        times = _jump_times(pairs[:, 0], pairs[:, 1])
        if len(times) < len(tokens) + 1:
            raise ModelError("CTranslate2 returned an alignment shorter than the text")
        probs = np.asarray(result.text_token_probs, dtype=np.float64)
        return times[: len(tokens)], times[1 : len(tokens) + 1], probs


class _PerTokenTokenizer:
    """Lets ``whisper.timing.find_alignment`` time every token on its own (not words)."""

    def __init__(self, tokenizer: Any) -> None:
        self.sot_sequence = tokenizer.sot_sequence
        self.no_timestamps = tokenizer.no_timestamps
        self.eot = tokenizer.eot

    @staticmethod
    def split_to_word_tokens(tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        return [str(t) for t in tokens], [[t] for t in tokens]


class _OpenAIEngine:
    """openai-whisper: ``whisper.timing.find_alignment`` with one "word" per token."""

    name = "openai-whisper"

    def __init__(self, model: Any) -> None:
        self._model = model
        self.multilingual = bool(model.is_multilingual)
        # find_alignment hooks the cross-attention modules of the shared model object;
        # two alignments at once in one process would read each other's weights.
        self._lock = threading.Lock()

    def _tokenizer(self, language: str) -> Any:
        from whisper.tokenizer import get_tokenizer

        return get_tokenizer(
            self.multilingual,
            num_languages=self._model.num_languages,
            language=language if self.multilingual else None,
            task="transcribe",
        )

    def tokens(self, text: str) -> tuple[list[int], list[bytes]]:
        return _tokens(text, self.multilingual)

    def supports(self, language: str) -> bool:
        if not self.multilingual:
            return language == "en"
        from whisper.tokenizer import LANGUAGES

        return language in list(LANGUAGES)[: self._model.num_languages]

    def encode(self, audio: Waveform, min_seconds: float) -> Any:
        # openai-whisper's encoder only takes Whisper's full 30 s: min_seconds is moot.
        import torch
        import whisper
        from whisper.audio import N_FRAMES, N_SAMPLES

        mel = whisper.log_mel_spectrogram(
            torch.from_numpy(np.ascontiguousarray(audio)),
            self._model.dims.n_mels,
            padding=N_SAMPLES,
        )
        frames = min(int(mel.shape[-1]) - N_FRAMES, N_FRAMES)
        return whisper.pad_or_trim(mel[:, :frames], N_FRAMES), frames

    def align(
        self, state: Any, language: str, tokens: list[int]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        from whisper.timing import find_alignment

        mel, frames = state
        proxy = _PerTokenTokenizer(self._tokenizer(language))
        with self._lock:
            timings = find_alignment(self._model, proxy, tokens, mel, frames, medfilt_width=7)
        if len(timings) != len(tokens):
            raise ModelError("openai-whisper returned an alignment shorter than the text")
        return (
            np.array([t.start for t in timings], dtype=np.float64),
            np.array([t.end for t in timings], dtype=np.float64),
            np.array([t.probability for t in timings], dtype=np.float64),
        )


# ----------------------------------------------------------------------------- voice activity


def _speech_regions(audio: Waveform, offset: float, threshold: float) -> list[tuple[float, float]]:
    """Speech in ``audio`` as absolute (start, end) seconds (Silero VAD, 0.1 s padding)."""
    if len(audio) < SAMPLE_RATE // 10:
        return []
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(
        audio,
        VadOptions(
            threshold=threshold,
            min_speech_duration_ms=60,
            min_silence_duration_ms=150,
            speech_pad_ms=round(_VAD_PAD * 1000),
        ),
        sampling_rate=SAMPLE_RATE,
    )
    return [
        (offset + c["start"] / SAMPLE_RATE, offset + c["end"] / SAMPLE_RATE) for c in chunks
    ]


def _speech_in(regions: Sequence[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(e, end) - max(s, start)) for s, e in regions)


def _trim_margins(
    w0: float, w1: float, start: float, end: float, regions: Sequence[tuple[float, float]]
) -> tuple[float, float]:
    """The window [w0, w1] around [start, end] with margins that hold no foreign speech.

    A margin ends at the last pause before the span (the first after it); where speech
    runs through the span's edge there is no pause to find, and the margin shrinks to
    0.1 s: the span's edge, from the ASR or the cue, is then the better guess.
    """
    pad = 0.1
    before = [e for s, e in regions if s <= w0 + 0.05 and e < start]
    through = [s for s, e in regions if s <= max(w0, start - pad) and e >= start]
    if through and through[0] <= w0 + 0.05:
        w0 = max(w0, start - pad)
    elif before:
        w0 = max(w0, min(before[-1], start - pad))
    after = [s for s, e in regions if e >= w1 - 0.05 and s > end]
    through = [e for s, e in regions if e >= min(w1, end + pad) and s <= end]
    if through and through[-1] >= w1 - 0.05:
        w1 = min(w1, end + pad)
    elif after:
        w1 = min(w1, max(after[0], end + pad))
    return w0, max(w1, w0)


def _snap(
    start: float, end: float, regions: Sequence[tuple[float, float]]
) -> tuple[float, float]:
    """Move a word's edges out of non-speech when speech lies inside the word."""
    inside = [(max(s, start), min(e, end)) for s, e in regions if s < end and e > start]
    if not inside:
        return start, end
    return inside[0][0], inside[-1][1]


# ----------------------------------------------------------------------------- the aligner


@dataclass
class _Piece:
    """The words of one span (or a part of a long span) to align in one window."""

    index: int  # into the caller's spans
    words: list[WordSpan]
    text: str
    start: float
    end: float
    language: str
    tokens: int = 0
    # Filled by the alignment:
    timed: list[Word] = field(default_factory=list)
    log_prob: float | None = None
    failure: AlignFailure | None = None
    reason: str | None = None


@dataclass
class _Outcome:
    """What one span came to: its words (some maybe estimated) and the first failure."""

    words: list[Word] = field(default_factory=list)
    failure: AlignFailure | None = None
    reason: str | None = None
    log_probs: list[tuple[float, int]] = field(default_factory=list)
    speech: float = 0.0


class Aligner:
    """Forced alignment with a loaded Whisper model; see the module docstring.

    Thread-safe: the faster-whisper engine can be called from several threads at once,
    the openai-whisper one serialises its alignments.
    """

    def __init__(self, engine: _Engine, model: str, settings: AlignSettings | None = None):
        self._engine = engine
        self.name = engine.name
        self.model = model
        self.settings = settings or AlignSettings()

    @classmethod
    def for_backend(cls, backend: Any, settings: AlignSettings | None = None) -> Aligner:
        """An aligner sharing the model of a loaded ASR backend (no second copy in memory).

        ``backend`` is what :func:`pipelines.asr.faster.load_faster_whisper` or
        :func:`pipelines.asr.openai.load_openai_whisper` returned (``ModelCache.asr``).
        """
        engine: _Engine
        if backend.name == "faster-whisper":
            engine = _CT2Engine(backend.whisper)
        elif backend.name == "openai-whisper":
            engine = _OpenAIEngine(backend.whisper)
        else:
            raise ModelError(
                f"cannot align with a {backend.name!r} backend: load faster-whisper or "
                "openai-whisper"
            )
        return cls(engine, str(backend.model), settings)

    def with_settings(self, settings: AlignSettings) -> Aligner:
        """The same model with other thresholds (no second copy in memory)."""
        return Aligner(self._engine, self.model, settings)

    @property
    def multilingual(self) -> bool:
        return self._engine.multilingual

    # ------------------------------------------------------------------ public calls

    def align(
        self,
        audio: Waveform,
        text: str,
        *,
        start: float,
        end: float,
        offset: float = 0.0,
        language: str = "auto",
    ) -> Alignment:
        """Time ``text``, said in [start, end], against ``audio``.

        ``audio`` is 16 kHz mono float32 whose first sample is at ``offset`` seconds of
        the recording: the span plus a margin (:func:`window_bounds`), or the whole
        recording. All times (arguments and result) are absolute seconds.
        """
        return self.align_spans(audio, [AlignSpan(text, start, end, language)], offset=offset)[0]

    def align_spans(
        self,
        audio: Waveform,
        spans: Sequence[AlignSpan],
        *,
        offset: float = 0.0,
        progress: ProgressCallback | None = None,
    ) -> list[Alignment]:
        """Time many spans of one recording (an import, cue by cue); one result per span.

        Consecutive spans in one language that fit in 30 s together are aligned in one
        window (one encoder pass): about one pass per 30 s of audio instead of one per
        cue. ``progress("align", fraction)`` is called after each window and may raise
        :class:`CancelledError`. Raises ValueError for a span that ends before it
        starts or has a time that is not a finite number.
        """
        for i, span in enumerate(spans):
            if not (math.isfinite(span.start) and math.isfinite(span.end)):
                raise ValueError(f"span {i} has a time that is not a number of seconds")
            if span.end < span.start:
                raise ValueError(
                    f"span {i} ends before it starts ({span.end:.3f} < {span.start:.3f} s)"
                )
        audio = np.asarray(audio, dtype=np.float32)
        audio_end = offset + len(audio) / SAMPLE_RATE
        outcomes = [_Outcome() for _ in spans]
        pieces: list[_Piece] = []
        for i, span in enumerate(spans):
            piece = self._piece(i, span, offset, audio_end)
            if isinstance(piece, _Piece):
                pieces.append(piece)
            else:
                outcomes[i] = piece
        pieces.sort(key=lambda p: (p.start, p.end))
        groups = self._groups(pieces, offset, audio_end)
        if progress is not None:
            progress("align", 0.0)
        for n, group in enumerate(groups):
            if len(group) == 1 and self._too_long(group[0], offset, audio_end):
                self._align_long(audio, offset, group[0], outcomes[group[0].index])
            else:
                self._align_group(audio, offset, group, outcomes)
            if progress is not None:
                progress("align", (n + 1) / len(groups))
        return [self._result(span, outcomes[i]) for i, span in enumerate(spans)]

    # ------------------------------------------------------------------ planning

    def _piece(
        self, index: int, span: AlignSpan, offset: float, audio_end: float
    ) -> _Piece | _Outcome:
        """The span ready to align, or (when it cannot be) its estimates and why."""
        words = word_spans(span.text)
        language = align_language(span.text, span.language, multilingual=self.multilingual)

        def unaligned(failure: AlignFailure, reason: str) -> _Outcome:
            return _Outcome(list(estimate_words(span.text, span.start, span.end)), failure,
                            reason)

        if not any(w.spoken for w in words):
            return unaligned("empty", "the text has no words to align")
        if language is None:
            return unaligned("unsupported", f"{self.model} is an English-only model; load a "
                             "multilingual Whisper model (base or larger) to align Chinese text")
        if not self._engine.supports(language):
            return unaligned("unsupported", f"{self.model} has no language {language!r}; give "
                             "the span's language as an ISO code Whisper knows, or 'auto'")
        if span.end <= offset or span.start >= audio_end:
            return unaligned("no_audio", f"the span {span.start:.2f}-{span.end:.2f} s is outside "
                             f"the audio given ({offset:.2f}-{audio_end:.2f} s)")
        tokens = len(self._engine.tokens(span.text)[0])
        return _Piece(index, words, span.text, span.start, span.end, language, tokens)

    def _window(
        self, start: float, end: float, offset: float, audio_end: float
    ) -> tuple[float, float]:
        margin = self.settings.margin
        return max(offset, start - margin), min(audio_end, end + margin)

    def _too_long(self, piece: _Piece, offset: float, audio_end: float) -> bool:
        w0, w1 = self._window(piece.start, piece.end, offset, audio_end)
        return w1 - w0 > MAX_WINDOW

    def _groups(self, pieces: list[_Piece], offset: float, audio_end: float) -> list[list[_Piece]]:
        """Consecutive pieces sharing one window: same language, in order, no long gap."""
        groups: list[list[_Piece]] = []
        for piece in pieces:
            if groups and not self._too_long(piece, offset, audio_end):
                group = groups[-1]
                last = group[-1]
                w0, _ = self._window(group[0].start, group[0].end, offset, audio_end)
                _, w1 = self._window(piece.start, piece.end, offset, audio_end)
                if (
                    w1 - w0 <= MAX_WINDOW
                    and sum(p.tokens for p in group) + piece.tokens <= MAX_TEXT_TOKENS
                    and piece.language == last.language
                    and last.end - 0.25 <= piece.start <= last.end + self.settings.max_gap
                    and not self._too_long(group[0], offset, audio_end)
                ):
                    group.append(piece)
                    continue
            groups.append([piece])
        return groups

    # ------------------------------------------------------------------ alignment

    def _vad(
        self, audio: Waveform, offset: float, w0: float, w1: float
    ) -> list[tuple[float, float]]:
        """Speech in [w0, w1], judged with up to :data:`VAD_CONTEXT` seconds around it
        (Silero misses the first words of a clip that starts on them)."""
        audio_end = offset + len(audio) / SAMPLE_RATE
        c0, c1 = max(offset, w0 - VAD_CONTEXT), min(audio_end, w1 + VAD_CONTEXT)
        regions = _speech_regions(self._cut(audio, offset, c0, c1), c0, self.settings.vad_threshold)
        return [(max(s, w0), min(e, w1)) for s, e in regions if e > w0 and s < w1]

    def _cut(self, audio: Waveform, offset: float, w0: float, w1: float) -> Waveform:
        a = max(0, round((w0 - offset) * SAMPLE_RATE))
        b = min(len(audio), round((w1 - offset) * SAMPLE_RATE))
        return audio[a:b]

    def _align_group(
        self, audio: Waveform, offset: float, group: list[_Piece], outcomes: list[_Outcome]
    ) -> None:
        audio_end = offset + len(audio) / SAMPLE_RATE
        w0, _ = self._window(group[0].start, group[0].end, offset, audio_end)
        _, w1 = self._window(group[-1].start, group[-1].end, offset, audio_end)
        regions = self._vad(audio, offset, w0, w1)
        if self.settings.trim_margins:
            w0, w1 = _trim_margins(w0, w1, group[0].start, group[-1].end, regions)
            regions = [(max(s, w0), min(e, w1)) for s, e in regions if e > w0 and s < w1]
        window = self._cut(audio, offset, w0, w1)
        todo: list[_Piece] = []
        for piece in group:
            speech = _speech_in(regions, piece.start, piece.end)
            outcomes[piece.index].speech += speech
            need = min(
                self.settings.min_speech,
                self.settings.min_speech_share * (piece.end - piece.start),
            )
            if speech < need or not regions:
                piece.failure = "silence"
                piece.reason = (
                    f"no speech in {piece.start:.2f}-{piece.end:.2f} s (voice activity "
                    f"{speech:.2f} s)"
                )
            else:
                todo.append(piece)
        if todo:
            state = self._engine.encode(window, self.settings.min_context)
            self._align_pieces(state, w0, w1, todo, regions)
            failed = [p for p in todo if p.failure in ("not_spoken", "degenerate")]
            # A text that is not in the audio pulls its neighbours in the joint
            # warping; align the rest again without it.
            if failed and len(failed) < len(todo):
                rest = [p for p in todo if p.failure is None]
                for p in rest:
                    p.timed, p.log_prob = [], None
                self._align_pieces(state, w0, w1, rest, regions)
        for piece in group:
            self._settle(piece, outcomes[piece.index])

    def _align_pieces(
        self,
        state: Any,
        w0: float,
        w1: float,
        pieces: list[_Piece],
        regions: list[tuple[float, float]],
    ) -> None:
        """Align the pieces' texts jointly in one window and check each piece."""
        model_text, where = _model_text(pieces)
        language = pieces[0].language
        tokens, pieces_bytes = self._engine.tokens(model_text)
        if len(tokens) > MAX_TEXT_TOKENS:
            for p in pieces:
                p.failure = "degenerate"
                p.reason = (
                    f"{len(tokens)} tokens of text for {w1 - w0:.1f} s of audio: more than "
                    "can be said in it"
                )
            return
        if b"".join(pieces_bytes) != model_text.encode("utf-8"):
            for p in pieces:
                p.failure, p.reason = "unsupported", "the tokenizer does not round-trip this text"
            return
        try:
            starts, ends, probs = self._engine.align(state, language, tokens)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ModelError(f"{self.name} failed while aligning: {exc}") from exc
        starts = starts + w0
        ends = ends + w0
        _fix_first_token(starts, ends, pieces_bytes, regions, w0, pieces[0].start)
        char_start, char_end, char_tokens = _char_times(model_text, pieces_bytes, starts, ends)
        log_probs = np.log(np.clip(probs, 1e-12, 1.0))
        for k, piece in enumerate(pieces):
            self._time_piece(piece, where[k], char_start, char_end, char_tokens, probs, log_probs,
                             regions, joint=len(pieces) > 1)

    def _time_piece(
        self,
        piece: _Piece,
        positions: list[int],
        char_start: npt.NDArray[np.float64],
        char_end: npt.NDArray[np.float64],
        char_tokens: list[list[int]],
        probs: npt.NDArray[np.float64],
        log_probs: npt.NDArray[np.float64],
        regions: list[tuple[float, float]],
        *,
        joint: bool,
    ) -> None:
        """Turn character times into the piece's words and run the checks on them."""
        settings = self.settings
        raw: list[tuple[float, float, float] | None] = []
        spoken_times: list[tuple[float, float]] = []
        piece_tokens: set[int] = set()
        for w in piece.words:
            idx = [positions[c] for c in w.spoken if positions[c] >= 0]
            toks = sorted({t for i in idx for t in char_tokens[i]})
            piece_tokens.update(toks)
            if idx and toks:
                s = float(min(char_start[i] for i in idx))
                e = float(max(char_end[i] for i in idx))
                raw.append((s, e, float(np.mean(probs[toks]))))
                spoken_times.append((s, e))
            else:
                raw.append(None)  # punctuation alone has no sound
        piece.log_prob = float(np.mean(log_probs[sorted(piece_tokens)])) if piece_tokens else None
        timed = _words(piece.words, raw, regions, snap=settings.snap_to_speech and bool(regions))
        piece.timed = timed

        n = len(spoken_times)
        span = max(e for _, e in spoken_times) - min(s for s, _ in spoken_times) if n else 0.0
        zero = sum(1 for s, e in spoken_times if e - s < 1e-6)
        lo, hi = piece.start - settings.margin - 0.05, piece.end + settings.margin + 0.05
        floor = (
            settings.min_log_prob_cjk
            if piece.language in ("zh", "ja", "yue")
            else settings.min_log_prob
        )
        if piece.log_prob is not None and piece.log_prob < floor:
            piece.failure = "not_spoken"
            piece.reason = (
                f"the text is not heard in {piece.start:.2f}-{piece.end:.2f} s (mean token "
                f"log-probability {piece.log_prob:.2f} < {floor:.2f})"
            )
        elif n >= 3 and (span <= 0 or n / span > settings.max_words_per_second):
            piece.failure = "degenerate"
            piece.reason = f"{n} words crammed into {span:.2f} s"
        elif n >= 3 and zero / n > 0.5:
            piece.failure = "degenerate"
            piece.reason = f"{zero} of {n} words got no time at all"
        elif joint and any(w.start < lo or w.end > hi for w in timed):
            piece.failure = "degenerate"
            piece.reason = "words were placed outside their span"

    def _settle(self, piece: _Piece, outcome: _Outcome) -> None:
        """Record a piece in its span's outcome: its aligned words, or estimates."""
        if piece.log_prob is not None:
            outcome.log_probs.append((piece.log_prob, max(1, len(piece.words))))
        if piece.failure is None and piece.timed:
            outcome.words.extend(piece.timed)
            return
        outcome.words.extend(estimate_words(piece.text, piece.start, piece.end))
        if outcome.failure is None:
            outcome.failure, outcome.reason = piece.failure, piece.reason

    def _align_long(
        self, audio: Waveform, offset: float, piece: _Piece, outcome: _Outcome
    ) -> None:
        """A span longer than one window, in consecutive windows.

        Each window starts where the last word kept from the one before ended, and
        holds the words expected (by share of the remaining speech) to be said before
        its last :data:`_LONG_TAIL` seconds. The warping stretches a window's last words
        over speech whose text is not in the window, so only the words that end before
        the tail are kept; the rest go to the next window.
        """
        audio_end = offset + len(audio) / SAMPLE_RATE
        w0_all, w1_all = self._window(piece.start, piece.end, offset, audio_end)
        regions = self._vad(audio, offset, w0_all, w1_all)
        outcome.speech += _speech_in(regions, piece.start, piece.end)
        words = piece.words
        cursor = w0_all
        i = 0
        while i < len(words):
            final = w1_all - cursor <= MAX_WINDOW
            w1 = w1_all if final else cursor + MAX_WINDOW
            rest = words[i:]
            if final:
                take, chunk_end = len(rest), piece.end
            else:
                limit = w1 - _LONG_TAIL - self.settings.margin
                take, chunk_end = _plan_chunk(rest, cursor, w1_all, limit, regions)
            chunk = rest[:take]
            text, chunk_words = _sub_text(piece.text, chunk)
            sub = _Piece(piece.index, chunk_words, text, max(cursor, piece.start),
                         max(cursor, min(chunk_end, piece.end)), piece.language)
            sub_regions = [(max(s, cursor), min(e, w1)) for s, e in regions
                           if s < w1 and e > cursor]
            if _speech_in(sub_regions, sub.start, sub.end) < self.settings.min_speech:
                sub.failure = "silence"
                sub.reason = f"no speech in {sub.start:.2f}-{sub.end:.2f} s"
            else:
                state = self._engine.encode(self._cut(audio, offset, cursor, w1),
                                            self.settings.min_context)
                self._align_pieces(state, cursor, w1, [sub], sub_regions)
            if sub.failure is None and not final:
                kept = sum(1 for w in sub.timed if w.end <= w1 - _LONG_TAIL) or 1
                sub.timed = sub.timed[:kept]
                sub.text, sub.words = _sub_text(piece.text, chunk[:kept])
                sub.end = sub.timed[-1].end
                cursor = max(cursor + 1.0, sub.timed[-1].end - 0.1)
            else:
                # Estimated (or final): the next window starts where these were expected
                # to end.
                cursor = max(cursor + 1.0, sub.end)
            self._settle(sub, outcome)
            i += len(sub.words)
            cursor = min(cursor, w1_all)

    # ------------------------------------------------------------------ results

    def _result(self, span: AlignSpan, outcome: _Outcome) -> Alignment:
        words = tuple(outcome.words)
        failure, reason = outcome.failure, outcome.reason
        if failure is None and not words:
            words = estimate_words(span.text, span.start, span.end)
            failure, reason = "empty", "the text has no words to align"
        total = sum(n for _, n in outcome.log_probs)
        log_prob = sum(lp * n for lp, n in outcome.log_probs) / total if total else None
        return Alignment(
            start=span.start,
            end=span.end,
            text=span.text,
            words=words,
            timing="estimated" if failure else "aligned",
            failure=failure,
            reason=reason,
            log_prob=None if log_prob is None else round(log_prob, 4),
            speech=round(outcome.speech, 3),
        )


# ----------------------------------------------------------------------------- helpers


def _fix_first_token(
    starts: npt.NDArray[np.float64],
    ends: npt.NDArray[np.float64],
    token_bytes: Sequence[bytes],
    regions: Sequence[tuple[float, float]],
    window_start: float,
    span_start: float,
) -> None:
    """Give the window's first spoken token a real start (in place).

    The warping path starts the first token at the window's first frame, whatever was
    said before it. Its start is capped at twice the median token duration before its
    end, then moved to the onset of the speech (VAD) its end lies in. When that speech
    runs on from before the window, nothing in the audio marks the onset, and the
    span's own start (the ASR's or the cue's) is the bound instead.
    """
    spoken = [k for k, b in enumerate(token_bytes) if any(is_spoken(ch) for ch in _text(b))]
    if not spoken:
        return
    k = spoken[0]
    durations = (ends - starts)[spoken[1:]]
    durations = durations[durations > 0]
    cap = 2 * float(np.median(durations)) if len(durations) else 0.6
    cap = min(max(cap, 0.2), 1.0)
    start = max(float(starts[k]), float(ends[k]) - cap)
    core = float(ends[k]) - 0.02
    region = next(((s, e) for s, e in regions if s <= core < e), None)
    if region is not None and region[0] > window_start + 0.05:
        start = max(start, region[0])
    elif region is not None:
        start = max(start, min(span_start, core))
    starts[k] = min(start, float(ends[k]))
    # Tokens before it (an opening quote) move with it.
    for j in range(k):
        starts[j] = ends[j] = starts[k]


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="ignore") or "a"  # a partial character is spoken


def _words(
    words: Sequence[WordSpan],
    raw: Sequence[tuple[float, float, float] | None],
    regions: Sequence[tuple[float, float]],
    *,
    snap: bool,
) -> list[Word]:
    """Words from raw (start, end, probability) per word, None for punctuation alone.

    With ``snap``, word edges in non-speech are moved onto the speech inside the word.
    Punctuation alone sits, zero-length, where the word before it ends.
    """
    times = [None if r is None else [r[0], r[1]] for r in raw]
    spoken = [t for t in times if t is not None]
    if snap:
        for span in spoken:
            if span[1] > span[0]:
                span[0], span[1] = _snap(span[0], span[1], regions)
        if spoken:
            # The warping hands a text's last frames to what follows it (the next text,
            # or the end of text), so the last word tends to end early: carry it to the
            # end of its speech when that is near.
            last = spoken[-1]
            region = next(((s, e) for s, e in regions if s <= last[1] < e), None)
            if region is not None and region[1] - last[1] <= _END_REACH:
                last[1] = max(last[1], region[1] - _VAD_PAD)
    out: list[Word] = []
    pending: list[WordSpan] = []
    for w, t, r in zip(words, times, raw, strict=True):
        if t is None or r is None:
            if out:
                out.append(Word(start=out[-1].end, end=out[-1].end, text=w.text,
                                probability=1.0, timing="aligned"))
            else:
                pending.append(w)
            continue
        start, end = round(t[0], 3), round(t[1], 3)
        for p in pending:
            out.append(Word(start=start, end=start, text=p.text, probability=1.0,
                            timing="aligned"))
        pending = []
        out.append(Word(start=start, end=end, text=w.text, probability=round(r[2], 4),
                        timing="aligned"))
    return out


def _model_text(pieces: Sequence[_Piece]) -> tuple[str, list[list[int]]]:
    """The text the model reads for ``pieces``, and for each piece where each of its
    characters landed in it (-1 for whitespace that was collapsed).

    Spaces are written as Whisper writes them: Latin text starts with one (" Hello"),
    words are separated by one, and none goes next to Chinese ("做MoE架构。Hello").
    """
    out: list[str] = []
    where: list[list[int]] = []
    for piece in pieces:
        positions = [-1] * len(piece.text)
        pending_space = bool(out) or not is_cjk(piece.text.lstrip()[:1] or "a")
        for i, ch in enumerate(piece.text):
            if ch.isspace():
                pending_space = pending_space or bool(out)
                continue
            if pending_space and (not out or needs_space_between(out[-1], ch)):
                out.append(" ")
            pending_space = False
            positions[i] = len(out)
            out.append(ch)
        where.append(positions)
    return "".join(out), where


def _char_times(
    text: str,
    token_bytes: Sequence[bytes],
    starts: npt.NDArray[np.float64],
    ends: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[list[int]]]:
    """Per character of ``text``: start, end and the tokens it is in.

    A token covering several pronounced characters ("我们", " Hello") is shared
    between them in equal parts; a character split over several tokens (a rare CJK
    character as two byte tokens) runs from the first to the last.
    """
    n = len(text)
    char_start = np.full(n, np.inf)
    char_end = np.full(n, -np.inf)
    char_tokens: list[list[int]] = [[] for _ in range(n)]
    char_bytes = np.cumsum([0] + [len(ch.encode("utf-8")) for ch in text])
    pos = 0
    for k, piece in enumerate(token_bytes):
        b0, b1 = pos, pos + len(piece)
        pos = b1
        first = int(np.searchsorted(char_bytes, b0, side="right")) - 1
        last = int(np.searchsorted(char_bytes, b1, side="left")) - 1
        chars = [c for c in range(max(first, 0), min(last, n - 1) + 1) if is_spoken(text[c])]
        if not chars:
            continue
        s, e = float(starts[k]), float(ends[k])
        m = len(chars)
        for j, c in enumerate(chars):
            char_start[c] = min(char_start[c], s + (e - s) * j / m)
            char_end[c] = max(char_end[c], s + (e - s) * (j + 1) / m)
            char_tokens[c].append(k)
    return char_start, char_end, char_tokens


def _sub_text(text: str, words: Sequence[WordSpan]) -> tuple[str, list[WordSpan]]:
    """The text of a run of words, and the words re-indexed into it."""
    if not words:
        return "", []
    a, b = words[0].chars[0], words[-1].chars[-1] + 1
    return text[a:b], [WordSpan(w.text, tuple(c - a for c in w.chars)) for w in words]


def _plan_chunk(
    words: Sequence[WordSpan],
    start: float,
    end: float,
    limit: float,
    regions: Sequence[tuple[float, float]],
) -> tuple[int, float]:
    """How many of ``words`` are expected to be said by ``limit`` (at least one), and
    when they are expected to end.

    The words share the *speech* (VAD) in [start, end] by character count, so a long
    pause does not push the estimate of the words after it too early.
    """
    clipped = [(max(s, start), min(e, end)) for s, e in regions if e > start and s < end]
    if not clipped:
        clipped = [(start, end)]
    lengths = np.cumsum([len(w.text) for w in words])
    total_speech = sum(e - s for s, e in clipped)
    by_limit = sum(max(0.0, min(e, limit) - s) for s, e in clipped)
    budget = lengths[-1] * by_limit / total_speech if total_speech > 0 else 0.0
    take = max(1, int(np.searchsorted(lengths, budget, side="right")))
    # The wall-clock time at which that share of the speech has passed.
    t = total_speech * float(lengths[take - 1]) / float(lengths[-1])
    for s, e in clipped:
        if t <= e - s:
            return take, s + t
        t -= e - s
    return take, clipped[-1][1]


# ----------------------------------------------------------------------------- loading


def load_aligner(
    model_path: Path,
    *,
    backend: str = "faster-whisper",
    compute_type: str = "int8",
    cpu_threads: int = 0,
    settings: AlignSettings | None = None,
) -> Aligner:
    """Load a Whisper model just for alignment (a worker that already has one loaded
    uses :meth:`Aligner.for_backend` or ``ModelCache.aligner`` instead).

    ``model_path`` is a CTranslate2 directory (faster-whisper) or an openai-whisper
    ``.pt``; ``cpu_threads`` as for the ASR loaders (0: the library's default).
    """
    if backend == "faster-whisper":
        from pipelines.asr.faster import load_faster_whisper

        asr: Any = load_faster_whisper(
            model_path, compute_type=compute_type, cpu_threads=cpu_threads
        )
    elif backend == "openai-whisper":
        from pipelines.asr.openai import load_openai_whisper

        asr = load_openai_whisper(model_path, threads=cpu_threads or None)
    else:
        raise ModelError(f"unknown ASR backend {backend!r}: use faster-whisper or openai-whisper")
    return Aligner.for_backend(asr, settings)

