"""What a media file holds (probe), and whether its audio really decodes."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

from pipelines.audio import tools
from pipelines.audio.demuxers import demuxer_of, detect_demuxer, input_args
from pipelines.audio.tools import PROBE_TIMEOUT_S, clean_stderr, hms, no_audio, not_decodable, url
from pipelines.audio.wav import SAMPLE_RATE
from pipelines.errors import AudioError
from pipelines.types import AudioInfo


def probe(path: Path) -> AudioInfo:
    """Describe the first audio stream of a media file.

    Detects the format (:func:`detect_demuxer`), then reads the file with that demuxer
    forced, with ffprobe, or by parsing ``ffmpeg -i`` where ffprobe is missing. Raises
    :class:`AudioError` for a missing or empty file, a refused format, media ffmpeg cannot
    read, or a file without an audio stream. A duration the container does not state is
    reported as 0.
    """
    path = Path(path)
    demuxer = detect_demuxer(path)
    ffprobe = tools.find_ffprobe()
    if ffprobe is None:
        return _probe_with_ffmpeg(path, demuxer)
    cmd = [
        ffprobe,
        "-v", "error",
        *input_args(demuxer),
        "-print_format", "json",
        "-show_format",
        "-show_streams",
        url(path),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise not_decodable(path, f"no answer within {PROBE_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        raise not_decodable(path, clean_stderr(proc.stderr, path))
    try:
        data = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raise not_decodable(path, "unreadable ffprobe output") from None
    streams = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise no_audio(path)
    stream = streams[0]
    fmt = data.get("format", {})
    return AudioInfo(
        duration=_float(fmt.get("duration")) or _float(stream.get("duration")),
        sample_rate=int(_float(stream.get("sample_rate"))),
        channels=int(stream.get("channels") or 0),
        codec=str(stream.get("codec_name") or "unknown"),
        format_name=str(fmt.get("format_name") or "unknown"),
    )


def _float(value: object) -> float:
    try:
        f = float(str(value))
    except ValueError:
        return 0.0
    return f if math.isfinite(f) and f > 0 else 0.0


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_INPUT_RE = re.compile(r"Input #0, ([^,]+(?:,[^,\s]+)*), from")
_AUDIO_RE = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+)[^,]*, (\d+) Hz, ([^,]+)")
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6}


def _probe_with_ffmpeg(path: Path, demuxer: str) -> AudioInfo:
    """Probe by parsing ``ffmpeg -i`` (for installs that ship ffmpeg without ffprobe)."""
    cmd = [tools.find_ffmpeg(), "-nostdin", "-hide_banner", *input_args(demuxer), "-i", url(path)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise not_decodable(path, "no answer", "ffmpeg") from None
    err = proc.stderr
    # ffmpeg -i without an output always exits 1; success shows as an "Input #0" header.
    fmt = _INPUT_RE.search(err)
    if fmt is None:
        raise not_decodable(path, clean_stderr(err, path), "ffmpeg")
    audio = _AUDIO_RE.search(err)
    if audio is None:
        raise no_audio(path)
    layout = audio.group(3).strip()
    m = re.match(r"(\d+) channels", layout)
    channels = int(m.group(1)) if m else _LAYOUT_CHANNELS.get(layout.split("(")[0], 2)
    dur = _DURATION_RE.search(err)
    duration = (
        int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    )
    return AudioInfo(
        duration=duration,
        sample_rate=int(audio.group(2)),
        channels=channels,
        codec=audio.group(1),
        format_name=fmt.group(1),
    )


def _decode_pcm(
    path: Path, demuxer: str, *, start: float, seconds: float
) -> tuple[int, str, int]:
    """Decode a stretch of the first audio stream; return (bytes of s16 mono, stderr, rc)."""
    cmd = [tools.find_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error"]
    if start > 0:
        cmd += ["-ss", f"{start:.3f}"]
    cmd += [
        *input_args(demuxer),
        "-i", url(path),
        "-t", f"{seconds:.3f}",
        "-map", "0:a:0",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=max(60.0, seconds * 10))
    return len(proc.stdout), proc.stderr.decode("utf-8", "replace"), proc.returncode


def check_decodable(
    path: Path, *, seconds: float = 3.0, info: AudioInfo | None = None
) -> AudioInfo:
    """Check that the audio really decodes, not just that its header parses.

    Decodes the first ``seconds`` and, for a file that says it is longer, the last
    ``seconds``: a corrupt file fails the first check and a truncated one (an
    interrupted upload whose header still claims the full length) the second. Returns
    the probe result; raises :class:`AudioError` with a message a user can act on.
    """
    path = Path(path)
    info = info or probe(path)
    demuxer = demuxer_of(info)
    n_bytes, err, rc = _decode_pcm(path, demuxer, start=0.0, seconds=seconds)
    if rc != 0 or n_bytes == 0:
        raise not_decodable(path, clean_stderr(err, path), "ffmpeg")
    if info.duration > 3 * seconds:
        n_tail, err, rc = _decode_pcm(
            path, demuxer, start=info.duration - seconds, seconds=seconds
        )
        # Seeking in compressed streams is approximate; a tenth of the stretch is plenty.
        if n_tail < 2 * SAMPLE_RATE * seconds * 0.1:
            raise AudioError(
                f"{path.name} ends early: it says it is {hms(info.duration)} long, but "
                f"nothing decodes near the end. It is probably truncated (an interrupted "
                f"upload or copy); upload the complete file."
            )
    return info
