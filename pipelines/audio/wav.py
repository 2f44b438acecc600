"""Normalised audio on disk: the WAV header, and its samples memory-mapped."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipelines.errors import AudioError

#: Sample rate of normalised audio: what Whisper and pyannote expect.
SAMPLE_RATE = 16_000


def wav_data(path: Path) -> tuple[int, int, int, int, int]:
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


def pcm_chunks(path: Path, chunk_frames: int = 1 << 20) -> Iterator[npt.NDArray[np.int16]]:
    _, _, _, offset, n_bytes = wav_data(path)
    if n_bytes < 2:
        return
    mm = np.memmap(path, dtype="<i2", mode="r", offset=offset, shape=(n_bytes // 2,))
    for i in range(0, mm.shape[0], chunk_frames):
        yield np.asarray(mm[i : i + chunk_frames])


def load_waveform(
    wav: Path, *, start: float = 0.0, end: float | None = None
) -> npt.NDArray[np.float32]:
    """Samples of a normalised WAV (16 kHz mono s16) as float32 in [-1, 1].

    The file is memory-mapped, so loading a window (``start``/``end`` in seconds) of a
    long recording reads only that window.
    """
    wav = Path(wav)
    channels, rate, bits, offset, n_bytes = wav_data(wav)
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
