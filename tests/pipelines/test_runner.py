"""runner.run's wiring with static models: normalise -> transcribe -> diarize -> merge.

No model is loaded: the cache's loaders are replaced by ones returning
:class:`StaticAsrBackend` and :class:`StaticDiarizer`, so what is checked is the runner's
part (options passed on, stages reported, speakers assigned from the diarizer's turns).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

import pipelines.asr.faster
import pipelines.diarize
from pipelines.asr.base import StaticAsrBackend
from pipelines.diarize import Diarizer, StaticDiarizer
from pipelines.models import DIARIZATION_DIR
from pipelines.runner import ModelCache, RunOptions, run
from pipelines.types import AsrSegment, SpeakerTurn, Transcription, Word


def _words(start: float, *texts: str) -> tuple[Word, ...]:
    return tuple(
        Word(start=start + i * 0.5, end=start + i * 0.5 + 0.4, text=t, probability=0.9)
        for i, t in enumerate(texts)
    )


TRANSCRIPTION = Transcription(
    language="en",
    language_probability=1.0,
    duration=4.0,
    segments=(
        AsrSegment(start=0.0, end=1.4, text=" Where were you born?",
                   words=_words(0.0, " Where", " were", " you", " born?")),
        AsrSegment(start=2.0, end=3.4, text=" In a small town.",
                   words=_words(2.0, " In", " a", " small", " town.")),
    ),
    backend="static",
    model="static",
)
TURNS = (
    SpeakerTurn(start=2.0, end=4.0, speaker="SPEAKER_01"),
    SpeakerTurn(start=0.0, end=1.6, speaker="SPEAKER_00"),
)


@pytest.fixture
def tone(tmp_path: Path) -> Path:
    """Four seconds of a 440 Hz tone: the static models ignore what the audio says."""
    path = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi",
         "-i", "sine=frequency=440:duration=4", str(path)],
        check=True,
    )
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelCache, StaticDiarizer]:
    """A cache whose loaders hand out the static models (model files are empty stand-ins)."""
    models = tmp_path / "models"
    (models / "ct2").mkdir(parents=True)
    (models / "ct2" / "model.bin").touch()
    (models / DIARIZATION_DIR).mkdir()
    (models / DIARIZATION_DIR / "config.yaml").touch()
    diarizer = StaticDiarizer(TURNS, embeddings={"SPEAKER_00": (1.0, 0.0),
                                                 "SPEAKER_01": (0.0, 1.0)})

    def load_asr(path: Path, **kwargs: Any) -> StaticAsrBackend:
        return StaticAsrBackend(TRANSCRIPTION)

    def load_diarizer(path: Path, **kwargs: Any) -> StaticDiarizer:
        return diarizer

    monkeypatch.setattr(pipelines.asr.faster, "load_faster_whisper", load_asr)
    monkeypatch.setattr(pipelines.diarize, "load_diarizer", load_diarizer)
    return ModelCache(models), diarizer


def test_the_static_diarizer_is_a_diarizer() -> None:
    assert isinstance(StaticDiarizer(TURNS), Diarizer)


def test_run_assigns_speakers_from_the_diarizers_turns(
    tone: Path, cache: tuple[ModelCache, StaticDiarizer]
) -> None:
    models, diarizer = cache
    seen: list[tuple[str, float]] = []
    options = RunOptions(model=str(models.models_dir / "ct2"), language="en", num_speakers=2)

    result = run(tone, options, models=models, progress=lambda s, f: seen.append((s, f)))

    assert [(s.speaker, s.text.strip()) for s in result.segments] == [
        ("SPEAKER_00", "Where were you born?"),
        ("SPEAKER_01", "In a small town."),
    ]
    assert result.diarization.speakers == ("SPEAKER_00", "SPEAKER_01")
    assert dict(result.diarization.embeddings) == {"SPEAKER_00": (1.0, 0.0),
                                                   "SPEAKER_01": (0.0, 1.0)}
    assert diarizer.calls == [{"num_speakers": 2, "min_speakers": None, "max_speakers": None}]
    assert set(result.timings) == {"normalise", "transcribe", "diarize", "merge"}
    stages = list(dict.fromkeys(s for s, _ in seen))
    assert stages == ["normalise", "transcribe", "diarize", "merge"]


def test_run_without_diarization_leaves_one_speaker_unknown(
    tone: Path, cache: tuple[ModelCache, StaticDiarizer]
) -> None:
    models, diarizer = cache
    options = RunOptions(model=str(models.models_dir / "ct2"), language="en", diarize=False)

    result = run(tone, options, models=models)

    assert diarizer.calls == []
    assert result.diarization.turns == ()
    assert "diarize" not in result.timings
    assert len({s.speaker for s in result.segments}) == 1
