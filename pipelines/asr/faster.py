"""faster-whisper (CTranslate2) backend: the default, fastest on CPU."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.asr.base import AsrOptions, Waveform, clean_transcription, default_prompt
from pipelines.errors import CancelledError, ModelError, ModelNotFoundError
from pipelines.text import asr_token
from pipelines.types import AsrSegment, ProgressCallback, Transcription, Word

__all__ = ["VAD_PARAMETERS", "WHISPER_THRESHOLDS", "FasterWhisperBackend", "load_faster_whisper"]

#: Whisper's own fallback thresholds: a window that compresses too well (a loop), whose
#: tokens are too unlikely, or that is probably silence is decoded again or dropped.
WHISPER_THRESHOLDS: dict[str, float] = {
    "compression_ratio_threshold": 2.4,
    "log_prob_threshold": -1.0,
    "no_speech_threshold": 0.6,
}

#: Silero VAD settings. Pauses of a second split speech chunks (faster-whisper's 2 s
#: default glues answers to questions); 400 ms padding keeps soft word onsets.
VAD_PARAMETERS: dict[str, float | int] = {
    "threshold": 0.5,
    "min_silence_duration_ms": 1000,
    "speech_pad_ms": 400,
}


class FasterWhisperBackend:
    """A loaded faster-whisper model; see :func:`load_faster_whisper`."""

    name = "faster-whisper"

    def __init__(self, model: Any, model_name: str, *, english_only: bool) -> None:
        self._model = model
        self.model = model_name
        self.english_only = english_only

    @property
    def whisper(self) -> Any:
        """The loaded ``faster_whisper.WhisperModel``, for stages that share it (alignment)."""
        return self._model

    def transcribe(
        self,
        audio: Waveform,
        options: AsrOptions,
        progress: ProgressCallback | None = None,
    ) -> Transcription:
        """Transcribe 16 kHz mono float32 samples.

        ``progress("transcribe", end_of_last_segment / duration)`` is called as segments
        are decoded; raising :class:`CancelledError` from it stops decoding there.
        """
        language = None if options.language == "auto" else options.language
        if self.english_only:
            language = "en"
        duration = len(audio) / 16_000
        if progress is not None:
            progress("transcribe", 0.0)
        segments: list[AsrSegment] = []
        info: Any = None
        last = 0.0
        try:
            for start, end in _windows(audio):
                segments_iter, window_info = self._model.transcribe(
                    audio[start:end],
                    language=language,
                    beam_size=options.beam_size,
                    vad_filter=options.vad,
                    vad_parameters=dict(VAD_PARAMETERS) if options.vad else None,
                    word_timestamps=options.word_timestamps,
                    initial_prompt=default_prompt(options),
                    condition_on_previous_text=False,
                    # With no language given, detect it per segment rather than once from
                    # the first 30 s: interviews switch between Mandarin and English.
                    # Measured on the mixed fixture: English turns stop coming out as
                    # Chinese characters.
                    multilingual=language is None,
                    **WHISPER_THRESHOLDS,
                )
                info = info or window_info
                offset = start / 16_000
                # The generator decodes lazily: each iteration is one window of work, so
                # the progress hook can stop it between windows.
                for seg in segments_iter:
                    segments.append(_segment(seg, offset))
                    if progress is not None and duration > 0:
                        frac = min(1.0, max(last, (offset + float(seg.end)) / duration))
                        if frac > last:
                            last = frac
                            progress("transcribe", frac)
        except CancelledError:
            raise
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise ModelError(f"faster-whisper failed while transcribing: {exc}") from exc
        raw = Transcription(
            language=str(info.language),
            language_probability=float(info.language_probability),
            duration=duration,
            segments=tuple(segments),
            backend=self.name,
            model=self.model,
        )
        result = clean_transcription(raw, language=options.language, prompt=default_prompt(options))
        if progress is not None and last < 1.0:
            progress("transcribe", 1.0)
        return result


#: faster-whisper computes the log-mel spectrogram of all the audio it is given at once
#: (its STFT alone is ~0.5 GB per hour), so long recordings are transcribed in pieces of
#: about this many seconds, cut at the quietest half second near each boundary.
WINDOW_SECONDS = 1200.0
_SEARCH_SECONDS = 30.0


def _windows(audio: Waveform) -> list[tuple[int, int]]:
    """(start, end) sample ranges covering ``audio``; one range unless it is long."""
    rate = 16_000
    n = len(audio)
    window = round(WINDOW_SECONDS * rate)
    if n <= window + round(_SEARCH_SECONDS * rate):
        return [(0, n)]
    hop = rate // 2
    cuts = [0]
    while n - cuts[-1] > window + round(_SEARCH_SECONDS * rate):
        target = cuts[-1] + window
        lo = max(cuts[-1] + hop, target - round(_SEARCH_SECONDS * rate))
        hi = min(n - hop, target + round(_SEARCH_SECONDS * rate))
        # Energy of each half second in the search span; cut in the middle of the quietest.
        span = np.asarray(audio[lo:hi], dtype=np.float32)
        frames = span[: len(span) // hop * hop].reshape(-1, hop)
        quietest = int(np.argmin((frames * frames).mean(axis=1)))
        cuts.append(lo + quietest * hop + hop // 2)
    return list(itertools.pairwise([*cuts, n]))


def _segment(seg: Any, offset: float = 0.0) -> AsrSegment:
    words = tuple(
        Word(
            start=offset + float(w.start),
            end=offset + float(w.end),
            text=asr_token(str(w.word)),
            probability=min(1.0, max(0.0, float(w.probability))),
        )
        for w in (seg.words or ())
    )
    return AsrSegment(
        start=offset + float(seg.start),
        end=offset + float(seg.end),
        text=str(seg.text),
        words=words,
        avg_logprob=float(seg.avg_logprob),
        no_speech_prob=float(seg.no_speech_prob),
        compression_ratio=float(seg.compression_ratio),
    )


def load_faster_whisper(
    model_dir: Path, *, compute_type: str = "int8", cpu_threads: int = 0, device: str = "cpu"
) -> FasterWhisperBackend:
    """Load a CTranslate2 Whisper directory (``model.bin``, ``config.json``, tokenizer).

    ``compute_type`` "int8" quantises on load (about 2x faster than "float32" on CPU
    at similar accuracy); ``cpu_threads`` 0 lets CTranslate2 choose. ``device`` "cuda"
    needs a CUDA build of CTranslate2 (see :mod:`pipelines.device`). Raises
    :class:`ModelNotFoundError` if the directory is incomplete and :class:`ModelError`
    if loading fails.
    """
    model_dir = Path(model_dir)
    if not (model_dir / "model.bin").is_file():
        raise ModelNotFoundError(
            f"No faster-whisper model in {model_dir} (model.bin missing); "
            f"run `sourcebook models install`."
        )
    try:
        from faster_whisper import WhisperModel

        model = WhisperModel(
            str(model_dir), device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
    except (RuntimeError, ValueError, OSError, MemoryError) as exc:
        raise ModelError(f"Cannot load faster-whisper model {model_dir}: {exc}") from exc
    return FasterWhisperBackend(
        model, model_dir.name, english_only=not bool(model.model.is_multilingual)
    )
