"""pipelines.audio against hostile files, with the real ffmpeg (issue 13, items 1 and 9).

Formats that make ffmpeg open other files or URLs are refused by every function that
reads a user's file (probe, check_decodable, normalise), with and without ffprobe; the
formats recorders write still work; and a maximum duration bounds normalise whatever
the header says.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.audio import (
    ALLOWED_DEMUXERS,
    check_decodable,
    detect_demuxer,
    normalise,
    probe,
)
from pipelines.audio import tools as audio_tools
from pipelines.audio.demuxers import input_args
from pipelines.errors import AudioError, DurationLimitError
from pipelines.types import AudioInfo

ACCEPTED = "Upload a WAV, MP3, M4A, FLAC, OGG or a video with an audio track."
LAVFI_TONE = ["-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-af", "tremolo=f=2"]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another recording's stored file: what the attacks try to read."""
    d = tmp_path_factory.mktemp("recordings") / "7"
    d.mkdir()
    path = d / "original.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=523:duration=12", "-c:a", "libmp3lame",
           str(path))
    return path


def _m3u8(entry: str) -> str:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:12,\n{entry}\n#EXT-X-ENDLIST\n"


#: Each makes the text of an attack file in ``attack_dir`` that points at ``secret``.
ATTACKS: dict[str, tuple[Callable[[Path, Path], str], str]] = {
    "m3u8-absolute": (lambda s, d: _m3u8(str(s)), "HLS playlist"),
    "m3u8-relative": (lambda s, d: _m3u8(os.path.relpath(s, d)), "HLS playlist"),
    "m3u8-file-url": (lambda s, d: _m3u8(f"file:{s}"), "HLS playlist"),
    "m3u8-http-url": (lambda s, d: _m3u8("http://127.0.0.1:9/x.mp3"), "HLS playlist"),
    "ffconcat": (lambda s, d: f"ffconcat version 1.0\nfile '{s}'\n", "concat list"),
    "sdp": (lambda s, d: "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
                         "m=audio 5004 RTP/AVP 0\n", "SDP session description"),
}


