"""Fixtures for pipeline tests: installed models and the pyannote sample recording."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: 30 s, two speakers, telephone English, with reference turns (RTTM) and transcript (STM).
SAMPLE_DIR = REPO_ROOT / ".venv/lib/python3.11/site-packages/pyannote/audio/sample"


def decode(path: Path, sample_rate: int = 16000) -> np.ndarray:
    """Decode any media to mono float32 at ``sample_rate`` with ffmpeg."""
    raw = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-f",
            "f32le",
            "-ac",
            "1",
            "-ar",
            str(sample_rate),
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE_DIR / "sample.wav").is_file():
        pytest.skip("pyannote.audio's sample recording is not installed")
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_audio(sample_dir: Path) -> np.ndarray:
    return decode(sample_dir / "sample.wav")
