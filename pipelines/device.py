"""Which device the models run on: the one place that decides "cpu" or "cuda".

CPU is the default and the tested path. "cuda" needs a CUDA build of both torch (pyannote,
openai-whisper) and CTranslate2 (faster-whisper) on the worker, so "auto" picks it only
when both see a device. The CUDA path has not been run on a GPU in CI.
"""

from __future__ import annotations

from typing import Literal

from pipelines.errors import ModelError

Device = Literal["cpu", "cuda"]
#: What a worker may be configured with (SOURCEBOOK_DEVICE).
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: The compute type the CPU default names; on CUDA it becomes float16 (int8 on a GPU
#: gives up accuracy for little speed there, and float16 is what CTranslate2 is tuned for).
CPU_DEFAULT_COMPUTE_TYPE = "int8"
CUDA_DEFAULT_COMPUTE_TYPE = "float16"


def cuda_visible() -> bool:
    """Whether both torch and CTranslate2 see a CUDA device (imports both: a worker only)."""
    import torch

    if not torch.cuda.is_available():
        return False
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count()) > 0


def resolve_device(requested: str) -> Device:
    """"cpu" or "cuda" for a configured "auto", "cpu" or "cuda".

    "cpu" imports nothing. "cuda" without a visible device raises :class:`ModelError`
    naming the fix; "auto" falls back to the CPU.
    """
    if requested == "cpu":
        return "cpu"
    if requested not in DEVICE_CHOICES:
        raise ModelError(f"unknown device {requested[:50]!r}: set SOURCEBOOK_DEVICE to "
                         f"{', '.join(DEVICE_CHOICES)}")
    if cuda_visible():
        return "cuda"
    if requested == "cuda":
        raise ModelError(
            "SOURCEBOOK_DEVICE=cuda but no CUDA device is visible to both torch and "
            "CTranslate2: install a CUDA build of torch and CTranslate2 on this worker (and "
            "give its container the GPU), or set SOURCEBOOK_DEVICE=cpu")
    return "cpu"


def effective_compute_type(device: str, compute_type: str) -> str:
    """The CTranslate2 compute type to load with on ``device``: on CUDA the CPU default
    (int8) becomes float16; any other configured value is kept as given."""
    if device == "cuda" and compute_type == CPU_DEFAULT_COMPUTE_TYPE:
        return CUDA_DEFAULT_COMPUTE_TYPE
    return compute_type


def compute_type_for(backend: str, device: str, compute_type: str) -> str:
    """What a run of ``backend`` computes in, as a job records it: CTranslate2's effective
    compute type for faster-whisper; openai-whisper decodes in float16 on CUDA and float32
    on the CPU whatever the setting."""
    if backend == "openai-whisper":
        return CUDA_DEFAULT_COMPUTE_TYPE if device == "cuda" else "float32"
    return effective_compute_type(device, compute_type)
