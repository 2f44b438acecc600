"""The whole pipeline: normalise -> transcribe -> diarize -> merge, each stage timed.

``run(src, options, models=..., progress=...)`` is what both the CLI and the worker
call. Models come from a :class:`ModelCache`: a worker keeps one for its lifetime
(models load once per process), the one-shot CLI lets it drop each model as soon as
its stage is done, so a long file never holds Whisper and pyannote in memory at once.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipelines.errors import ModelError
from pipelines.types import (
    AudioInfo,
    Diarization,
    ProgressCallback,
    Segment,
    Stage,
    Transcription,
)

if TYPE_CHECKING:
    from pipelines.align import Aligner
    from pipelines.asr.base import AsrBackend
    from pipelines.diarize import Diarizer

Backend = Literal["faster-whisper", "openai-whisper"]

#: Share of the overall progress bar each stage gets (by typical run time on CPU).
STAGE_WEIGHTS: dict[Stage, float] = {
    Stage.normalise: 0.05,
    Stage.transcribe: 0.55,
    Stage.diarize: 0.35,
    Stage.merge: 0.05,
    #: The one stage of an alignment job (corrections, imports).
    Stage.align: 1.0,
}


def run_stages(diarize: bool) -> list[Stage]:
    """The stages :func:`run` goes through, in order."""
    return [s for s in STAGE_WEIGHTS if diarize or s != Stage.diarize]


@dataclass(frozen=True)
class RunOptions:
    """What to run. Model specs are names ('base', 'tiny.en') or local paths."""

    backend: Backend = "faster-whisper"
    model: str = "base"
    language: str = "auto"
    beam_size: int = 5
    vad: bool = True
    compute_type: str = "int8"
    initial_prompt: str | None = None
    diarize: bool = True
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    diarization_pipeline: str | None = None
    max_segment_seconds: float = 30.0
    max_pause: float = 1.0
    #: Longest audio to decode, in seconds (None: no limit); longer media fail in normalise.
    max_duration: float | None = None


@dataclass(frozen=True)
class RunResult:
    """Everything a run produced, plus how long each stage took (seconds)."""

    audio: AudioInfo
    normalised: Path
    transcription: Transcription
    diarization: Diarization
    segments: tuple[Segment, ...]
    timings: dict[str, float]
    model_path: str

    @property
    def language(self) -> str:
        return self.transcription.language


@dataclass
class ModelCache:
    """Loaded models, keyed by what was loaded. ``keep=False`` frees after each use."""

    models_dir: Path
    keep: bool = True
    cpu_threads: int = 0
    #: "cpu" or "cuda", as :func:`pipelines.device.resolve_device` gives it.
    device: str = "cpu"
    _asr: dict[tuple[str, str, str], AsrBackend] = field(default_factory=dict)
    _diarizers: dict[str, Diarizer] = field(default_factory=dict)
    _aligners: dict[tuple[str, str, str], Aligner] = field(default_factory=dict)

    def asr(self, backend: Backend, spec: str, compute_type: str) -> tuple[AsrBackend, str]:
        """A loaded ASR backend and the path it came from."""
        from pipelines.device import effective_compute_type
        from pipelines.models import resolve_ct2_model, resolve_openai_checkpoint

        compute_type = effective_compute_type(self.device, compute_type)

        if backend == "faster-whisper":
            path = resolve_ct2_model(spec, self.models_dir)
        elif backend == "openai-whisper":
            path = resolve_openai_checkpoint(spec, self.models_dir)
        else:
            raise ModelError(
                f"unknown ASR backend {backend!r}: use faster-whisper or openai-whisper"
            )
        key = (backend, str(path), compute_type)
        if key not in self._asr:
            if backend == "faster-whisper":
                from pipelines.asr.faster import load_faster_whisper

                self._asr[key] = load_faster_whisper(
                    path, compute_type=compute_type, cpu_threads=self.cpu_threads,
                    device=self.device,
                )
            else:
                from pipelines.asr.openai import load_openai_whisper

                self._asr[key] = load_openai_whisper(path, threads=self.cpu_threads or None,
                                                      device=self.device)
        return self._asr[key], str(path)

    def aligner(self, backend: Backend, spec: str, compute_type: str) -> Aligner:
        """A :class:`pipelines.align.Aligner` on the ASR model this cache holds for the
        same arguments (loading it if needed): one Whisper in memory for both stages."""
        from pipelines.align import Aligner

        asr, path = self.asr(backend, spec, compute_type)
        key = (backend, path, compute_type)
        if key not in self._aligners:
            self._aligners[key] = Aligner.for_backend(asr)
        return self._aligners[key]

    def diarizer(self, spec: str | None) -> Diarizer:
        from pipelines.diarize import load_diarizer
        from pipelines.models import resolve_diarization_pipeline

        path = resolve_diarization_pipeline(spec, self.models_dir)
        if str(path) not in self._diarizers:
            self._diarizers[str(path)] = load_diarizer(path, device=self.device)
        return self._diarizers[str(path)]

    def release(self) -> None:
        """Drop models unless this cache keeps them (the CLI's case)."""
        if not self.keep:
            self._asr.clear()
            self._aligners.clear()
            self._diarizers.clear()
            gc.collect()


class StageProgress:
    """Maps per-stage fractions onto one 0..1 scale and forwards both."""

    def __init__(self, callback: ProgressCallback | None, stages: Sequence[Stage]) -> None:
        self.callback = callback
        total = sum(STAGE_WEIGHTS[s] for s in stages)
        self.offsets: dict[str, float] = {}
        acc = 0.0
        for s in stages:
            self.offsets[s.value] = acc / total
            acc += STAGE_WEIGHTS[s]
        self.weights = {s.value: STAGE_WEIGHTS[s] / total for s in stages}

    def overall(self, stage: str, fraction: float) -> float:
        fraction = min(max(fraction, 0.0), 1.0)
        return self.offsets[stage] + self.weights[stage] * fraction

    def __call__(self, stage: str, fraction: float) -> None:
        if self.callback is not None:
            self.callback(stage, min(max(fraction, 0.0), 1.0))


@contextmanager
def _timed(timings: dict[str, float], stage: Stage) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[stage.value] = round(time.perf_counter() - t0, 3)


def run(
    src: Path,
    options: RunOptions,
    *,
    models: ModelCache,
    progress: ProgressCallback | None = None,
    normalised_out: Path | None = None,
) -> RunResult:
    """Run the stages in order on ``src`` (any media ffmpeg reads).

    ``progress(stage, fraction)`` is called with each stage's own 0..1 fraction (first
    with 0.0 when the stage starts, in the order of :func:`run_stages`), and may raise
    ``CancelledError`` to stop. The normalised WAV goes to ``normalised_out``
    (or a temp file that is removed afterwards).
    """
    from pipelines.asr.base import AsrOptions
    from pipelines.audio import load_waveform, normalise
    from pipelines.merge import assign_speakers

    timings: dict[str, float] = {}
    report = StageProgress(progress, run_stages(options.diarize))
    tmp_dir: tempfile.TemporaryDirectory[str] | None = None
    if normalised_out is None:
        tmp_dir = tempfile.TemporaryDirectory(prefix="sourcebook-")
        normalised_out = Path(tmp_dir.name) / "normalised.wav"
    try:
        report(Stage.normalise, 0.0)
        with _timed(timings, Stage.normalise):
            info = normalise(src, normalised_out, progress=report,
                             max_duration=options.max_duration)
            report(Stage.normalise, 1.0)
            audio = load_waveform(normalised_out)

        report(Stage.transcribe, 0.0)
        with _timed(timings, Stage.transcribe):
            backend, model_path = models.asr(options.backend, options.model, options.compute_type)
            asr_options = AsrOptions(
                language=options.language or "auto",
                beam_size=options.beam_size,
                vad=options.vad,
                initial_prompt=options.initial_prompt,
            )
            transcription: Transcription = backend.transcribe(audio, asr_options, report)
            report(Stage.transcribe, 1.0)
        models.release()

        diarization = Diarization(turns=())
        if options.diarize:
            report(Stage.diarize, 0.0)
            with _timed(timings, Stage.diarize):
                diarizer = models.diarizer(options.diarization_pipeline)
                diarization = diarizer.diarize(
                    audio,
                    num_speakers=options.num_speakers,
                    min_speakers=options.min_speakers,
                    max_speakers=options.max_speakers,
                    progress=report,
                )
                report(Stage.diarize, 1.0)
            models.release()

        report(Stage.merge, 0.0)
        with _timed(timings, Stage.merge):
            segments = assign_speakers(
                transcription.words,
                diarization.turns,
                language=transcription.language,
                max_pause=options.max_pause,
                max_segment_seconds=options.max_segment_seconds,
            )
            report(Stage.merge, 1.0)
        del audio
        return RunResult(
            audio=info,
            normalised=normalised_out,
            transcription=transcription,
            diarization=diarization,
            segments=segments,
            timings=timings,
            model_path=model_path,
        )
    finally:
        if tmp_dir is not None:
            tmp_dir.cleanup()

