"""Diarization scores for the benches: DER against reference turns, and WDER.

WDER (word diarization error rate) here is the share of recognised words given to the wrong
speaker: each word of the job's output is placed at its midpoint, the reference speaker
there is looked up (words in silence or in overlapped speech are not counted), and the
job's labels are mapped one-to-one onto the reference speakers so as to get the most
words right (Hungarian assignment). It scores what a reader sees: who said each word.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


def annotation(turns: Iterable[tuple[float, float, str]]):  # type: ignore[no-untyped-def]
    from pyannote.core import Annotation, Segment

    out = Annotation()
    for start, end, speaker in turns:
        if end > start:
            out[Segment(start, end)] = speaker
    return out


def rttm_turns(path: Path, offset: float = 0.0, loops: int = 1, period: float = 0.0):  # type: ignore[no-untyped-def]
    """(start, end, speaker) of an RTTM, optionally shifted and repeated every ``period`` s."""
    rows = []
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            start, dur = float(f[3]), float(f[4])
            rows.append((start, start + dur, f[7]))
    return [(a + offset + k * period, b + offset + k * period, s)
            for k in range(loops) for a, b, s in rows]


def stm_turns(path: Path, offset: float = 0.0, loops: int = 1, period: float = 0.0):  # type: ignore[no-untyped-def]
    """(start, end, speaker) of an STM's utterances (the pyannote sample ships one)."""
    rows = []
    for line in path.read_text().splitlines():
        f = line.split(maxsplit=5)
        if len(f) >= 5 and not line.startswith(";;"):
            rows.append((float(f[3]), float(f[4]), f[2]))
    return [(a + offset + k * period, b + offset + k * period, s)
            for k in range(loops) for a, b, s in rows]


def der(reference_turns, hypothesis_turns) -> float:  # type: ignore[no-untyped-def]
    """Diarization error rate, no collar, overlap scored."""
    import warnings

    from pyannote.metrics.diarization import DiarizationErrorRate

    # Scored over the union of both extents, which is what we want here.
    warnings.filterwarnings("ignore", message="'uem' was approximated")
    return float(DiarizationErrorRate(collar=0.0)(annotation(reference_turns),
                                                  annotation(hypothesis_turns)))


def wder(reference_turns, words) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """(WDER, words counted) of ``words`` = (start, end, speaker) under the best mapping."""
    from scipy.optimize import linear_sum_assignment

    ref = sorted(reference_turns)
    starts = np.array([a for a, _, _ in ref])
    ref_labels = sorted({s for _, _, s in ref})
    hyp_labels = sorted({s for _, _, s in words})
    counts = np.zeros((len(ref_labels), max(1, len(hyp_labels))), dtype=np.int64)
    longest = max((b - a for a, b, _ in ref), default=0.0)
    for start, end, speaker in words:
        mid = (start + end) / 2
        lo = np.searchsorted(starts, mid - longest, side="left")
        hi = np.searchsorted(starts, mid, side="right")
        here = {s for a, b, s in ref[lo:hi] if a <= mid < b}
        if len(here) != 1:
            continue  # silence or overlapped speech: no single right answer
        counts[ref_labels.index(here.pop()), hyp_labels.index(speaker)] += 1
    total = int(counts.sum())
    if total == 0:
        return 0.0, 0
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return 1.0 - counts[rows, cols].sum() / total, total
