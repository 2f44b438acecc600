"""Our pyannote ``SpeakerDiarization``: CAM++ run once over the recording, bounded clustering.

pyannote's pipeline embeds every (10 s chunk, local speaker) pair by running the embedding
network on the chunk's audio. Chunks overlap (a 1 s step over 10 s windows), so every second
of audio went through CAM++ ten times, which made diarization cost twice the ASR.
:class:`SourcebookDiarization` changes two steps and keeps pyannote for the rest:

- **Embeddings**: CAM++'s frame features (one per 20 ms) are computed once for the whole
  recording, block by block, and each (chunk, speaker) embedding pools the chunk's span of
  them under the speaker's mask, as pyannote's per-chunk path would. Blocks are streamed:
  only a few blocks of features are held at once, whatever the length.
- **Clustering**: agglomerative clustering needs memory quadratic in the number of
  embeddings (3 h at a 1 s step: ~16 000 of them, a 1 GB distance matrix). Beyond
  ``max_clustered`` embeddings, an evenly spaced subset is clustered (with the minimum
  cluster size scaled to the subset) and pyannote assigns every embedding to the nearest
  centroid, as it already does for the embeddings it leaves out of clustering.

Both fall back to pyannote's own steps for anything else (another embedding model, audio
given as a path), so the class can serve any pipeline directory.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

with warnings.catch_warnings():
    # pyannote warns at import that torchcodec cannot load; we never let it decode audio.
    warnings.filterwarnings("ignore", message=r"\s*torchcodec", category=UserWarning)
    from pyannote.audio.pipelines import SpeakerDiarization
    from pyannote.audio.pipelines.clustering import AgglomerativeClustering
    from pyannote.core import SlidingWindowFeature

from pipelines.campplus import FRAME_SHIFT_S, CAMPPlusEmbedding
from pipelines.voices.recompute import chunk_starts

#: Network frames (20 ms) per second.
_FRAME_RATE = round(1.0 / FRAME_SHIFT_S)
#: Samples per network frame at 16 kHz (two 10 ms fbank hops).
_HOP = 320


class SubsampledAgglomerativeClustering(AgglomerativeClustering):
    """pyannote's agglomerative clustering, on at most ``max_clustered`` embeddings."""

    def __init__(self, metric: str = "cosine", max_clustered: int = 5000) -> None:
        super().__init__(metric=metric)
        self.max_clustered = max_clustered
        # cluster() reads the min_cluster_size hyper-parameter; it is scaled for a subset
        # for the duration of one call, so concurrent calls take turns.
        self._lock = threading.Lock()

    def cluster(
        self,
        embeddings: np.ndarray,
        min_clusters: int | None = None,
        max_clusters: int | None = None,
        num_clusters: int | None = None,
    ) -> np.ndarray:
        n = embeddings.shape[0]
        if n <= self.max_clustered:
            return super().cluster(  # type: ignore[no-any-return]
                embeddings, min_clusters=min_clusters, max_clusters=max_clusters,
                num_clusters=num_clusters,
            )
        # Evenly spaced in time (embeddings come in chunk order), so every part of a long
        # interview is represented.
        subset = np.unique(np.linspace(0, n - 1, self.max_clustered).round().astype(np.int64))
        with self._lock:
            full_size = self.min_cluster_size
            self.min_cluster_size = max(2, round(full_size * len(subset) / n))
            try:
                labels = super().cluster(
                    embeddings[subset].copy(), min_clusters=min_clusters,
                    max_clusters=max_clusters, num_clusters=num_clusters,
                )
            finally:
                self.min_cluster_size = full_size
        # Every embedding to the nearest centroid of the subset's clusters (cosine).
        unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        ids = np.unique(labels)
        centroids = np.stack([unit[subset][labels == k].mean(axis=0) for k in ids])
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        nearest: np.ndarray = np.argmax(unit @ centroids.T, axis=1)
        return nearest


