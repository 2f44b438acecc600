"""Any media to a 16 kHz mono 16-bit WAV: streamed, checked, atomically in place."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pipelines.audio import tools
from pipelines.audio.demuxers import demuxer_of, input_args
from pipelines.audio.probe import probe
from pipelines.audio.tools import ACCEPTED, clean_stderr, hms, not_decodable, url
from pipelines.audio.wav import SAMPLE_RATE, pcm_chunks
from pipelines.errors import AudioError, DurationLimitError
from pipelines.types import AudioInfo, ProgressCallback

log = logging.getLogger("pipelines.audio")

#: A normalised file whose loudest sample is below this level counts as silent.
SILENCE_DBFS = -60.0


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
    demuxer = demuxer_of(src_info)
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
        tools.find_ffmpeg(), "-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y",
        *input_args(demuxer),
        "-i", url(src),
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
        *limit,
        # No LIST/INFO chunk: a plain header keeps the file easy to memory-map.
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
        "-f", "wav",
        "-progress", "pipe:1",
        url(tmp),
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
        raise not_decodable(src, clean_stderr(err, src), "ffmpeg")
    return last


def _check_normalised(src: Path, wav: Path, declared: float) -> int:
    """Frame count of a freshly normalised file; AudioError if empty, silent or truncated."""
    frames = 0
    peak = 0
    for chunk in pcm_chunks(wav):
        frames += chunk.shape[0]
        if chunk.size:
            # int32 first: abs(-32768) overflows int16.
            peak = max(peak, int(np.abs(chunk.astype(np.int32)).max()))
    if frames == 0:
        raise AudioError(f"{src.name} contains no decodable audio samples. {ACCEPTED}")
    peak_dbfs = 20 * math.log10(peak / 32768) if peak else -math.inf
    if peak_dbfs < SILENCE_DBFS:
        level = "digital silence" if peak == 0 else f"peak {peak_dbfs:.0f} dBFS"
        raise AudioError(
            f"{src.name} is silent ({level} over {hms(frames / SAMPLE_RATE)}): check that "
            f"the microphone was on and that you uploaded the right track."
        )
    duration = frames / SAMPLE_RATE
    if duration < 0.5 * declared and declared - duration > 5:
        raise AudioError(
            f"{src.name} ends early: it says it is {hms(declared)} long, but only "
            f"{hms(duration)} decodes. It is probably truncated (an interrupted upload or "
            f"copy); upload the complete file."
        )
    if duration < 0.9 * declared:
        # Durations of VBR MP3s without a header are estimates and can be this far off.
        log.warning(
            "%s decoded to %.1f s but says it is %.1f s long; it may be truncated",
            src.name, duration, declared,
        )  # fmt: skip
    return frames
