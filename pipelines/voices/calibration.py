"""Calibration: similarity distributions, error rates and thresholds from labelled
embeddings (bench/voices.py; a team's own named recordings)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipelines.voices.matching import Scoring, decide, score_table
from pipelines.voices.vectors import unit

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True, slots=True)
class LabelledEmbedding:
    """An embedding whose speaker is known (a named label, a test piece), or known to be
    none of the known speakers (``speaker=None``: an impostor, e.g. a voice from a podcast;
    compared with the known speakers only, never with another unknown one).

    ``recording`` names where it came from: two embeddings of one speaker from the same
    recording are not used as a same-speaker pair (they share words and channel, which
    makes them look more alike than two interviews ever do).
    """

    speaker: str | None
    recording: str
    embedding: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a set of similarity scores."""

    count: int
    min: float
    p1: float
    p5: float
    p25: float
    median: float
    p75: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, scores: ArrayLike) -> Distribution:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if s.size == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan, nan, nan, nan)
        q = np.percentile(s, [0, 1, 5, 25, 50, 75, 95, 99, 100])
        return cls(int(s.size), *(float(x) for x in q))


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Error rates of the verification rule ``similarity >= threshold`` on labelled pairs."""

    threshold: float
    #: Share of different-speaker pairs accepted (a quote given to the wrong person).
    far: float
    #: Share of same-speaker pairs rejected (a suggestion missed; the researcher names by ear).
    frr: float


@dataclass(frozen=True)
class Calibration:
    """Distributions, equal error rate and the thresholds chosen from them (see calibrate)."""

    same: Distribution
    different: Distribution
    eer: OperatingPoint
    #: Suggestion threshold (see :func:`calibrate` for the rule).
    suggest: OperatingPoint
    #: Auto-apply threshold, higher.
    auto_apply: OperatingPoint
    margin: float
    #: Identification at the suggestion threshold and margin.
    identification: Identification
    same_scores: NDArray[np.float64] = field(repr=False)
    different_scores: NDArray[np.float64] = field(repr=False)


def pair_scores(
    samples: Sequence[LabelledEmbedding],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Cosine similarities of same-speaker pairs (from different recordings) and of
    different-speaker pairs (any recordings; two unknown speakers are never a pair), each
    unordered pair once."""
    rows = [(s, unit(s.embedding)) for s in samples]
    kept = [(s, v) for s, v in rows if v is not None]
    if len(kept) < 2:
        return np.zeros(0), np.zeros(0)
    m = np.stack([v for _, v in kept])
    sim = m @ m.T
    known = np.array([s.speaker is not None for s, _ in kept])
    speakers = np.array([s.speaker or "" for s, _ in kept])
    recordings = np.array([s.recording for s, _ in kept])
    iu = np.triu_indices(len(kept), k=1)
    both_known = known[iu[0]] & known[iu[1]]
    any_known = known[iu[0]] | known[iu[1]]
    same_speaker = both_known & (speakers[iu[0]] == speakers[iu[1]])
    same_recording = recordings[iu[0]] == recordings[iu[1]]
    values = sim[iu]
    return values[same_speaker & ~same_recording], values[any_known & ~same_speaker]


def operating_point(
    same: ArrayLike, different: ArrayLike, threshold: float
) -> OperatingPoint:
    """FAR and FRR of accepting pairs with similarity >= ``threshold``."""
    s = np.asarray(same, dtype=np.float64)
    d = np.asarray(different, dtype=np.float64)
    far = float(np.mean(d >= threshold)) if d.size else float("nan")
    frr = float(np.mean(s < threshold)) if s.size else float("nan")
    return OperatingPoint(float(threshold), far, frr)


def equal_error_rate(same: ArrayLike, different: ArrayLike) -> OperatingPoint:
    """The threshold where FAR and FRR are closest (their mean is the EER), over the scores."""
    s = np.asarray(same, dtype=np.float64)
    d = np.asarray(different, dtype=np.float64)
    if not s.size or not d.size:
        raise ValueError("the equal error rate needs same-speaker and different-speaker pairs")
    candidates = np.unique(np.concatenate([s, d, [float(d.max()) + 1e-9]]))
    far = 1.0 - np.searchsorted(np.sort(d), candidates, side="left") / d.size
    frr = np.searchsorted(np.sort(s), candidates, side="left") / s.size
    i = int(np.argmin(np.abs(far - frr)))
    return OperatingPoint(float(candidates[i]), float(far[i]), float(frr[i]))


@dataclass(frozen=True, slots=True)
class Identification:
    """Each labelled embedding matched, as a label, against voiceprints of all the others."""

    #: Probes of a known speaker who also has samples from other recordings.
    trials: int
    correct: int
    wrong: int
    unsuggested: int
    #: Probes of unknown speakers, and how many of them got a suggestion (all wrong).
    impostor_trials: int
    impostor_suggested: int
    #: best - second best person, for best guesses over the threshold, right and wrong.
    correct_gaps: Distribution
    wrong_gaps: Distribution