class SourcebookDiarization(SpeakerDiarization):  # type: ignore[misc]
    """``SpeakerDiarization`` with recording-wide CAM++ features and bounded clustering.

    ``embedding_block``: seconds of audio per CAM++ pass (plus ``embedding_margin`` seconds
    of context on each side, whose frames are dropped). ``max_clustered``: the most
    embeddings agglomerative clustering handles at once.
    """

    def __init__(
        self,
        *,
        embedding_block: float = 30.0,
        embedding_margin: float = 2.0,
        max_clustered: int = 5000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.embedding_block = embedding_block
        self.embedding_margin = embedding_margin
        if type(self.clustering) is AgglomerativeClustering:
            self.clustering = SubsampledAgglomerativeClustering(
                metric=self.clustering.metric, max_clustered=max_clustered
            )

    # ------------------------------------------------------------------ embeddings

    def get_embeddings(
        self,
        file: Any,
        binary_segmentations: SlidingWindowFeature,
        exclude_overlap: bool = False,
        hook: Callable[..., None] | None = None,
    ) -> np.ndarray:
        model = self._embedding.model_
        window = binary_segmentations.sliding_window
        waveform = file.get("waveform") if isinstance(file, dict) else None
        if (
            self.training
            or not isinstance(model, CAMPPlusEmbedding)
            or not isinstance(waveform, torch.Tensor)
            or file.get("sample_rate") != 16000
            or waveform.shape[0] != 1
        ):
            return super().get_embeddings(  # type: ignore[no-any-return]
                file, binary_segmentations, exclude_overlap=exclude_overlap, hook=hook
            )
        masks = self._pooling_masks(binary_segmentations, exclude_overlap)
        num_chunks, num_speakers, _ = masks.shape
        chunk_frames = _frames_for(window.duration)
        starts = [round(window[c].start * _FRAME_RATE) for c in range(num_chunks)]
        total = starts[-1] + chunk_frames
        audio = waveform[0]

        out = np.zeros((num_chunks, num_speakers, model.dimension), dtype=np.float32)
        blocks = list(self._blocks(total))
        if hook is not None:
            hook("embeddings", None, total=len(blocks), completed=0)
        next_chunk = 0
        buffer_start, buffer = 0, torch.zeros(0)
        with torch.inference_mode():
            for i, (core_end, frames) in enumerate(self._features(model, audio, blocks)):
                buffer = frames if buffer.numel() == 0 else torch.cat([buffer, frames], dim=1)
                ready = next_chunk
                while ready < num_chunks and starts[ready] + chunk_frames <= core_end:
                    ready += 1
                # Pool in small groups: a chunk's features are 512 x 500 floats.
                for group in range(next_chunk, ready, 8):
                    ids = range(group, min(group + 8, ready))
                    x = torch.stack(
                        [buffer[:, starts[c] - buffer_start : starts[c] - buffer_start
                                + chunk_frames] for c in ids]
                    )
                    w = _resample(torch.from_numpy(masks[ids.start : ids.stop]), chunk_frames)
                    out[ids.start : ids.stop] = model.pool(x, w.to(x.device)).cpu().numpy()
                next_chunk = ready
                if next_chunk < num_chunks:
                    keep = starts[next_chunk] - buffer_start
                    buffer, buffer_start = buffer[:, keep:], starts[next_chunk]
                if hook is not None:
                    hook("embeddings", None, total=len(blocks), completed=i + 1)
        return out

    def _pooling_masks(
        self, segmentations: SlidingWindowFeature, exclude_overlap: bool
    ) -> np.ndarray:
        """(chunks, speakers, frames) weights, chosen as pyannote's get_embeddings does."""
        data = np.nan_to_num(segmentations.data, nan=0.0).astype(np.float32)
        masks = np.transpose(data, (0, 2, 1))  # (chunks, speakers, frames)
        if not exclude_overlap:
            return np.ascontiguousarray(masks)
        num_frames = data.shape[1]
        # Frames where one speaker talks alone, unless too few remain to embed.
        seconds = segmentations.sliding_window.duration
        min_frames = math.ceil(
            num_frames * self._embedding.min_num_samples / (seconds * self._embedding.sample_rate)
        )
        clean = masks * (data.sum(axis=2) < 2)[:, None, :]
        enough = clean.sum(axis=2, keepdims=True) > min_frames
        return np.ascontiguousarray(np.where(enough, clean, masks))

    def _blocks(self, total: int) -> Iterator[tuple[int, int]]:
        """(core start, core end) in network frames covering [0, total)."""
        step = max(1, round(self.embedding_block * _FRAME_RATE))
        for start in range(0, total, step):
            yield start, min(start + step, total)

    def _features(
        self, model: CAMPPlusEmbedding, audio: torch.Tensor, blocks: list[tuple[int, int]]
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Per block: where its core ends and the core's frame features (C, frames)."""
        margin = round(self.embedding_margin * _FRAME_RATE)
        last = blocks[-1][1]
        for block in blocks:
            yield block[1], _block_features(model, audio, block, margin, last)

    def recording_embedder(self) -> RecordingEmbedder | None:
        """Embeddings of windows of a recording as :meth:`get_embeddings` makes them, for
        :func:`pipelines.voices.embed_labels`; None for an embedding model other than CAM++."""
        model = self._embedding.model_
        return RecordingEmbedder(self, model) if isinstance(model, CAMPPlusEmbedding) else None


class RecordingEmbedder:
    """CAM++ embeddings of windows (chunks) of one recording, from the diarizer's features.

    A diarizer's chunk embedding pools frame features computed over 30 s blocks of the whole
    recording (:meth:`SourcebookDiarization.get_embeddings`), not over the chunk alone: the
    fbank is mean-normalised per block and the network sees the block's context. Embedding a
    chunk on its own gives another vector (cosine 0.96 on a label of pyannote's sample). This
    computes the features exactly so (the same blocks, margins and zero padding at the end),
    only for the blocks the windows touch, so a window of the diarizer's chunk grid pooled
    under the diarizer's mask gives the diarizer's embedding.
    """

    sample_rate = 16000

    def __init__(self, pipeline: SourcebookDiarization, model: CAMPPlusEmbedding) -> None:
        self._pipeline = pipeline
        self._model = model
        #: The diarizer's chunk grid (seconds): windows of ``window`` every ``step``.
        self.window = float(pipeline._segmentation.duration)
        self.step = float(pipeline._segmentation.step)

    def embed_windows(
        self, audio: np.ndarray, starts: np.ndarray, masks: np.ndarray
    ) -> np.ndarray:
        """(N, dim) embeddings of the windows at ``starts`` (seconds) of mono 16 kHz
        ``audio``, each pooled under its mask (N, any number of frames over the window)."""
        wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32).reshape(-1))
        chunk_frames = _frames_for(self.window)
        # The diarizer's last chunk decides where its features end (zero padded past the
        # audio), and so the last block: the same here, for the same audio.
        last_chunk = chunk_starts(wave.shape[0], self.sample_rate, self.window, self.step)[-1]
        total = round(last_chunk * _FRAME_RATE) + chunk_frames
        blocks = list(self._pipeline._blocks(total))
        margin = round(self._pipeline.embedding_margin * _FRAME_RATE)
        firsts = [round(float(s) * _FRAME_RATE) for s in starts]
        out = np.zeros((len(firsts), self._model.dimension), dtype=np.float32)
        cache: dict[int, torch.Tensor] = {}
        with torch.inference_mode():
            for i in np.argsort(firsts, kind="stable"):
                first = firsts[i]
                # Blocks that end before this window are not needed again (sorted starts).
                for b in [b for b in cache if blocks[b][1] <= first]:
                    del cache[b]
                parts = []
                for b, (core_start, core_end) in enumerate(blocks):
                    lo, hi = max(core_start, first), min(core_end, first + chunk_frames)
                    if lo >= hi:
                        continue
                    if b not in cache:
                        cache[b] = _block_features(self._model, wave, blocks[b], margin, total)
                    parts.append(cache[b][:, lo - core_start : hi - core_start])
                if not parts:
                    raise ValueError(f"a window starts at {starts[i]} s, past the audio")
                frames = torch.cat(parts, dim=1)
                # Only a window beyond the diarizer's last chunk runs short.
                frames = F.pad(frames, (0, chunk_frames - frames.shape[1]))
                mask = torch.from_numpy(np.asarray(masks[i], dtype=np.float32))
                w = _resample(mask[None, None, :], chunk_frames)[0]
                out[i] = self._model.pool(frames[None], w.to(frames.device)).cpu().numpy()[0]
        return out


