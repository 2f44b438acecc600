"""The ffmpeg binaries, and how their complaints about a user's file are told to the user."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.errors import AudioError, PipelineError

ACCEPTED = "Upload a WAV, MP3, M4A, FLAC, OGG or a video with an audio track."
PROBE_TIMEOUT_S = 60.0


def find_ffmpeg() -> str:
    """Path of the ffmpeg binary: the one on PATH, else imageio-ffmpeg's bundled one."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise PipelineError(
            "ffmpeg is not installed. Install it (Debian/Ubuntu: apt-get install ffmpeg; "
            "macOS: brew install ffmpeg) or pip install imageio-ffmpeg."
        ) from None
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def find_ffprobe() -> str | None:
    """Path of ffprobe, or None (then probing parses ``ffmpeg -i`` instead)."""
    return shutil.which("ffprobe")


def url(path: Path) -> str:
    # "file:" stops ffmpeg reading a leading "-" as an option or "x:" as a protocol.
    return "file:" + str(Path(path).resolve())


def clean_stderr(stderr: str, path: Path) -> str:
    """The last meaningful ffmpeg error line, with our absolute path replaced by the name."""
    file_url = url(path)
    lines = [
        ln.strip().replace(file_url, path.name).replace(str(Path(path).resolve()), path.name)
        for ln in stderr.splitlines()
        if ln.strip()
    ]
    if not lines:
        return "no details"
    last = lines[-1]
    # "name: Invalid data found ..." reads better without the repeated name.
    prefix = path.name + ": "
    return last[len(prefix) :] if last.startswith(prefix) else last


def not_decodable(path: Path, detail: str, tool: str = "ffprobe") -> AudioError:
    return AudioError(
        f"{path.name} is not an audio or video file ffmpeg can decode "
        f"({tool} said: {detail}). {ACCEPTED}"
    )


def no_audio(path: Path) -> AudioError:
    return AudioError(
        f"{path.name} has no audio track: it may be a silent video or an image. {ACCEPTED}"
    )


def hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
