"""Voice activity around a span: where the speech is, for the checks and the word edges."""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.align.spans import SAMPLE_RATE, Waveform

#: Padding voice activity detection puts around speech (seconds).
VAD_PAD = 0.1


def speech_regions(audio: Waveform, offset: float, threshold: float) -> list[tuple[float, float]]:
    """Speech in ``audio`` as absolute (start, end) seconds (Silero VAD, 0.1 s padding)."""
    if len(audio) < SAMPLE_RATE // 10:
        return []
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    chunks = get_speech_timestamps(
        audio,
        VadOptions(
            threshold=threshold,
            min_speech_duration_ms=60,
            min_silence_duration_ms=150,
            speech_pad_ms=round(VAD_PAD * 1000),
        ),
        sampling_rate=SAMPLE_RATE,
    )
    return [
        (offset + c["start"] / SAMPLE_RATE, offset + c["end"] / SAMPLE_RATE) for c in chunks
    ]


def speech_in(regions: Sequence[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(e, end) - max(s, start)) for s, e in regions)


def trim_margins(
    w0: float, w1: float, start: float, end: float, regions: Sequence[tuple[float, float]]
) -> tuple[float, float]:
    """The window [w0, w1] around [start, end] with margins that hold no foreign speech.

    A margin ends at the last pause before the span (the first after it); where speech
    runs through the span's edge there is no pause to find, and the margin shrinks to
    0.1 s: the span's edge, from the ASR or the cue, is then the better guess.
    """
    pad = 0.1
    before = [e for s, e in regions if s <= w0 + 0.05 and e < start]
    through = [s for s, e in regions if s <= max(w0, start - pad) and e >= start]
    if through and through[0] <= w0 + 0.05:
        w0 = max(w0, start - pad)
    elif before:
        w0 = max(w0, min(before[-1], start - pad))
    after = [s for s, e in regions if e >= w1 - 0.05 and s > end]
    through = [e for s, e in regions if e >= min(w1, end + pad) and s <= end]
    if through and through[-1] >= w1 - 0.05:
        w1 = min(w1, end + pad)
    elif after:
        w1 = min(w1, max(after[0], end + pad))
    return w0, max(w1, w0)


def snap_edges(
    start: float, end: float, regions: Sequence[tuple[float, float]]
) -> tuple[float, float]:
    """Move a word's edges out of non-speech when speech lies inside the word."""
    inside = [(max(s, start), min(e, end)) for s, e in regions if s < end and e > start]
    if not inside:
        return start, end
    return inside[0][0], inside[-1][1]