def identify(
    samples: Sequence[LabelledEmbedding],
    *,
    threshold: float,
    margin: float,
    scoring: Scoring = "max",
) -> Identification:
    """Each sample as a label against voiceprints made of every other known sample.

    The probe's own speaker's voiceprint leaves out the probe's recording (it would find its
    own words); other speakers keep theirs, since a named label of the same recording is in
    the archive when the other label is matched. Voiceprints here are not bounded.
    """
    kept = [(s, v) for s, v in ((s, unit(s.embedding)) for s in samples) if v is not None]
    speakers = sorted({s.speaker for s, _ in kept if s.speaker is not None})
    trials = correct = wrong = unsuggested = imp_trials = imp_suggested = 0
    correct_gaps: list[float] = []
    wrong_gaps: list[float] = []
    for probe, vec in kept:
        prints: dict[str, NDArray[np.float64]] = {}
        for spk in speakers:
            rows = [
                v
                for s, v in kept
                if s.speaker == spk
                and s is not probe
                and not (spk == probe.speaker and s.recording == probe.recording)
            ]
            if rows:
                prints[spk] = np.stack(rows)
        if not prints or (probe.speaker is not None and probe.speaker not in prints):
            continue
        table = score_table({"probe": vec}, prints, scoring=scoring)
        row = table.scores[0]
        order = np.argsort(-row, kind="stable")
        gap = float(row[order[0]] - row[order[1]]) if row.size > 1 else float("inf")
        if probe.speaker is not None and row[order[0]] >= threshold and math.isfinite(gap):
            right = table.people[int(order[0])] == probe.speaker
            (correct_gaps if right else wrong_gaps).append(gap)
        pick = decide(row, np.zeros(row.size, dtype=bool), threshold, margin)
        if probe.speaker is None:
            imp_trials += 1
            imp_suggested += pick is not None
        else:
            trials += 1
            if pick is None:
                unsuggested += 1
            elif table.people[pick] == probe.speaker:
                correct += 1
            else:
                wrong += 1
    return Identification(
        trials, correct, wrong, unsuggested, imp_trials, imp_suggested,
        Distribution.of(correct_gaps), Distribution.of(wrong_gaps),
    )


def _round_up(x: float, step: float) -> float:
    return round(math.ceil(x / step - 1e-9) * step, 6)


def calibrate(
    samples: Sequence[LabelledEmbedding],
    *,
    target_far: float = 0.0,
    step: float = 0.05,
    auto_step: float = 0.10,
    min_margin: float = 0.10,
    scoring: Scoring = "max",
) -> Calibration:
    """Similarity distributions, EER and thresholds measured on labelled embeddings.

    How the numbers are chosen (precision first: a wrong suggestion puts a quote in the
    wrong mouth, a missed one only costs a researcher a click):

    - suggestion threshold: the lowest threshold whose false-accept rate over the
      different-speaker pairs is at most ``target_far`` (default 0: above every
      different-speaker pair seen), never below the EER threshold, rounded up to the next
      ``step``: the next impostor may land a little above the highest one seen. With
      thousands of pairs of real, different people a team may allow e.g. 0.001;
    - auto-apply threshold: ``auto_step`` above the suggestion threshold (at most 1);
    - margin: ``min_margin``, or more if a wrong best guess over the threshold led the
      next person by that much (it must not pass).

    Same-speaker pairs come from different recordings only (see :class:`LabelledEmbedding`).
    Raises ``ValueError`` without both kinds of pairs.
    """
    same, different = pair_scores(samples)
    eer = equal_error_rate(same, different)
    d_sorted = np.sort(different)
    # Lowest t with mean(different >= t) <= target_far: just above the score that would
    # make the accepted share exceed it.
    allowed = math.floor(target_far * d_sorted.size)
    t_far = float(d_sorted[d_sorted.size - allowed - 1]) + 1e-6 if allowed < d_sorted.size else 0.0
    suggest_t = _round_up(max(t_far, eer.threshold), step)
    auto_t = min(1.0, round(suggest_t + auto_step, 6))
    # Margin: wider than any lead a wrong best guess had over the next person.
    first = identify(samples, threshold=suggest_t, margin=min_margin, scoring=scoring)
    worst = first.wrong_gaps.max if first.wrong_gaps.count else 0.0
    margin = max(min_margin, round(worst + 0.01, 3))
    ident = (
        first
        if margin == min_margin
        else identify(samples, threshold=suggest_t, margin=margin, scoring=scoring)
    )
    return Calibration(
        same=Distribution.of(same),
        different=Distribution.of(different),
        eer=eer,
        suggest=operating_point(same, different, suggest_t),
        auto_apply=operating_point(same, different, auto_t),
        margin=margin,
        identification=ident,
        same_scores=same,
        different_scores=different,
    )
