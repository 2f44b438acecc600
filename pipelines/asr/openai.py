"""openai-whisper (PyTorch) backend: the reference implementation, slower on CPU."""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.asr.base import AsrOptions, Waveform, clean_transcription, default_prompt
from pipelines.asr.faster import VAD_PARAMETERS, WHISPER_THRESHOLDS
from pipelines.errors import CancelledError, ModelError, ModelNotFoundError
from pipelines.text import asr_token
from pipelines.types import AsrSegment, ProgressCallback, Transcription, Word

__all__ = ["TEMPERATURE", "OpenAIWhisperBackend", "load_openai_whisper"]

SAMPLE_RATE = 16_000

#: Greedy/beam decoding only. openai-whisper's default fallback ladder
#: (0.0, 0.2, ... 1.0) re-decodes rejected windows by sampling; on the narrow-band
#: English sample it was slower and fell into a repetition loop (see bench/RESULTS.md).
TEMPERATURE: tuple[float, ...] = (0.0,)

# --- progress -------------------------------------------------------------------------
# whisper.transcribe() reports progress only through ``tqdm.tqdm(total=content_frames)``.
# A shim replaces the ``tqdm`` module it sees; per thread, a registered callback gets
# the updates, and threads without one get the real tqdm, so concurrent transcriptions
# in one worker process do not see each other's progress.

_local = threading.local()
_shim_lock = threading.Lock()


class _ProgressBar:
    def __init__(self, callback: ProgressCallback, total: int | float | None) -> None:
        self._callback = callback
        self._total = float(total or 0)
        self._done = 0.0

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: float = 1) -> None:
        self._done += n
        if self._total > 0:
            self._callback("transcribe", min(1.0, self._done / self._total))


def _tqdm_factory(*args: Any, **kwargs: Any) -> Any:
    callback: ProgressCallback | None = getattr(_local, "callback", None)
    if callback is None:
        import tqdm  # type: ignore[import-untyped]

        return tqdm.tqdm(*args, **kwargs)
    return _ProgressBar(callback, kwargs.get("total"))


def _install_tqdm_shim() -> None:
    import whisper  # noqa: F401  (loads the whisper.transcribe module)

    # Not ``import whisper.transcribe as wt``: the package re-exports a function of that
    # name, which shadows the module as an attribute.
    wt: Any = sys.modules["whisper.transcribe"]
    with _shim_lock:
        if not isinstance(wt.tqdm, types.SimpleNamespace):
            wt.tqdm = types.SimpleNamespace(tqdm=_tqdm_factory)


# --- backend --------------------------------------------------------------------------


class OpenAIWhisperBackend:
    """A loaded openai-whisper model; see :func:`load_openai_whisper`."""

    name = "openai-whisper"

    def __init__(self, model: Any, model_name: str) -> None:
        self._model = model
        self.model = model_name
        self.english_only = not bool(model.is_multilingual)

    @property
    def whisper(self) -> Any:
        """The loaded ``whisper.model.Whisper``, for stages that share it (alignment)."""
        return self._model

    def transcribe(
        self,
        audio: Waveform,
        options: AsrOptions,
        progress: ProgressCallback | None = None,
    ) -> Transcription:
        """Transcribe 16 kHz mono float32 samples.

        With ``options.vad`` the speech found by Silero VAD (as in faster-whisper) is
        decoded alone and times are mapped back to the original audio. Progress is the
        fraction of (speech) audio decoded; raising :class:`CancelledError` from the
        hook stops decoding at the next 30 s window.
        """
        import torch
        import whisper

        duration = len(audio) / SAMPLE_RATE
        if progress is not None:
            progress("transcribe", 0.0)
        speech, time_map = _speech_only(audio) if options.vad else (audio, None)
        language, language_probability = self._language(speech, options)
        _install_tqdm_shim()
        _local.callback = progress
        try:
            if speech.shape[0] == 0:
                result: dict[str, Any] = {"segments": []}
            else:
                with torch.inference_mode():
                    result = whisper.transcribe(
                        self._model,
                        speech,
                        verbose=None if progress is None else False,
                        language=language,
                        beam_size=options.beam_size,
                        temperature=TEMPERATURE,
                        initial_prompt=default_prompt(options),
                        condition_on_previous_text=False,
                        word_timestamps=options.word_timestamps,
                        # Half precision only where it is fast: on CPU it is emulated.
                        fp16=self._model.device.type == "cuda",
                        compression_ratio_threshold=WHISPER_THRESHOLDS[
                            "compression_ratio_threshold"
                        ],
                        logprob_threshold=WHISPER_THRESHOLDS["log_prob_threshold"],
                        no_speech_threshold=WHISPER_THRESHOLDS["no_speech_threshold"],
                    )
        except CancelledError:
            raise
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise ModelError(f"openai-whisper failed while transcribing: {exc}") from exc
        finally:
            _local.callback = None
        segments = tuple(_segment(s, time_map) for s in result["segments"])
        raw = Transcription(
            language=language,
            language_probability=language_probability,
            duration=duration,
            segments=segments,
            backend=self.name,
            model=self.model,
        )
        cleaned = clean_transcription(
            raw, language=options.language, prompt=default_prompt(options)
        )
        if progress is not None:
            progress("transcribe", 1.0)
        return cleaned

    def _language(self, audio: Waveform, options: AsrOptions) -> tuple[str, float]:
        """The language to decode in, detected on the first 30 s when "auto"."""
        if self.english_only:
            return "en", 1.0
        if options.language != "auto":
            return options.language, 1.0
        import torch
        import whisper

        with torch.inference_mode():
            mel = whisper.log_mel_spectrogram(
                whisper.pad_or_trim(torch.from_numpy(np.ascontiguousarray(audio))),
                self._model.dims.n_mels,
            ).to(self._model.device)
            _, probs = self._model.detect_language(mel)
        best = max(probs, key=probs.get)
        return str(best), float(probs[best])


