"""A short Mandarin dialogue spoken by espeak-ng, with the time of every line.

Debian's ``cmn`` dictionary lacks many characters (it reads out their code points), so
Chinese runs are turned into tone-numbered pinyin (pypinyin) and read by the
``cmn-latn-pinyin`` voice, and Latin runs inside a line (AI, Token) by the English voice
of the same variant. Each speaker gets a variant and pitch of their own, so the
diarizer hears two voices. Lines are trimmed of espeak's own silence and joined with
pauses, so the returned times are where each line is heard.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
#: (espeak variant, pitch 0-99) of the first and second speaker.
VOICES = (("f4", 75), ("m3", 25))
SPEED_WPM = 165
GAP_S = 0.7
LEAD_S = 0.5

_PUNCT = "，。？！、：；“”‘’（）《》"
_CHINESE = re.compile(r"[\u4e00-\u9fff]")
_RUNS = re.compile(rf"[\u4e00-\u9fff{_PUNCT}]+|[^\u4e00-\u9fff{_PUNCT}]+")


class SpeechError(RuntimeError):
    """espeak-ng or ffmpeg is missing or failed; the message says what to install."""


@dataclass(frozen=True)
class Line:
    speaker: str
    text: str


@dataclass(frozen=True)
class Spoken:
    speaker: str
    text: str
    start: float
    end: float


def _runs(text: str) -> list[tuple[str, str]]:
    """(espeak voice, text) runs: Chinese as pinyin, Latin words in English."""
    # pypinyin loads its dictionaries at import (about 0.4 s): only sample building needs it.
    from pypinyin import Style, lazy_pinyin

    runs: list[tuple[str, str]] = []
    for part in _RUNS.findall(text):
        if _CHINESE.search(part):
            words = lazy_pinyin(part, style=Style.TONE3, neutral_tone_with_five=True)
            spoken = " ".join(w for w in words if w.strip(_PUNCT))
            if spoken:
                runs.append(("cmn-latn-pinyin", spoken))
        elif part.strip(" " + _PUNCT):
            runs.append(("en-us", part.strip()))
    return runs


def _decode(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "s16le", "-ac", "1",
         "-ar", str(SAMPLE_RATE), "-"],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype="<i2").copy()


def _say(text: str, voice: tuple[str, int], tmp: Path) -> np.ndarray:
    variant, pitch = voice
    pieces: list[np.ndarray] = []
    for i, (lang, run) in enumerate(_runs(text)):
        part = tmp / f"run{i}.wav"
        subprocess.run(["espeak-ng", "-v", f"{lang}+{variant}", "-p", str(pitch),
                        "-s", str(SPEED_WPM), "-w", str(part), run],
                       check=True, capture_output=True)
        pieces.append(_decode(part))
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
    # espeak pads every utterance with silence; the times must be where speech is.
    loud = np.flatnonzero(np.abs(audio) > 300)
    return audio[loud[0]: loud[-1] + 1] if loud.size else audio


def require_tools() -> None:
    """Raise SpeechError naming the first missing tool and how to install it."""
    for tool in ("espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            raise SpeechError(f"{tool} is not installed; `make setup` installs it "
                              f"(or: apt-get install {tool})")


def speak(lines: list[Line], out: Path, *, min_s: float = 20.0, max_s: float = 30.0,
          ) -> list[Spoken]:
    """Write the dialogue to ``out`` (16 kHz mono WAV): lines in order until ``min_s``
    is reached, never past ``max_s``. Returns the lines spoken, with their times."""
    require_tools()
    speakers: dict[str, tuple[str, int]] = {}
    pieces = [np.zeros(int(LEAD_S * SAMPLE_RATE), dtype=np.int16)]
    spoken: list[Spoken] = []
    t = LEAD_S
    with tempfile.TemporaryDirectory(prefix="sourcebook-speech-") as tmp:
        for line in lines:
            voice = speakers.setdefault(line.speaker, VOICES[len(speakers) % len(VOICES)])
            try:
                audio = _say(line.text, voice, Path(tmp))
            except subprocess.CalledProcessError as exc:
                raise SpeechError(f"{exc.cmd[0]} failed: {exc.stderr!r}") from None
            length = audio.size / SAMPLE_RATE
            if t + length > max_s:
                continue  # a shorter line further on may still fit
            spoken.append(Spoken(line.speaker, line.text, round(t, 3), round(t + length, 3)))
            pieces += [audio, np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.int16)]
            t += length + GAP_S
            if t >= min_s:
                break
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(np.concatenate(pieces).tobytes())
    return spoken
