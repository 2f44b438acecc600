"""Audio as an author may hear it: the normalised WAV with withheld spans silenced.

The copy is cached per set of silenced ranges (its name is their digest), so a change
of restrictions, agreements or speaker names yields a new file and the old one is
removed. The WAV is rewritten in blocks, so a 3-hour recording (345 MB) never sits in
memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import wave
from collections.abc import Sequence
from pathlib import Path

from service.filemodes import open_private, private_dir

BLOCK_FRAMES = 1 << 16


def cache_key(ranges: Sequence[tuple[float, float]]) -> str:
    canon = json.dumps([[round(a, 3), round(b, 3)] for a, b in ranges])
    return hashlib.sha256(canon.encode()).hexdigest()[:24]


def silenced_copy(source: Path, cache_dir: Path,
                  ranges: Sequence[tuple[float, float]]) -> Path:
    """``source`` with ``ranges`` (seconds, sorted, merged) set to zero, cached."""
    target = cache_dir / f"{cache_key(ranges)}.wav"
    if target.exists():
        return target
    private_dir(cache_dir)
    tmp = cache_dir / f".{target.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with wave.open(str(source), "rb") as src, \
                os.fdopen(open_private(tmp, exclusive=True), "wb") as raw, \
                wave.open(raw, "wb") as dst:
            dst.setparams(src.getparams())
            rate, frame_bytes = src.getframerate(), src.getsampwidth() * src.getnchannels()
            frames = [(int(a * rate), int(b * rate + 0.999999)) for a, b in ranges]
            pos = 0
            while block := src.readframes(BLOCK_FRAMES):
                n = len(block) // frame_bytes
                data = bytearray(block)
                for a, b in frames:
                    lo, hi = max(a, pos), min(b, pos + n)
                    if lo < hi:
                        data[(lo - pos) * frame_bytes:(hi - pos) * frame_bytes] = bytes(
                            (hi - lo) * frame_bytes)
                dst.writeframes(bytes(data))
                pos += n
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for old in cache_dir.glob("*.wav"):
        if old != target:
            old.unlink(missing_ok=True)
    return target
