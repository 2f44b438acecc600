"""SOURCEBOOK_DEVICE: one resolver, the effective compute type, and the loaders getting both.

No GPU runs these: CUDA's presence is monkeypatched on torch and CTranslate2, and the
loaders are replaced by recorders (the CUDA path itself is untested in CI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.device import compute_type_for, effective_compute_type, resolve_device
from pipelines.errors import ModelError
from pipelines.runner import ModelCache


def _cuda(monkeypatch: pytest.MonkeyPatch, *, torch_sees: bool, ct2_devices: int) -> None:
    import ctranslate2
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: torch_sees)
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: ct2_devices)


def test_cpu_is_cpu_whatever_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    _cuda(monkeypatch, torch_sees=True, ct2_devices=1)
    assert resolve_device("cpu") == "cpu"


def test_auto_is_cpu_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    _cuda(monkeypatch, torch_sees=False, ct2_devices=0)
    assert resolve_device("auto") == "cpu"
    # Both libraries must see a device: torch alone would leave faster-whisper on the CPU
    # build of CTranslate2, which fails to load on "cuda".
    _cuda(monkeypatch, torch_sees=True, ct2_devices=0)
    assert resolve_device("auto") == "cpu"


def test_auto_and_cuda_are_cuda_where_both_see_a_device(monkeypatch: pytest.MonkeyPatch) -> None:
    _cuda(monkeypatch, torch_sees=True, ct2_devices=1)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda"


def test_cuda_without_a_device_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    _cuda(monkeypatch, torch_sees=False, ct2_devices=0)
    with pytest.raises(ModelError) as info:
        resolve_device("cuda")
    message = str(info.value)
    assert "SOURCEBOOK_DEVICE=cuda but no CUDA device is visible" in message
    assert "CUDA build of torch and CTranslate2" in message
    assert "SOURCEBOOK_DEVICE=cpu" in message


def test_an_unknown_device_lists_the_choices() -> None:
    with pytest.raises(ModelError, match="auto, cpu, cuda"):
        resolve_device("tpu")


def test_effective_compute_type() -> None:
    assert effective_compute_type("cpu", "int8") == "int8"
    assert effective_compute_type("cuda", "int8") == "float16"
    # An explicit choice is kept on either device.
    assert effective_compute_type("cuda", "int8_float16") == "int8_float16"
    assert effective_compute_type("cpu", "float32") == "float32"
    # openai-whisper ignores CTranslate2's setting: float32 on the CPU, float16 on CUDA.
    assert compute_type_for("faster-whisper", "cuda", "int8") == "float16"
    assert compute_type_for("openai-whisper", "cpu", "int8") == "float32"
    assert compute_type_for("openai-whisper", "cuda", "int8") == "float16"


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Path, dict[str, Any]]] = []

    def __call__(self, path: Path, **kwargs: Any) -> object:
        self.calls.append((path, kwargs))
        return object()


@pytest.mark.parametrize(("device", "ct2_type"), [("cpu", "int8"), ("cuda", "float16")])
def test_the_cache_passes_its_device_to_every_loader(
    monkeypatch: pytest.MonkeyPatch, models_dir: Path, device: str, ct2_type: str
) -> None:
    import pipelines.asr.faster
    import pipelines.asr.openai
    import pipelines.diarize

    faster, openai, diarizer = _Recorder(), _Recorder(), _Recorder()
    monkeypatch.setattr(pipelines.asr.faster, "load_faster_whisper", faster)
    monkeypatch.setattr(pipelines.asr.openai, "load_openai_whisper", openai)
    monkeypatch.setattr(pipelines.diarize, "load_diarizer", diarizer)
    cache = ModelCache(models_dir, device=device) if device != "cpu" else ModelCache(models_dir)

    cache.asr("faster-whisper", "tiny.en", "int8")
    cache.asr("openai-whisper", "tiny.en", "int8")
    cache.diarizer(None)

    assert faster.calls[0][1] == {"compute_type": ct2_type, "cpu_threads": 0, "device": device}
    assert openai.calls[0][1] == {"threads": None, "device": device}
    assert diarizer.calls[0][1] == {"device": device}
    # The same model asked again is the cached one (the key holds the effective type).
    cache.asr("faster-whisper", "tiny.en", "int8")
    assert len(faster.calls) == 1
