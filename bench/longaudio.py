"""A long multi-speaker recording built from real speech, with its reference turns.

Material: the pyannote sample (a 30 s phone call, two people) and the pytest-audioeval
clips (1-4 s sentences; each language's clips are one voice, so one "guest" per language).
The recording alternates the call with guests' monologues (several clips in a row), with
pauses of 0.2 s to 45 s, over a pink-noise room bed (about 30 dB below speech) that
sometimes rises for a while (a door open, traffic). Seeded: the same arguments give the
same file.

    .venv/bin/python bench/longaudio.py OUT_DIR --seconds 10800

writes ``long.wav`` (16 kHz mono s16, streamed: memory stays small whatever the length)
and ``long.rttm`` (reference speaker turns; the call's turns come from its own RTTM, a
clip's turn spans its samples above -40 dBFS).
"""

from __future__ import annotations

import argparse
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / ".venv/lib/python3.11/site-packages"
SAMPLE = SITE / "pyannote/audio/sample"
CLIPS = SITE / "pytest_audioeval/samples/audio"
RATE = 16000
#: Guests: one voice per language in pytest-audioeval.
GUESTS = ("en", "zh", "fr", "ja", "es")


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: str


def _read_wav(path: Path) -> np.ndarray:
    """Mono 16 kHz float32 samples of any audio file (the clips are float WAVs)."""
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1",
         "-ar", str(RATE), "-"],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


def _speech_span(x: np.ndarray) -> tuple[float, float]:
    """First and last 10 ms frame above -40 dBFS, in seconds."""
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(10 * np.log10((frames**2).mean(axis=1) + 1e-12) > -40.0)
    if loud.size == 0:
        return 0.0, len(x) / RATE
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def _pink(rng: np.random.Generator, n: int, level_db: float) -> np.ndarray:
    """Pink-ish noise (white through a 1/f filter) at ``level_db`` dBFS RMS."""
    from scipy.signal import lfilter

    # Paul Kellet's economy pink filter as a 3-pole IIR.
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    noise = lfilter(b, a, rng.standard_normal(n + 2000))[2000:].astype(np.float32)
    noise *= 10 ** (level_db / 20) / max(float(np.sqrt((noise**2).mean())), 1e-9)
    return noise


def _scenes(rng: np.random.Generator) -> Iterator[tuple[str, object]]:
    """An endless script: ("call", None), ("guest", lang), ("pause", seconds)."""
    while True:
        yield "call", None
        for _ in range(int(rng.integers(1, 3))):
            yield "pause", float(rng.uniform(0.4, 2.5))
            yield "guest", GUESTS[int(rng.integers(len(GUESTS)))]
        long_pause = rng.random() < 0.15
        yield "pause", float(rng.uniform(10.0, 45.0) if long_pause else rng.uniform(0.5, 3.0))


def build(out_dir: Path, seconds: float, seed: int = 7) -> tuple[Path, Path]:
    """Write ``long.wav`` and ``long.rttm`` of about ``seconds`` into ``out_dir``."""
    from pyannote.database.util import load_rttm

    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    call = _read_wav(SAMPLE / "sample.wav")
    (call_ref,) = load_rttm(str(SAMPLE / "sample.rttm")).values()
    call_turns = [
        (s.start, s.end, f"call_{label}") for s, _, label in call_ref.itertracks(yield_label=True)
    ]
    clips = {
        lang: [(x, _speech_span(x)) for x in map(_read_wav, sorted((CLIPS / lang).glob("*.wav")))]
        for lang in GUESTS
    }
    turns: list[Turn] = []
    wav_path, rttm_path = out_dir / "long.wav", out_dir / "long.rttm"
    t = 0.0
    noisy_until = 0.0
    with wave.open(str(wav_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)

        def emit(speech: np.ndarray) -> None:
            nonlocal t, noisy_until
            if t >= noisy_until and rng.random() < 0.05:
                noisy_until = t + float(rng.uniform(20.0, 90.0))  # louder room for a while
            level = -38.0 if t < noisy_until else -50.0
            mixed = speech + _pink(rng, len(speech), level)
            w.writeframes((np.clip(mixed, -1.0, 1.0) * 32767).astype("<i2").tobytes())
            t += len(speech) / RATE

        for kind, arg in _scenes(rng):
            if t >= seconds:
                break
            if kind == "call":
                turns += [Turn(t + a, t + b, spk) for a, b, spk in call_turns]
                emit(call)
            elif kind == "pause":
                emit(np.zeros(round(float(arg) * RATE), dtype=np.float32))  # type: ignore[arg-type]
            else:
                lang = str(arg)
                for k in range(int(rng.integers(3, 8))):
                    if k:
                        emit(np.zeros(round(float(rng.uniform(0.15, 0.6)) * RATE), np.float32))
                    audio, (a, b) = clips[lang][int(rng.integers(len(clips[lang])))]
                    turns.append(Turn(t + a, t + b, f"guest_{lang}"))
                    emit(audio * float(rng.uniform(0.7, 1.2)))
    with rttm_path.open("w") as f:
        for turn in turns:
            f.write(
                f"SPEAKER long 1 {turn.start:.3f} {turn.end - turn.start:.3f} "
                f"<NA> <NA> {turn.speaker} <NA> <NA>\n"
            )
    return wav_path, rttm_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seconds", type=float, default=3 * 3600.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    wav, rttm = build(args.out_dir, args.seconds, args.seed)
    print(f"wrote {wav} and {rttm}")


if __name__ == "__main__":
    main()
