"""Tests for pipelines.audio against the real ffmpeg: probing, validation, normalisation."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from pipelines.audio import SAMPLE_RATE, check_decodable, load_waveform, normalise, probe
from pipelines.errors import AudioError, CancelledError

ACCEPTED = "Upload a WAV, MP3, M4A, FLAC, OGG or a video with an audio track."


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def tone(path: Path, seconds: float = 6.0, rate: int = 44100, channels: int = 2) -> Path:
    # A 440 Hz tone with a 2 Hz tremolo: not silent, cheap to make.
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
        "-af",
        "tremolo=f=2",
        "-ac",
        str(channels),
        str(path),
    )
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    wav = tone(d / "tone.wav", seconds=12)
    files = {"wav": wav}
    files["mp3"] = d / "tone.mp3"
    ffmpeg("-i", str(wav), str(files["mp3"]))
    files["mp4"] = d / "video.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=3:size=64x64:rate=10",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:duration=3",
        "-c:v",
        "mpeg4",
        "-c:a",
        "aac",
        "-shortest",
        str(files["mp4"]),
    )
    files["noaudio"] = d / "noaudio.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=2:size=64x64:rate=10",
        "-c:v",
        "mpeg4",
        str(files["noaudio"]),
    )
    files["silent"] = d / "silent.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "4", str(files["silent"]))
    files["text"] = d / "notes.wav"
    files["text"].write_text("these are my interview notes, not audio\n" * 20)
    files["empty"] = d / "empty.mp3"
    files["empty"].write_bytes(b"")
    files["truncated"] = d / "truncated.mp3"
    files["truncated"].write_bytes(files["mp3"].read_bytes()[:4000])
    files["garbage"] = d / "garbage.mp3"
    files["garbage"].write_bytes(files["mp3"].read_bytes()[:300])
    return files


def test_probe_wav(media: dict[str, Path]) -> None:
    info = probe(media["wav"])
    assert info.sample_rate == 44100
    assert info.channels == 2
    assert info.codec == "pcm_s16le"
    assert info.format_name == "wav"
    assert info.duration == pytest.approx(12.0, abs=0.05)


def test_probe_mp3_and_video(media: dict[str, Path]) -> None:
    assert probe(media["mp3"]).codec == "mp3"
    info = probe(media["mp4"])
    assert info.codec == "aac"
    assert info.duration == pytest.approx(3.0, abs=0.2)


def test_probe_without_ffprobe_parses_ffmpeg(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.audio import tools

    monkeypatch.setattr(tools, "find_ffprobe", lambda: None)
    info = probe(media["wav"])
    assert (info.sample_rate, info.channels, info.codec) == (44100, 2, "pcm_s16le")
    assert info.duration == pytest.approx(12.0, abs=0.05)
    with pytest.raises(AudioError, match="not an audio or video file"):
        probe(media["text"])
    with pytest.raises(AudioError, match="no audio track"):
        probe(media["noaudio"])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("text", "notes.wav is not an audio or video file ffmpeg can decode"),
        ("empty", "empty.mp3 is empty"),
        ("garbage", "garbage.mp3 is not an audio or video file ffmpeg can decode"),
        ("noaudio", "noaudio.mp4 has no audio track"),
    ],
)
def test_probe_rejects_unusable_media(media: dict[str, Path], name: str, message: str) -> None:
    with pytest.raises(AudioError) as exc:
        probe(media[name])
    assert message in str(exc.value)
    assert ACCEPTED in str(exc.value)
    # The message names the file, never the server's storage path.
    assert str(media[name].parent) not in str(exc.value)


def test_check_decodable_accepts_good_media(media: dict[str, Path]) -> None:
    for name in ("wav", "mp3", "mp4"):
        assert check_decodable(media[name]).duration > 0


@pytest.mark.parametrize("name", ["text", "empty", "garbage", "noaudio", "truncated"])
def test_check_decodable_rejects_bad_media(media: dict[str, Path], name: str) -> None:
    with pytest.raises(AudioError) as exc:
        check_decodable(media[name])
    assert media[name].name in str(exc.value)


def test_truncated_file_message_says_so(media: dict[str, Path]) -> None:
    with pytest.raises(AudioError, match="truncated"):
        check_decodable(media["truncated"])
    with pytest.raises(AudioError, match="truncated"):
        normalise(media["truncated"], media["truncated"].parent / "t.wav")


def _wav_params(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as f:
        return f.getframerate(), f.getnchannels(), f.getsampwidth(), f.getcomptype() == "NONE"


@pytest.mark.parametrize("name", ["wav", "mp3", "mp4"])
def test_normalise_to_16k_mono_s16(media: dict[str, Path], tmp_path: Path, name: str) -> None:
    dst = tmp_path / "out" / "audio.wav"
    seen: list[tuple[str, float]] = []
    info = normalise(media[name], dst, progress=lambda s, f: seen.append((s, f)))
    assert _wav_params(dst) == (16000, 1, 2, True)
    assert (info.sample_rate, info.channels, info.codec, info.format_name) == (
        16000,
        1,
        "pcm_s16le",
        "wav",
    )
    assert info.duration == pytest.approx(probe(media[name]).duration, abs=0.1)
    assert probe(dst).codec == "pcm_s16le"
    fractions = [f for s, f in seen]
    assert {s for s, _ in seen} == {"normalise"}
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [p.name for p in dst.parent.iterdir()] == ["audio.wav"]  # no temp file left


def test_normalise_rejects_silence_and_leaves_nothing(
    media: dict[str, Path], tmp_path: Path
) -> None:
    dst = tmp_path / "silent16.wav"
    with pytest.raises(AudioError, match="silent") as exc:
        normalise(media["silent"], dst)
    assert "microphone" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_normalise_cancel_leaves_nothing(media: dict[str, Path], tmp_path: Path) -> None:
    def cancel(stage: str, fraction: float) -> None:
        raise CancelledError("stop")

    with pytest.raises(CancelledError):
        normalise(media["wav"], tmp_path / "x.wav", progress=cancel)
    assert list(tmp_path.iterdir()) == []


def test_normalise_replaces_existing_destination(media: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "a.wav"
    dst.write_bytes(b"old")
    normalise(media["mp3"], dst)
    assert _wav_params(dst)[0] == 16000


def test_file_names_that_look_like_options(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "-i"
    src.write_bytes(media["mp3"].read_bytes())
    weird = tmp_path / "http:evil.mp3"
    weird.write_bytes(media["mp3"].read_bytes())
    monkeypatch.chdir(tmp_path)  # relative names must not be read as options either
    assert probe(Path("-i")).codec == "mp3"
    assert probe(Path("http:evil.mp3")).codec == "mp3"
    info = normalise(Path("-i"), Path("-y.wav"))
    assert info.duration > 10
    assert (tmp_path / "-y.wav").is_file()


def test_load_waveform(media: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "n.wav"
    normalise(media["wav"], dst)
    x = load_waveform(dst)
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.shape[0] == pytest.approx(12 * SAMPLE_RATE, abs=200)
    assert type(x) is np.ndarray
    assert 0.05 < float(np.abs(x).max()) <= 1.0
    part = load_waveform(dst, start=1.0, end=2.5)
    assert part.shape[0] == int(1.5 * SAMPLE_RATE)
    np.testing.assert_array_equal(part, x[SAMPLE_RATE : int(2.5 * SAMPLE_RATE)])


def test_load_waveform_rejects_unnormalised(media: dict[str, Path]) -> None:
    with pytest.raises(AudioError, match="normalise"):
        load_waveform(media["wav"])  # 44.1 kHz stereo
    with pytest.raises(AudioError):
        load_waveform(media["text"])
