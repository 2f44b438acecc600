"""The aligner: plans windows over the spans, aligns them with an engine, checks the result."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.align.engines import CT2Engine, Engine, OpenAIEngine
from pipelines.align.spans import (
    MAX_TEXT_TOKENS,
    MAX_WINDOW,
    SAMPLE_RATE,
    VAD_CONTEXT,
    AlignSettings,
    AlignSpan,
    Waveform,
    align_language,
    estimate_words,
)
from pipelines.align.speech import speech_in, speech_regions, trim_margins
from pipelines.align.timing import (
    char_times,
    fix_first_token,
    model_text,
    plan_chunk,
    sub_text,
    timed_words,
)
from pipelines.errors import ModelError
from pipelines.text import WordSpan, word_spans
from pipelines.types import AlignFailure, Alignment, ProgressCallback, Word

#: Seconds at the end of a window of a long span whose words are left to the next window.
_LONG_TAIL = 4.0


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

    def __init__(self, engine: Engine, model: str, settings: AlignSettings | None = None):
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
        engine: Engine
        if backend.name == "faster-whisper":
            engine = CT2Engine(backend.whisper)
        elif backend.name == "openai-whisper":
            engine = OpenAIEngine(backend.whisper)
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
        regions = speech_regions(self._cut(audio, offset, c0, c1), c0, self.settings.vad_threshold)
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
            w0, w1 = trim_margins(w0, w1, group[0].start, group[-1].end, regions)
            regions = [(max(s, w0), min(e, w1)) for s, e in regions if e > w0 and s < w1]
        window = self._cut(audio, offset, w0, w1)
        todo: list[_Piece] = []
        for piece in group:
            speech = speech_in(regions, piece.start, piece.end)
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
        text, where = model_text([p.text for p in pieces])
        language = pieces[0].language
        tokens, pieces_bytes = self._engine.tokens(text)
        if len(tokens) > MAX_TEXT_TOKENS:
            for p in pieces:
                p.failure = "degenerate"
                p.reason = (
                    f"{len(tokens)} tokens of text for {w1 - w0:.1f} s of audio: more than "
                    "can be said in it"
                )
            return
        if b"".join(pieces_bytes) != text.encode("utf-8"):
            for p in pieces:
                p.failure, p.reason = "unsupported", "the tokenizer does not round-trip this text"
            return
        try:
            starts, ends, probs = self._engine.align(state, language, tokens)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise ModelError(f"{self.name} failed while aligning: {exc}") from exc
        starts = starts + w0
        ends = ends + w0
        fix_first_token(starts, ends, pieces_bytes, regions, w0, pieces[0].start)
        char_start, char_end, char_tokens = char_times(text, pieces_bytes, starts, ends)
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
        timed = timed_words(piece.words, raw, regions,
                            snap=settings.snap_to_speech and bool(regions))
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
        outcome.speech += speech_in(regions, piece.start, piece.end)
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
                take, chunk_end = plan_chunk(rest, cursor, w1_all, limit, regions)
            chunk = rest[:take]
            text, chunk_words = sub_text(piece.text, chunk)
            sub = _Piece(piece.index, chunk_words, text, max(cursor, piece.start),
                         max(cursor, min(chunk_end, piece.end)), piece.language)
            sub_regions = [(max(s, cursor), min(e, w1)) for s, e in regions
                           if s < w1 and e > cursor]
            if speech_in(sub_regions, sub.start, sub.end) < self.settings.min_speech:
                sub.failure = "silence"
                sub.reason = f"no speech in {sub.start:.2f}-{sub.end:.2f} s"
            else:
                state = self._engine.encode(self._cut(audio, offset, cursor, w1),
                                            self.settings.min_context)
                self._align_pieces(state, cursor, w1, [sub], sub_regions)
            if sub.failure is None and not final:
                kept = sum(1 for w in sub.timed if w.end <= w1 - _LONG_TAIL) or 1
                sub.timed = sub.timed[:kept]
                sub.text, sub.words = sub_text(piece.text, chunk[:kept])
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