class _TimeMap:
    """Maps times in concatenated speech back to the original audio."""

    def __init__(self, chunks: list[dict[str, int]]) -> None:
        from faster_whisper.vad import SpeechTimestampsMap

        self._map = SpeechTimestampsMap(chunks, SAMPLE_RATE)

    def __call__(self, t: float, *, is_end: bool = False) -> float:
        return float(self._map.get_original_time(t, is_end=is_end))


def _speech_only(audio: Waveform) -> tuple[Waveform, _TimeMap | None]:
    """The speech parts of ``audio`` concatenated, and the map back to original times."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks: list[dict[str, int]] = get_speech_timestamps(
        audio, VadOptions(**VAD_PARAMETERS), sampling_rate=SAMPLE_RATE
    )
    if not chunks:
        return audio[:0], None
    speech = np.concatenate([audio[c["start"] : c["end"]] for c in chunks]).astype(np.float32)
    return speech, _TimeMap(chunks)


def _segment(seg: dict[str, Any], time_map: _TimeMap | None) -> AsrSegment:
    def t(value: Any, *, is_end: bool = False) -> float:
        return time_map(float(value), is_end=is_end) if time_map else float(value)

    words = tuple(
        Word(
            start=t(w["start"]),
            end=t(w["end"], is_end=True),
            text=asr_token(str(w["word"])),
            probability=min(1.0, max(0.0, float(w["probability"]))),
        )
        for w in seg.get("words", ())
    )
    return AsrSegment(
        start=t(seg["start"]),
        end=t(seg["end"], is_end=True),
        text=str(seg["text"]),
        words=words,
        avg_logprob=float(seg.get("avg_logprob", 0.0)),
        no_speech_prob=float(seg.get("no_speech_prob", 0.0)),
        compression_ratio=float(seg.get("compression_ratio", 0.0)),
    )


def load_openai_whisper(
    checkpoint: Path, *, threads: int | None = None, device: str = "cpu"
) -> OpenAIWhisperBackend:
    """Load an openai-whisper ``.pt`` checkpoint on ``device`` ("cpu" or "cuda").

    Converted checkpoints carry their word-alignment heads, which
    ``whisper.load_model(path)`` would ignore, so they are applied here.
    ``threads`` sets torch's intra-op threads for the whole process (None: leave it).
    Raises :class:`ModelNotFoundError` if the file is missing and :class:`ModelError` if
    it cannot be loaded.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ModelNotFoundError(
            f"No openai-whisper checkpoint at {checkpoint}; run `sourcebook models install`."
        )
    try:
        import torch

        from pipelines.convert import load_openai_checkpoint

        if threads:
            torch.set_num_threads(threads)
        model = load_openai_checkpoint(checkpoint, device=device)
        model.eval()
    except Exception as exc:  # torch.load raises anything from pickle to zipfile errors
        raise ModelError(f"Cannot load openai-whisper checkpoint {checkpoint}: {exc}") from exc
    return OpenAIWhisperBackend(model, checkpoint.stem)
