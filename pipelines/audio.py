"""Probe, validate and normalise media with ffmpeg.

Every ffmpeg call gets an argument list (never a shell string) and every path goes in
as ``file:/absolute/path``, so a file named ``-i`` or ``http:x`` is only ever a file.
Audio streams through ffmpeg; nothing here holds a whole recording in memory except
:func:`load_waveform`, which a model needs anyway.

A user's file is untrusted, and some ffmpeg formats are made of references: an HLS
playlist or a concat list names other files or URLs, and ffmpeg follows them (a 112-byte
``.m3u8`` naming another recording's stored path once made that recording readable to
its uploader). So no demuxer ffmpeg would pick by itself ever reads a user's file:

1. :func:`detect_demuxer` lets ffmpeg look at the content with an empty format
   whitelist. It probes the first bytes, names the demuxer it would use, and stops before
   that demuxer reads anything (``Format not on whitelist``). Only names in
   :data:`ALLOWED_DEMUXERS` go on; everything else is refused.
2. Every later ffprobe/ffmpeg call forces that demuxer (``-f``), allows only the
   ``file`` protocol for the input, and for mov/mp4 keeps external data references off
   (:func:`_input_args`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipelines.errors import AudioError, DurationLimitError, PipelineError
from pipelines.types import AudioInfo, ProgressCallback

__all__ = [
    "ALLOWED_DEMUXERS",
    "SAMPLE_RATE",
    "SILENCE_DBFS",
    "check_decodable",
    "detect_demuxer",
    "find_ffmpeg",
    "find_ffprobe",
    "load_waveform",
    "normalise",
    "probe",
]

log = logging.getLogger(__name__)

#: Sample rate of normalised audio: what Whisper and pyannote expect.
SAMPLE_RATE = 16_000
#: A normalised file whose loudest sample is below this level counts as silent.
SILENCE_DBFS = -60.0

_ACCEPTED = "Upload a WAV, MP3, M4A, FLAC, OGG or a video with an audio track."
_PROBE_TIMEOUT_S = 60.0

#: ffmpeg demuxers of what recorders, phones, cameras, browsers and editors write.
#: Each reads only the file it is given: none of them opens another file or a URL.
#: (mov can, through external data references; see :func:`_input_args`.)
ALLOWED_DEMUXERS: tuple[str, ...] = (
    "wav",  # WAV, Broadcast WAV, RF64 (field recorders)
    "w64",  # Sony Wave64
    "mp3",  # MP3, MP2
    "mov",  # M4A, MP4, MOV, 3GP (phones, Zoom, cameras): "mov,mp4,m4a,3gp,3g2,mj2"
    "ogg",  # Ogg Opus and Vorbis (WhatsApp, Signal, Telegram voice notes)
    "flac",
    "matroska",  # MKV, MKA, WebM (browser recordings): "matroska,webm"
    "aac",  # raw ADTS AAC
    "amr",  # AMR voice memos of older phones
    "amrnb",
    "amrwb",
    "caf",  # Apple Core Audio (iOS)
    "aiff",
    "wv",  # WavPack
    "ac3",
    "eac3",
    "asf",  # WMA, WMV (Windows voice recorders)
    "avi",
    "mpegts",  # MTS, M2TS (camcorders)
    "mpeg",  # MPEG program stream (.mpg, .vob)
)

#: A whitelist no demuxer matches: ffmpeg probes the content, names its choice in the
#: refusal, and no demuxer reads the file.
_DETECT_ONLY = "none"
_NOT_ALLOWED_RE = re.compile(r"\[([\w,]+) @ (?:0x)?[0-9a-fA-F]+\] Format not on whitelist")
#: Names for the refused formats a user is likely to try, in the refusal message.
_REFUSED_KINDS = {
    "hls": "an HLS playlist (.m3u8)",
    "concat": "an ffmpeg concat list",
    "sdp": "an SDP session description",
    "dash": "a DASH manifest",
    "image2": "a numbered image sequence",
    "tty": "a text file",
}


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


def _url(path: Path) -> str:
    # "file:" stops ffmpeg reading a leading "-" as an option or "x:" as a protocol.
    return "file:" + str(Path(path).resolve())


def _clean_stderr(stderr: str, path: Path) -> str:
    """The last meaningful ffmpeg error line, with our absolute path replaced by the name."""
    url = _url(path)
    lines = [
        ln.strip().replace(url, path.name).replace(str(Path(path).resolve()), path.name)
        for ln in stderr.splitlines()
        if ln.strip()
    ]
    if not lines:
        return "no details"
    last = lines[-1]
    # "name: Invalid data found ..." reads better without the repeated name.
    prefix = path.name + ": "
    return last[len(prefix) :] if last.startswith(prefix) else last


def _not_decodable(path: Path, detail: str, tool: str = "ffprobe") -> AudioError:
    return AudioError(
        f"{path.name} is not an audio or video file ffmpeg can decode "
        f"({tool} said: {detail}). {_ACCEPTED}"
    )


def _no_audio(path: Path) -> AudioError:
    return AudioError(
        f"{path.name} has no audio track: it may be a silent video or an image. {_ACCEPTED}"
    )


def _input_args(demuxer: str) -> list[str]:
    """ffmpeg/ffprobe options for reading a user's file (they go before its ``-i``/URL).

    ``-f`` forces the demuxer :func:`detect_demuxer` allowed, so nothing in the file can
    make ffmpeg switch to a playlist or list format. ``-protocol_whitelist file`` means
    the input, and anything a demuxer might try to open from it, can only be a local
    file: no http, tcp, udp, rtp, data: or crypto URLs, and not ``pipe:`` (our stdin)
    either. mov/mp4 can point a track at data in another file (``dref`` alias atoms);
    ffmpeg leaves that off by default, and we say so explicitly so that a different
    default can never turn it on.
    """
    if demuxer not in ALLOWED_DEMUXERS:
        raise ValueError(f"demuxer {demuxer!r} is not in ALLOWED_DEMUXERS")
    args = ["-f", demuxer, "-protocol_whitelist", "file"]
    if demuxer == "mov":
        args += ["-enable_drefs", "0", "-use_absolute_path", "0"]
    return args


def _allowed(format_name: str) -> str | None:
    """The allowed demuxer of an ffmpeg format name ("mov,mp4,m4a,3gp,3g2,mj2" -> "mov")."""
    return next((n for n in format_name.split(",") if n in ALLOWED_DEMUXERS), None)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise AudioError(f"{path.name} does not exist or is not a file.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name} is empty (0 bytes): the upload or copy failed. {_ACCEPTED}")


def detect_demuxer(path: Path) -> str:
    """The demuxer for ``path``, chosen by ffmpeg from its content; only an allowed one.

    ffmpeg's probe sees the first bytes (the name does not count: an ``.m3u8`` called
    ``.mp3`` is still a playlist) and names the demuxer it would use; the empty format
    whitelist stops it before that demuxer reads the file. Raises :class:`AudioError` for
    a format outside :data:`ALLOWED_DEMUXERS` (playlists, file lists, images, text ...) and
    for content ffmpeg does not recognise at all.
    """
    path = Path(path)
    _check_file(path)
    ffprobe = find_ffprobe()
    opts = ["-format_whitelist", _DETECT_ONLY, "-protocol_whitelist", "file"]
    if ffprobe is not None:
        tool, cmd = "ffprobe", [ffprobe, "-v", "error", *opts, _url(path)]
    else:
        tool = "ffmpeg"
        cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", *opts, "-i", _url(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise _not_decodable(path, f"no answer within {_PROBE_TIMEOUT_S:.0f} s", tool) from None
    found = _NOT_ALLOWED_RE.search(proc.stderr)
    if found is None:
        raise _not_decodable(path, _clean_stderr(proc.stderr, path), tool)
    name = found.group(1)
    demuxer = _allowed(name)
    if demuxer is None:
        kind = _REFUSED_KINDS.get(name.split(",")[0], f"a file in the {name!r} format")
        raise AudioError(
            f"{path.name} is {kind}, not a recording in a format this archive accepts. "
            f"Playlists, file lists and other formats that point at other files or URLs are "
            f"refused, and so are formats recorders do not write. {_ACCEPTED}"
        )
    return demuxer


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
    ffprobe = find_ffprobe()
    if ffprobe is None:
        return _probe_with_ffmpeg(path, demuxer)
    cmd = [
        ffprobe,
        "-v", "error",
        *_input_args(demuxer),
        "-print_format", "json",
        "-show_format",
        "-show_streams",
        _url(path),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
            timeout=_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise _not_decodable(path, f"no answer within {_PROBE_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        raise _not_decodable(path, _clean_stderr(proc.stderr, path))
    try:
        data = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raise _not_decodable(path, "unreadable ffprobe output") from None
    streams = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise _no_audio(path)
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
    cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", *_input_args(demuxer), "-i", _url(path)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL,
            timeout=_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise _not_decodable(path, "no answer", "ffmpeg") from None
    err = proc.stderr
    # ffmpeg -i without an output always exits 1; success shows as an "Input #0" header.
    fmt = _INPUT_RE.search(err)
    if fmt is None:
        raise _not_decodable(path, _clean_stderr(err, path), "ffmpeg")
    audio = _AUDIO_RE.search(err)
    if audio is None:
        raise _no_audio(path)
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
    cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error"]
    if start > 0:
        cmd += ["-ss", f"{start:.3f}"]
    cmd += [
        *_input_args(demuxer),
        "-i", _url(path),
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
    demuxer = _demuxer_of(info)
    n_bytes, err, rc = _decode_pcm(path, demuxer, start=0.0, seconds=seconds)
    if rc != 0 or n_bytes == 0:
        raise _not_decodable(path, _clean_stderr(err, path), "ffmpeg")
    if info.duration > 3 * seconds:
        n_tail, err, rc = _decode_pcm(
            path, demuxer, start=info.duration - seconds, seconds=seconds
        )
        # Seeking in compressed streams is approximate; a tenth of the stretch is plenty.
        if n_tail < 2 * SAMPLE_RATE * seconds * 0.1:
            raise AudioError(
                f"{path.name} ends early: it says it is {_hms(info.duration)} long, but "
                f"nothing decodes near the end. It is probably truncated (an interrupted "
                f"upload or copy); upload the complete file."
            )
    return info


def _demuxer_of(info: AudioInfo) -> str:
    demuxer = _allowed(info.format_name)
    if demuxer is None:  # only a probe result from elsewhere can get here
        raise AudioError(f"The {info.format_name!r} format is not accepted. {_ACCEPTED}")
    return demuxer


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def normalise(
    src: Path,
    dst: Path,
    *,
    progress: ProgressCallback | None = None,
    max_duration: float | None = None,
) -> AudioInfo:
    """Convert any media to a 16 kHz mono 16-bit PCM WAV at ``dst``, atomically.

    ffmpeg streams the conversion; ``progress("normalise", fraction)`` follows its
    ``-progress`` output and may raise :class:`CancelledError` to stop it. The result
    is written to a temporary file (mode 0600) beside ``dst``, checked (not empty, not
    silent: peak below :data:`SILENCE_DBFS`), flushed to disk and then renamed over
    ``dst``, so ``dst`` is either absent or complete. Returns the description of ``dst``.

    ``max_duration`` (seconds) bounds the work whatever the header claims: ffmpeg stops
    one second past it, and a file that decodes to more than that raises
    :class:`DurationLimitError` and leaves nothing at ``dst``.
    """
    src, dst = Path(src), Path(dst)
    src_info = probe(src)
    demuxer = _demuxer_of(src_info)
    if max_duration is not None and src_info.duration > max_duration:
        raise DurationLimitError(src.name, max_duration, src_info.duration, declared=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        last = _run_ffmpeg_normalise(src, demuxer, tmp, src_info.duration, progress,
                                     max_duration)
        frames = _check_normalised(src, tmp, src_info.duration)
        if max_duration is not None and frames > max_duration * SAMPLE_RATE:
            raise DurationLimitError(src.name, max_duration, frames / SAMPLE_RATE,
                                     declared=False)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        tmp.replace(dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    if progress is not None and last < 1.0:
        progress("normalise", 1.0)
    duration = frames / SAMPLE_RATE
    return AudioInfo(
        duration=duration,
        sample_rate=SAMPLE_RATE,
        channels=1,
        codec="pcm_s16le",
        format_name="wav",
    )


def _run_ffmpeg_normalise(
    src: Path,
    demuxer: str,
    tmp: Path,
    duration: float,
    progress: ProgressCallback | None,
    max_duration: float | None,
) -> float:
    """Run the conversion; return the last progress fraction reported."""
    # A header may understate the length: past the limit, one more second is enough to
    # tell "too long" from "exactly the limit", and ffmpeg stops there by itself.
    limit = ["-t", f"{max_duration + 1:.3f}"] if max_duration is not None else []
    cmd = [
        find_ffmpeg(), "-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y",
        *_input_args(demuxer),
        "-i", _url(src),
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
        *limit,
        # No LIST/INFO chunk: a plain header keeps the file easy to memory-map.
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
        "-f", "wav",
        "-progress", "pipe:1",
        _url(tmp),
    ]  # fmt: skip
    # stderr goes to a file, not a pipe: reading only stdout while ffmpeg fills a
    # stderr pipe with warnings would deadlock both processes.
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=errf, text=True)
        last = 0.0
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                key, _, value = line.strip().partition("=")
                # out_time_ms is in microseconds too (a long-standing ffmpeg quirk).
                if key != "out_time_us" or progress is None or duration <= 0:
                    continue
                try:
                    frac = min(1.0, max(0.0, int(value) / 1e6 / duration))
                except ValueError:
                    continue
                if frac > last:
                    last = frac
                    progress("normalise", frac)
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        errf.seek(0)
        err = errf.read().decode("utf-8", "replace")
    if rc != 0:
        raise _not_decodable(src, _clean_stderr(err, src), "ffmpeg")
    return last


def _wav_data(path: Path) -> tuple[int, int, int, int, int]:
    """Parse a RIFF/WAVE header: (channels, rate, bits, data offset, data bytes)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise AudioError(f"{path.name} is not a WAV file.")
        fmt: tuple[int, int, int, int] | None = None
        while True:
            ch = fh.read(8)
            if len(ch) < 8:
                raise AudioError(f"{path.name} has no audio data chunk.")
            cid, size = ch[:4], struct.unpack("<I", ch[4:])[0]
            if cid == b"fmt ":
                body = fh.read(size + (size & 1))
                tag, channels, rate = struct.unpack("<HHI", body[:8])
                bits = struct.unpack("<H", body[14:16])[0]
                fmt = (tag, channels, rate, bits)
            elif cid == b"data":
                if fmt is None:
                    raise AudioError(f"{path.name} has audio data before its format chunk.")
                offset = fh.tell()
                available = path.stat().st_size - offset
                # 0xFFFFFFFF or a short file: trust the bytes actually present.
                n = min(size, available) if size else available
                if fmt[0] not in (1, 0xFFFE):  # PCM or WAVE_FORMAT_EXTENSIBLE
                    raise AudioError(f"{path.name} is not PCM audio (format tag {fmt[0]}).")
                return fmt[1], fmt[2], fmt[3], offset, n - n % 2
            else:
                fh.seek(size + (size & 1), os.SEEK_CUR)


