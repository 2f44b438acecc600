"""The Whisper side of alignment: the text's tokens and the cross-attention timing, for
faster-whisper (CTranslate2) and openai-whisper models."""

from __future__ import annotations

import base64
import importlib.util
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pipelines.align.spans import Waveform
from pipelines.errors import ModelError

#: Encoder frames per second (10 ms mel hop, stride-2 convolution).
_FRAMES_PER_SECOND = 50


class Engine(Protocol):
    """What an ASR backend's model must offer for alignment."""

    name: str
    multilingual: bool

    def tokens(self, text: str) -> tuple[list[int], list[bytes]]: ...

    def supports(self, language: str) -> bool: ...

    def encode(self, audio: Waveform, min_seconds: float) -> Any: ...

    def align(
        self, state: Any, language: str, tokens: list[int]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...


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
    import tiktoken  # only where alignment runs (openai-whisper brings it)

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


class CT2Engine:
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


class OpenAIEngine:
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
        # find_alignment runs the model on this mel as given: it must be on the model's device.
        return whisper.pad_or_trim(mel[:, :frames], N_FRAMES).to(self._model.device), frames

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
