"""A label's embedding recomputed from its audio, for recordings stored without one."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pipelines.errors import ModelError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from pipelines.types import SpeakerTurn


class Embedder(Protocol):
    """A speaker-embedding model that embeds windows cut from the audio on their own.

    ``__call__(waveforms (B, samples) float32, masks (B, frames) float32) -> (B, dim)``:
    one embedding per waveform, pooled over the frames where the mask is 1 (the mask is
    stretched over the waveform, whatever its frame count). Audio at ``sample_rate``.
    """

    sample_rate: int

    def __call__(self, waveforms: NDArray[np.float32], masks: NDArray[np.float32]) -> Any: ...


class RecordingEmbedder(Protocol):
    """A speaker-embedding model that embeds windows of a whole recording, as a diarizer
    that computes its features over the recording does (``SourcebookDiarization``).

    ``embed_windows(audio, starts (N,) seconds, masks (N, frames)) -> (N, dim)``, audio at
    ``sample_rate``; ``window`` and ``step`` (seconds) are the diarizer's chunk grid.
    """

    sample_rate: int
    window: float
    step: float

    def embed_windows(
        self, audio: NDArray[np.float32], starts: NDArray[np.float64], masks: NDArray[np.float32]
    ) -> Any: ...


class _PyannoteEmbedder:
    """Adapter for pyannote's embedding inference (``SpeakerDiarization._embedding``).

    Relies only on: ``inference(waveforms: Tensor (B, 1, samples), masks=Tensor (B, frames))
    -> ndarray (B, dim)`` and ``inference.sample_rate``, which every pyannote 3.x/4.x
    ``PretrainedSpeakerEmbedding`` provides, whatever model class is behind it.
    """

    def __init__(self, inference: Any) -> None:
        self._inference = inference
        self.sample_rate = int(inference.sample_rate)

    def __call__(self, waveforms: NDArray[np.float32], masks: NDArray[np.float32]) -> Any:
        import torch  # heavy: only where a diarizer is loaded anyway

        w = torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32)).unsqueeze(1)
        m = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32))
        return self._inference(w, masks=m)


def embedder_from_diarizer(diarizer: object) -> Embedder | RecordingEmbedder:
    """The embedding model a loaded diarizer uses, as it uses it.

    Looks for, in order: ``diarizer.embedder`` (an :class:`Embedder` or
    :class:`RecordingEmbedder`, if the diarizer offers one); the pipeline's own
    ``diarizer.pipeline.recording_embedder()`` (``SourcebookDiarization``: CAM++ features
    over the whole recording, as its diarization computes them); then pyannote's
    ``diarizer.pipeline._embedding``, which embeds each window on its own. Raises
    ``ModelError`` when none is there (the diarizer changed: give it an ``embedder``).
    """
    own = getattr(diarizer, "embedder", None)
    if own is not None and hasattr(own, "sample_rate") and (
        callable(own) or hasattr(own, "embed_windows")
    ):
        return own  # type: ignore[no-any-return]
    pipeline = getattr(diarizer, "pipeline", None)
    make = getattr(pipeline, "recording_embedder", None)
    if callable(make):
        recording = make()
        if recording is not None:
            return recording  # type: ignore[no-any-return]
    inference = getattr(pipeline, "_embedding", None)
    if inference is None or not callable(inference) or not hasattr(inference, "sample_rate"):
        raise ModelError(
            "this diarizer exposes no speaker-embedding model (neither .embedder nor "
            "pyannote's .pipeline._embedding): embeddings cannot be recomputed; "
            "re-transcribe the recording instead"
        )
    return _PyannoteEmbedder(inference)


#: Window and hop of the recomputation, unless the embedder gives its diarizer's grid:
#: pyannote's (10 s chunks every 1 s, as configured by `sourcebook models install`). On
#: labels with 5-7 s of speech a 2.5 s hop agreed with pyannote's centroid only to cosine
#: 0.965 (1 s: 0.992 or more); on long recordings MAX_WINDOWS bounds the work anyway.
WINDOW_S = 10.0
STEP_S = 1.0
#: pyannote keeps a chunk's embedding for clustering only if the speaker talks alone for
#: at least this share of it; a label without such a chunk gets no embedding (as there).
MIN_ACTIVE_RATIO = 0.2
#: Bound on the work per label: windows spread evenly over the recording beyond this.
#: Estimate, not measured on long real speech: 16 chunk embeddings of one voice with
#: pairwise cosine ~0.7 average to within cosine ~0.99 of the mean of all of them. It costs
#: 16 CAM++ passes per label, against one per second of audio for diarization.
MAX_WINDOWS = 16
_FRAMES_PER_S = 100
_BATCH = 16


def chunk_starts(num_samples: int, rate: int, window: float, step: float) -> list[float]:
    """Starts (seconds) of pyannote's chunks over ``num_samples``: whole windows every
    ``step``, then one zero-padded window on the same grid where audio is left over."""
    size, hop = round(window * rate), round(step * rate)
    whole = (num_samples - size) // hop + 1 if num_samples >= size else 0
    count = whole + int(num_samples < size or (num_samples - size) % hop > 0)
    return [c * step for c in range(count)]


def embed_labels(
    embedder: Embedder | RecordingEmbedder | Callable[..., Any],
    waveform: ArrayLike,
    turns: Iterable[SpeakerTurn],
    *,
    labels: Iterable[str] | None = None,
    step: float | None = None,
    max_windows: int = MAX_WINDOWS,
) -> dict[str, NDArray[np.float64] | None]:
    """One embedding per label, comparable with ``Diarization.embeddings``.

    ``waveform`` is mono audio at the embedder's sample rate (16 kHz), ``turns`` the
    recording's speaker turns (all labels: overlapped speech is left out, as pyannote
    does). For each label: the diarizer's chunks (the embedder's ``window`` every ``step``
    seconds; else 10 s every ``step``, default 1 s) in which the label speaks alone at least
    a fifth of the window, at most ``max_windows`` of them (spread evenly), each embedded
    with the label's frames as mask; the mean of the raw embeddings, as pyannote's
    centroid is. None for a label with no such window (too little speech to be recognised
    reliably).
    """
    audio = np.asarray(waveform, dtype=np.float32).reshape(-1)
    rate = int(getattr(embedder, "sample_rate", 16000))
    window_s = float(getattr(embedder, "window", WINDOW_S))
    step_s = step if step is not None else float(getattr(embedder, "step", STEP_S))
    turn_list = list(turns)
    wanted = sorted(set(labels) if labels is not None else {t.speaker for t in turn_list})
    result: dict[str, NDArray[np.float64] | None] = dict.fromkeys(wanted)
    duration = audio.size / rate
    if duration <= 0 or not wanted:
        return result
    starts = chunk_starts(audio.size, rate, window_s, step_s)
    win = round(window_s * _FRAMES_PER_S)
    n_frames = max(math.ceil(duration * _FRAMES_PER_S), round(starts[-1] * _FRAMES_PER_S) + win)
    activity: dict[str, NDArray[np.float32]] = {}
    for t in turn_list:
        a = activity.setdefault(t.speaker, np.zeros(n_frames, dtype=np.float32))
        lo = max(0, round(t.start * _FRAMES_PER_S))
        hi = min(n_frames, round(t.end * _FRAMES_PER_S))
        a[lo:hi] = 1.0
    total = sum(activity.values(), np.zeros(n_frames, dtype=np.float32))

    jobs: list[tuple[float, str, NDArray[np.float32]]] = []
    for label in wanted:
        own = activity.get(label)
        if own is None:
            continue
        clean = own * (total < 2)
        picked: list[tuple[float, NDArray[np.float32]]] = []
        for s in starts:
            first = round(s * _FRAMES_PER_S)
            mask = clean[first : first + win]
            if mask.sum() >= MIN_ACTIVE_RATIO * win:
                picked.append((s, mask))
        if len(picked) > max_windows:
            idx = np.linspace(0, len(picked) - 1, max_windows).round().astype(int)
            picked = [picked[i] for i in sorted(set(idx.tolist()))]
        jobs.extend((s, label, m) for s, m in picked)
    # Same window for several labels side by side: a CAM++ pass can be shared between them.
    jobs.sort(key=lambda j: (j[0], j[1]))
    if not jobs:
        return result
    masks = np.stack([m for _, _, m in jobs])
    if hasattr(embedder, "embed_windows"):
        starts_s = np.array([s for s, _, _ in jobs], dtype=np.float64)
        out = np.asarray(embedder.embed_windows(audio, starts_s, masks), dtype=np.float64)
    else:
        out = _embed_cut_windows(embedder, audio, rate, window_s, jobs, masks)
    if out.ndim != 2 or out.shape[0] != len(jobs):
        raise ModelError(f"the embedding model returned shape {out.shape} for {len(jobs)}")
    sums: dict[str, NDArray[np.float64]] = {}
    counts: dict[str, int] = {}
    for k, (_, label, _) in enumerate(jobs):
        if np.all(np.isfinite(out[k])):
            sums[label] = sums.get(label, 0.0) + out[k]
            counts[label] = counts.get(label, 0) + 1
    for label, total_vec in sums.items():
        result[label] = total_vec / counts[label]
    return result


def _embed_cut_windows(
    embedder: Embedder | Callable[..., Any],
    audio: NDArray[np.float32],
    rate: int,
    window_s: float,
    jobs: Sequence[tuple[float, str, NDArray[np.float32]]],
    masks: NDArray[np.float32],
) -> NDArray[np.float64]:
    """(N, dim) embeddings of the jobs' windows, each cut from ``audio`` and embedded alone."""
    win_samples = round(window_s * rate)
    parts: list[NDArray[np.float64]] = []
    for b in range(0, len(jobs), _BATCH):
        batch = jobs[b : b + _BATCH]
        waves = np.zeros((len(batch), win_samples), dtype=np.float32)
        for k, (s, _, _) in enumerate(batch):
            lo = round(s * rate)
            chunk = audio[lo : lo + win_samples]
            waves[k, : chunk.size] = chunk  # zero padded at the end, as pyannote pads
        out = np.asarray(embedder(waves, masks[b : b + _BATCH]), dtype=np.float64)
        if out.ndim != 2 or out.shape[0] != len(batch):
            raise ModelError(f"the embedding model returned shape {out.shape} for {len(batch)}")
        parts.append(out)
    return np.concatenate(parts)
