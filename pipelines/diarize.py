"""Speaker diarization: who spoke when, with a pyannote pipeline loaded from a local directory.

``load_diarizer(path)`` once per worker process, then ``diarizer.diarize(waveform)`` per
recording. The waveform is passed to pyannote in memory (its own decoding relies on
torchcodec, whose native parts do not load beside CPU torch). Callers depend on the
:class:`Diarizer` protocol; :class:`StaticDiarizer` stands in for pyannote in tests of
later stages, as :class:`pipelines.asr.base.StaticAsrBackend` does for Whisper.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from pipelines.errors import AudioError, ModelError, ModelNotFoundError
from pipelines.types import Diarization, ProgressCallback, SpeakerTurn

if TYPE_CHECKING:
    from numpy.typing import NDArray

SAMPLE_RATE = 16000
STAGE = "diarize"

# Share of the stage's progress bar given to pyannote's steps (measured on CPU, the
# embedding step dominates: it runs CAM++ once per 10 s chunk).
_SEGMENTATION_SHARE = 0.25
_EMBEDDING_SHARE = 0.70


@runtime_checkable
class Diarizer(Protocol):
    """A loaded speaker diarizer."""

    def diarize(
        self,
        waveform: NDArray[np.float32],
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> Diarization:
        """Diarize mono 16 kHz float32 audio; ``progress("diarize", f)`` may cancel."""
        ...


def load_diarizer(path: Path, device: str = "cpu") -> PyannoteDiarizer:
    """Load the pyannote pipeline in directory ``path`` (its ``config.yaml``) on ``device``
    ("cpu" or "cuda"); no network."""
    # Confidential interviews: pyannote must not send usage metrics. Set before importing it.
    os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
    if not (path / "config.yaml").is_file():
        raise ModelNotFoundError(
            f"no diarization pipeline at {path}: run `sourcebook models install`"
        )
    with warnings.catch_warnings():
        # pyannote warns at import that torchcodec cannot load; we never let it decode audio.
        warnings.filterwarnings("ignore", message=r"\s*torchcodec", category=UserWarning)
        from pyannote.audio import Pipeline

    try:
        pipeline = Pipeline.from_pretrained(path)
    except Exception as exc:  # pyannote raises anything from yaml to torch errors
        raise ModelError(f"cannot load the diarization pipeline at {path}: {exc}") from exc
    if pipeline is None:
        raise ModelError(f"cannot load the diarization pipeline at {path}")
    if device != "cpu":
        # pyannote loads on the CPU; the waveform stays there too (its inference moves the
        # chunks, our CAM++ step moves its blocks).
        import torch

        try:
            pipeline.to(torch.device(device))
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"cannot move the diarization pipeline at {path} to "
                             f"{device}: {exc}") from exc
    return PyannoteDiarizer(pipeline=pipeline, path=path)


class _Progress:
    """Turns pyannote's hook calls into monotonic ``progress("diarize", fraction)`` calls."""

    def __init__(self, progress: ProgressCallback) -> None:
        self._progress = progress
        self._last = -1.0

    def report(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        # Report each whole percent once: the job row is updated on every call.
        if fraction >= 1.0 or fraction - self._last >= 0.01:
            self._last = fraction
            self._progress(STAGE, float(fraction))  # may raise CancelledError: let it propagate

    def __call__(
        self,
        step_name: str,
        step_artifact: object,
        file: object = None,
        total: int | None = None,
        completed: int | None = None,
    ) -> None:
        # pyannote's Inference reports `completed` in whole batches, past `total` at the end.
        done = min(completed / total, 1.0) if total and completed is not None else None
        if step_name == "segmentation":
            self.report(_SEGMENTATION_SHARE * (1.0 if done is None else done))
        elif step_name == "embeddings":
            start = _SEGMENTATION_SHARE
            self.report(start + _EMBEDDING_SHARE * (1.0 if done is None else done))
        elif step_name == "discrete_diarization":
            self.report(_SEGMENTATION_SHARE + _EMBEDDING_SHARE)


@dataclass(frozen=True)
class PyannoteDiarizer:
    """A loaded pyannote ``SpeakerDiarization`` pipeline and where it came from."""

    pipeline: Any  # pyannote.audio.pipelines.SpeakerDiarization (untyped library)
    path: Path

    def diarize(
        self,
        waveform: NDArray[np.float32],
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> Diarization:
        """Diarize mono 16 kHz float32 audio: turns sorted by start, one embedding per speaker.

        Labels are ``SPEAKER_00``, ``SPEAKER_01``, ... Turns may overlap where people talk at
        once. ``progress("diarize", fraction)`` is called as the work advances; a
        ``CancelledError`` it raises stops the run and propagates.
        """
        import torch

        audio = np.asarray(waveform, dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise AudioError(f"diarize expects non-empty mono audio, got shape {audio.shape}")
        hook = _Progress(progress) if progress is not None else None
        if hook is not None:
            hook.report(0.0)
        file = {
            "waveform": torch.from_numpy(np.ascontiguousarray(audio)).unsqueeze(0),
            "sample_rate": SAMPLE_RATE,
            "uri": "recording",
        }
        output = self.pipeline(
            file,
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            hook=hook,
        )
        annotation = output.speaker_diarization
        turns = sorted(
            (
                SpeakerTurn(start=float(segment.start), end=float(segment.end), speaker=str(label))
                for segment, _, label in annotation.itertracks(yield_label=True)
            ),
            key=lambda t: (t.start, t.end, t.speaker),
        )
        # Rows of speaker_embeddings follow annotation.labels() (pyannote re-orders them so).
        centroids = output.speaker_embeddings
        embeddings: dict[str, tuple[float, ...]] = {}
        if centroids is not None:
            for label, row in zip(annotation.labels(), centroids, strict=False):
                embeddings[str(label)] = tuple(float(x) for x in row)
        if hook is not None:
            hook.report(1.0)
        return Diarization(turns=tuple(turns), embeddings=embeddings)


@dataclass
class StaticDiarizer:
    """An in-memory diarizer returning fixed turns and embeddings (for tests of later stages).

    ``calls`` records the speaker-count hints of each call, so a test can check what the
    runner passed on.
    """

    turns: Sequence[SpeakerTurn]
    embeddings: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    calls: list[dict[str, int | None]] = field(default_factory=list)

    def diarize(
        self,
        waveform: NDArray[np.float32],
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> Diarization:
        """Return the fixed turns sorted by start, reporting progress as a real one does."""
        self.calls.append({"num_speakers": num_speakers, "min_speakers": min_speakers,
                           "max_speakers": max_speakers})
        if progress is not None:
            progress(STAGE, 0.0)
        turns = tuple(sorted(self.turns, key=lambda t: (t.start, t.end, t.speaker)))
        if progress is not None:
            progress(STAGE, 1.0)
        return Diarization(turns=turns, embeddings=dict(self.embeddings))