@pytest.fixture(params=["ffprobe", "ffmpeg-only"])
def tools(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with ffprobe, and as an install without it (probing parses ``ffmpeg -i``)."""
    if request.param == "ffmpeg-only":
        monkeypatch.setattr(audio_tools, "find_ffprobe", lambda: None)
    return str(request.param)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_references_are_refused_everywhere(
    secret: Path, tmp_path: Path, tools: str, attack: str
) -> None:
    make, kind = ATTACKS[attack]
    work = tmp_path / ".tmp" / "host"
    work.mkdir(parents=True)
    # An .mp3 name on purpose: detection goes by content.
    path = work / "interview.mp3"
    path.write_text(make(secret, work))
    out = tmp_path / "out" / "normalised.wav"
    for call in (detect_demuxer, probe, check_decodable, lambda p: normalise(p, out)):
        with pytest.raises(AudioError) as exc:
            call(path)
        message = str(exc.value)
        assert message.startswith("interview.mp3 is ") and kind in message
        assert ACCEPTED in message
        assert str(secret) not in message
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_a_forged_probe_result_cannot_unlock_a_refused_format(secret: Path, tmp_path: Path) -> None:
    """check_decodable forces the demuxer named by the probe result; only allowed ones."""
    path = tmp_path / "steal.m3u8"
    path.write_text(_m3u8(str(secret)))
    forged = AudioInfo(duration=12.0, sample_rate=44100, channels=1, codec="mp3",
                       format_name="hls")
    with pytest.raises(AudioError, match="'hls' format is not accepted"):
        check_decodable(path, info=forged)
    # Claiming an allowed format only makes ffmpeg read the playlist as that format.
    as_mp3 = AudioInfo(duration=12.0, sample_rate=44100, channels=1, codec="mp3",
                       format_name="mp3")
    with pytest.raises(AudioError, match="not an audio or video file"):
        check_decodable(path, info=as_mp3)


def test_input_options_pin_the_demuxer_and_protocol() -> None:
    assert input_args("wav") == ["-f", "wav", "-protocol_whitelist", "file"]
    mov = input_args("mov")
    assert mov[:4] == ["-f", "mov", "-protocol_whitelist", "file"]
    # External data references of mp4/mov stay off whatever ffmpeg's default is.
    assert mov[4:] == ["-enable_drefs", "0", "-use_absolute_path", "0"]
    with pytest.raises(ValueError):
        input_args("hls")
    assert not {"hls", "concat", "sdp", "image2", "tee", "data", "lavfi", "dash",
                "subfile", "tty", "vobsub"} & set(ALLOWED_DEMUXERS)


#: What recorders, phones, cameras and browsers write: (file name, ffmpeg output options,
#: the demuxer detection must find).
RECORDER_FORMATS = [
    ("a.wav", [], "wav"),
    ("a.rf64", ["-c:a", "pcm_s16le", "-rf64", "always", "-f", "wav"], "wav"),
    ("a.w64", [], "w64"),
    ("a.mp3", ["-c:a", "libmp3lame"], "mp3"),
    ("a.m4a", ["-c:a", "aac"], "mov"),
    ("a.3gp", ["-ar", "8000", "-ac", "1", "-c:a", "aac"], "mov"),
    ("a.mov", ["-c:a", "pcm_s16le"], "mov"),
    ("a.opus", ["-c:a", "libopus"], "ogg"),
    ("a.ogg", ["-c:a", "libvorbis"], "ogg"),
    ("a.flac", [], "flac"),
    ("a.webm", ["-c:a", "libopus"], "matroska"),
    ("a.mka", [], "matroska"),
    ("a.caf", [], "caf"),
    ("a.aiff", [], "aiff"),
    ("a.wma", [], "asf"),
    ("a.aac", ["-c:a", "aac", "-f", "adts"], "aac"),
    ("a.ac3", [], "ac3"),
    ("a.wv", [], "wv"),
    ("a.ts", ["-c:a", "aac"], "mpegts"),
    ("a.mpg", ["-c:a", "mp2"], "mpeg"),
    ("a.avi", ["-c:a", "pcm_s16le"], "avi"),
]


@pytest.mark.parametrize(("name", "opts", "demuxer"), RECORDER_FORMATS,
                         ids=[n for n, _, _ in RECORDER_FORMATS])
def test_recorder_formats_still_work(
    tmp_path: Path, tools: str, name: str, opts: list[str], demuxer: str
) -> None:
    src = tmp_path / name
    ffmpeg(*LAVFI_TONE, *opts, str(src))
    # A stored original is named original.<ext>; an upload waits as <pid>-<hex>.part.
    part = tmp_path / "1234-abcd.part"
    part.write_bytes(src.read_bytes())
    assert detect_demuxer(part) == demuxer
    info = check_decodable(part)
    assert info.duration == pytest.approx(4.0, abs=0.3) or info.duration == 0
    normalised = normalise(part, tmp_path / "n.wav")
    assert normalised.duration == pytest.approx(4.0, abs=0.3)


def test_video_with_audio_track_still_works(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=duration=3:size=64x64:rate=10", *LAVFI_TONE[:4],
           "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(src))
    assert probe(src).format_name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert normalise(src, tmp_path / "n.wav").duration == pytest.approx(3.0, abs=0.2)


# --- item 9: duration limits -------------------------------------------------------


@pytest.fixture(scope="module")
def long_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """90 s of tone at 6 kbit/s Opus (about 64 KB): long but small, like the 7.7 MB,
    three-hour file of the issue, scaled down so that a low limit shows the same."""
    d = tmp_path_factory.mktemp("long")
    tone = ["-f", "lavfi", "-i", "sine=frequency=300:duration=90", "-c:a", "libopus",
            "-b:a", "6k"]
    files = {"opus": d / "long.opus", "streamed": d / "streamed.mka"}
    ffmpeg(*tone, str(files["opus"]))
    # Written to a pipe, Matroska has no duration in its header: probe says 0, and only
    # decoding finds out how long it is.
    with files["streamed"].open("wb") as f:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *tone, "-f", "matroska",
                        "pipe:1"], stdout=f, check=True)
    return files


def test_long_small_file_is_what_it_claims(long_files: dict[str, Path]) -> None:
    assert long_files["opus"].stat().st_size < 100_000
    assert probe(long_files["opus"]).duration == pytest.approx(90.0, abs=0.5)
    assert probe(long_files["streamed"]).duration == 0  # not stated


def test_normalise_refuses_a_declared_duration_over_the_limit(
    long_files: dict[str, Path], tmp_path: Path
) -> None:
    dst = tmp_path / "n.wav"
    with pytest.raises(DurationLimitError) as exc:
        normalise(long_files["opus"], dst, max_duration=60.0)
    assert exc.value.declared and exc.value.limit == 60.0
    assert "says it is 0:01:30 long, over the maximum of 0:01:00" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_normalise_stops_a_file_that_decodes_past_the_limit(
    long_files: dict[str, Path], tmp_path: Path
) -> None:
    dst = tmp_path / "n.wav"
    with pytest.raises(DurationLimitError) as exc:
        normalise(long_files["streamed"], dst, max_duration=60.0)
    assert not exc.value.declared
    assert "decodes to more than 0:01:00" in str(exc.value)
    assert "Split it" in str(exc.value)
    assert list(tmp_path.iterdir()) == []  # neither the result nor its temp file


def test_normalise_accepts_what_fits(long_files: dict[str, Path], tmp_path: Path) -> None:
    info = normalise(long_files["streamed"], tmp_path / "n.wav", max_duration=90.5)
    assert info.duration == pytest.approx(90.0, abs=0.1)
    assert normalise(long_files["opus"], tmp_path / "m.wav").duration == pytest.approx(
        90.0, abs=0.1)