def _pcm_chunks(path: Path, chunk_frames: int = 1 << 20) -> Iterator[npt.NDArray[np.int16]]:
    _, _, _, offset, n_bytes = _wav_data(path)
    if n_bytes < 2:
        return
    mm = np.memmap(path, dtype="<i2", mode="r", offset=offset, shape=(n_bytes // 2,))
    for i in range(0, mm.shape[0], chunk_frames):
        yield np.asarray(mm[i : i + chunk_frames])


def _check_normalised(src: Path, wav: Path, declared: float) -> int:
    """Frame count of a freshly normalised file; AudioError if empty, silent or truncated."""
    frames = 0
    peak = 0
    for chunk in _pcm_chunks(wav):
        frames += chunk.shape[0]
        if chunk.size:
            # int32 first: abs(-32768) overflows int16.
            peak = max(peak, int(np.abs(chunk.astype(np.int32)).max()))
    if frames == 0:
        raise AudioError(f"{src.name} contains no decodable audio samples. {_ACCEPTED}")
    peak_dbfs = 20 * math.log10(peak / 32768) if peak else -math.inf
    if peak_dbfs < SILENCE_DBFS:
        level = "digital silence" if peak == 0 else f"peak {peak_dbfs:.0f} dBFS"
        raise AudioError(
            f"{src.name} is silent ({level} over {_hms(frames / SAMPLE_RATE)}): check that "
            f"the microphone was on and that you uploaded the right track."
        )
    duration = frames / SAMPLE_RATE
    if duration < 0.5 * declared and declared - duration > 5:
        raise AudioError(
            f"{src.name} ends early: it says it is {_hms(declared)} long, but only "
            f"{_hms(duration)} decodes. It is probably truncated (an interrupted upload or "
            f"copy); upload the complete file."
        )
    if duration < 0.9 * declared:
        # Durations of VBR MP3s without a header are estimates and can be this far off.
        log.warning(
            "%s decoded to %.1f s but says it is %.1f s long; it may be truncated",
            src.name, duration, declared,
        )  # fmt: skip
    return frames


def load_waveform(
    wav: Path, *, start: float = 0.0, end: float | None = None
) -> npt.NDArray[np.float32]:
    """Samples of a normalised WAV (16 kHz mono s16) as float32 in [-1, 1].

    The file is memory-mapped, so loading a window (``start``/``end`` in seconds) of a
    long recording reads only that window.
    """
    wav = Path(wav)
    channels, rate, bits, offset, n_bytes = _wav_data(wav)
    if (channels, rate, bits) != (1, SAMPLE_RATE, 16):
        raise AudioError(
            f"{wav.name} is {rate} Hz, {channels} channel(s), {bits}-bit; expected a "
            f"normalised 16 kHz mono 16-bit WAV (run normalise first)."
        )
    total = n_bytes // 2
    if total == 0:
        return np.zeros(0, dtype=np.float32)
    mm = np.memmap(wav, dtype="<i2", mode="r", offset=offset, shape=(total,))
    a = max(0, min(total, round(start * SAMPLE_RATE)))
    b = total if end is None else max(a, min(total, round(end * SAMPLE_RATE)))
    # np.array, not astype: a plain ndarray, not a memmap subclass tied to the file.
    out = np.array(mm[a:b], dtype=np.float32)
    out /= 32768.0
    return out