def _block_features(
    model: CAMPPlusEmbedding,
    audio: torch.Tensor,
    core: tuple[int, int],
    margin: int,
    last: int,
) -> torch.Tensor:
    """Frame features (C, frames) of the block ``core`` (network frames), computed with
    ``margin`` frames of context each side, within [0, ``last``)."""
    core_start, core_end = core
    start = max(0, core_start - margin)
    end = min(last, core_end + margin)
    # Network frame j of a span starting at sample s covers fbank frames 2j, 2j+1.
    span = audio[start * _HOP : end * _HOP + 400 - 160]
    # pyannote zero-pads the last chunk past the end of the audio: so do we (per span:
    # padding the whole recording would copy it).
    short = (end - start) * _HOP + 400 - 160 - span.shape[0]
    if short > 0:
        span = F.pad(span, (0, short))
    # The recording stays in host memory; only this span goes to the model's device (a
    # no-op on the CPU), and the features stay there until pooled.
    feats = model.compute_fbank(span[None, None, :].to(model.device))
    frames: torch.Tensor = model.frames(feats)[0]
    return frames[:, core_start - start : core_end - start]


def _frames_for(seconds: float) -> int:
    """Network frames CAM++ gives for ``seconds`` of audio (as for one pyannote chunk)."""
    fbank = 1 + (round(seconds * 16000) - 400) // 160
    return (fbank + 1) // 2


def _resample(masks: torch.Tensor, frames: int) -> torch.Tensor:
    """Masks (chunks, speakers, F) at segmentation frames to (chunks, speakers, frames)."""
    chunks, speakers, num_frames = masks.shape
    flat = masks.reshape(chunks * speakers, 1, num_frames)
    # "nearest", as CAMPPlusEmbedding.forward maps pyannote's masks.
    return F.interpolate(flat, size=frames, mode="nearest").reshape(chunks, speakers, frames)
