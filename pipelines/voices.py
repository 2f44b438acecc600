"""Voice recognition: speaker embeddings in, nearest consenting voiceprints out.

Pure numpy, no state. The service decides who may have a voiceprint (consent) and stores
it; this module only compares vectors, keeps a voiceprint bounded, measures thresholds and
(re)computes a label's embedding when a recording has none.

Embeddings are CAM++ vectors (192-dim) as diarization produces them: pyannote's per-label
centroid, which is the plain mean of the label's raw (not unit-length) 10 s chunk
embeddings. Only their direction matters here: every comparison is the cosine, computed
after L2-normalising each vector.

Voiceprint
    A person's voiceprint is a bounded list of samples ``(source, embedding)``, one per
    named label (``source`` identifies it, e.g. ``"recording 12 SPEAKER_00"``), not one
    average: a phone call and a studio interview of one person sit apart, and averaging them
    gives a vector close to neither. :func:`enrol` adds one, replacing any sample of the same
    source; beyond :data:`VOICEPRINT_LIMIT` it drops the older member of the most similar
    pair, so the samples that stay are the most different ones (diversity), and of two near
    copies the newer stays.

Matching (:func:`match`)
    A person's score for a label is the highest cosine over that person's samples. A label
    gets a suggestion only when the score is at least ``threshold`` and ahead of every other
    candidate by ``margin``; the recording's participants are tried first. Two labels of one
    recording never get the same person unless both are over ``clear``. All labels against
    all people is one matrix product.

Thresholds
    :data:`THRESHOLD`, :data:`MARGIN` and :data:`AUTO_APPLY_THRESHOLD` come from measurement
    (``bench/voices.py``, bench/RESULTS.md "Voices"). :func:`calibrate` recomputes them from
    any labelled embeddings, e.g. a team's own named recordings.

Recomputing an embedding (:func:`embed_labels`)
    For recordings stored before labels had embeddings. It runs the diarizer's own embedding
    model over the diarizer's 10 s chunks of the label's speech and averages the raw chunk
    embeddings, as pyannote's centroid does, so the result is comparable with
    ``Diarization.embeddings``. With ``SourcebookDiarization`` the chunks pool CAM++
    features computed over the whole recording in 30 s blocks, exactly as its diarization
    computes them (embedding each chunk on its own gives other vectors: cosine 0.96 with the
    diarizer's centroid on pyannote's sample); the masks come from the label's final turns,
    so the result is close, not equal: cosine 0.995-0.996 with the diarizer's centroid of
    the same label on half of pyannote's sample (tests/pipelines/test_voices.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

import numpy as np

from pipelines.errors import ModelError

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from pipelines.types import SpeakerTurn

K = TypeVar("K", bound=Hashable)

#: Most samples kept per person (see :func:`enrol`).
VOICEPRINT_LIMIT = 8

# What calibrate() chose on bench/voices.py's labelled set (bench/RESULTS.md, "Voices"):
# 27 diarized labels of two real people on one phone line in 7 re-encodings, 102 impostor
# labels. Different-speaker pairs reached 0.671 (the two people of the same call), same-
# speaker pairs (other half of the call) ranged 0.610-0.883 with 5-7 s of speech each.
#: A suggestion needs at least this cosine similarity: above every different-speaker pair
#: measured (FAR 0 of 2 936 pairs; FRR 26 % of 91 same-speaker pairs).
THRESHOLD = 0.70
#: ... and must lead the next candidate (person for this label, label for this person) by
#: this. Right guesses led by 0.153 or more; no wrong guess passed the threshold.
MARGIN = 0.10
#: Over this, a suggestion may be applied without a person looking (a setting, off by
#: default); also the level at which two labels of one recording may both be one person.
#: FAR 0, FRR 73 % on the set above.
AUTO_APPLY_THRESHOLD = 0.80

#: How a person's samples combine into one score for a label.
Scoring = Literal["max", "top2"]


@dataclass(frozen=True, slots=True)
class Suggestion(Generic[K]):
    """The person a label sounds like, with the cosine similarity that decided it."""

    person_id: K
    similarity: float


# --------------------------------------------------------------------------- vectors


def unit(vector: ArrayLike) -> NDArray[np.float64] | None:
    """``vector`` scaled to length 1, or None if it is empty, not finite or zero."""
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        return None
    norm = float(np.linalg.norm(v))
    if norm <= 1e-12 or not math.isfinite(norm):
        return None
    return v / norm


def _unit_rows(rows: ArrayLike) -> NDArray[np.float64]:
    """Rows of a 2-D array scaled to length 1; rows that cannot be (NaN, zero) are dropped."""
    m = np.asarray(rows, dtype=np.float64)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if m.ndim != 2:
        raise ValueError(f"expected embeddings as rows of a 2-D array, got shape {m.shape}")
    norms = np.linalg.norm(m, axis=1)
    ok = np.all(np.isfinite(m), axis=1) & np.isfinite(norms) & (norms > 1e-12)
    rows_ok: NDArray[np.float64] = m[ok] / norms[ok, None]
    return rows_ok


# --------------------------------------------------------------------------- voiceprints


def enrol(
    samples: Sequence[tuple[str, Sequence[float]]],
    source: str,
    embedding: ArrayLike,
    *,
    limit: int = VOICEPRINT_LIMIT,
) -> list[tuple[str, list[float]]]:
    """The voiceprint ``samples`` with ``embedding`` from ``source`` added, at most ``limit``.

    A sample of the same ``source`` is replaced (naming a label again must not count twice).
    Stored vectors are unit length. When over ``limit``, the most similar pair of samples is
    found and its older member dropped, repeatedly: what stays covers the most different
    conditions (phone, studio, ...), and of two near copies the newer one. Raises
    ``ValueError`` for an embedding that is not finite, is zero, or has another dimension
    than the samples already kept.
    """
    if limit < 1:
        raise ValueError("a voiceprint keeps at least one sample")
    new = unit(embedding)
    if new is None:
        raise ValueError(f"cannot enrol {source}: its embedding is empty, zero or not finite")
    kept: list[tuple[str, NDArray[np.float64]]] = []
    for src, vec in samples:
        if src == source:
            continue
        v = unit(vec)
        if v is None:
            continue  # a damaged stored sample is worth less than nothing: drop it
        if v.shape != new.shape:
            raise ValueError(
                f"cannot enrol {source}: its embedding has {new.size} dimensions, the "
                f"voiceprint's samples have {v.size} (made by another model? re-enrol them)"
            )
        kept.append((src, v))
    kept.append((source, new))  # newest last: order is age
    while len(kept) > limit:
        m = np.stack([v for _, v in kept])
        sim = m @ m.T
        np.fill_diagonal(sim, -np.inf)
        i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
        del kept[min(int(i), int(j))]
    return [(src, [float(x) for x in v]) for src, v in kept]


def voiceprint_matrix(samples: Iterable[tuple[str, Sequence[float]]]) -> NDArray[np.float64]:
    """The (k, dim) matrix of a voiceprint's samples, unit rows, damaged ones left out."""
    vectors = [vec for _, vec in samples]
    if not vectors:
        return np.zeros((0, 0))
    return _unit_rows(np.asarray(vectors, dtype=np.float64))


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Voiceprints(Generic[K]):
    """Everyone's samples stacked once, ready to be compared with many recordings.

    Build it with :meth:`of` when voiceprints change and reuse it: turning stored lists
    into arrays is most of the cost of a match against 1 000 people (bench/RESULTS.md).
    """

    people: tuple[K, ...]
    #: (rows, dim) unit-length samples of everyone, person after person.
    rows: NDArray[np.float64]
    #: (people, k) index into ``rows`` of each person's samples; ``present`` marks real ones.
    index: NDArray[np.intp]
    present: NDArray[np.bool_]

    @classmethod
    def of(cls, voiceprints: Mapping[K, ArrayLike]) -> Voiceprints[K]:
        """Stack ``{person: (k, dim) samples}``; damaged samples (NaN, zero) are left out,
        and people without a usable sample. Raises ``ValueError`` on mixed dimensions."""
        people: list[K] = []
        blocks: list[NDArray[np.float64]] = []
        for person, samples in voiceprints.items():
            m = np.asarray(samples, dtype=np.float64)
            if m.ndim == 1:
                m = m.reshape(1, -1)
            if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
                continue
            people.append(person)
            blocks.append(m)
        if not blocks:
            empty = np.zeros((0, 0), dtype=np.intp)
            return cls((), np.zeros((0, 0)), empty, empty.astype(bool))
        if len({b.shape[1] for b in blocks}) > 1:
            raise ValueError(
                "voiceprint samples of different dimensions: made by different models; "
                "re-enrol the voiceprints"
            )
        owner = np.repeat(np.arange(len(blocks)), [b.shape[0] for b in blocks])
        stacked = np.concatenate(blocks)
        with np.errstate(invalid="ignore", over="ignore"):
            norms = np.linalg.norm(stacked, axis=1)
        ok = np.all(np.isfinite(stacked), axis=1) & np.isfinite(norms) & (norms > 1e-12)
        rows = stacked[ok] / norms[ok, None]
        owner = owner[ok]
        counts = np.bincount(owner, minlength=len(blocks))
        keep = np.flatnonzero(counts)
        # Renumber people that kept a sample, then lay out a (people, k) gather index.
        new_id = np.full(len(blocks), -1)
        new_id[keep] = np.arange(keep.size)
        owner = new_id[owner]
        counts = counts[keep]
        k = int(counts.max()) if counts.size else 0
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        offsets = np.arange(k)[None, :]
        present = offsets < counts[:, None]
        index = np.where(present, starts[:, None] + offsets, 0).astype(np.intp)
        return cls(tuple(people[i] for i in keep), rows, index, present)


@dataclass(frozen=True)
class ScoreTable(Generic[K]):
    """Similarity of every label to every person: ``scores[i, j]`` for labels[i], people[j]."""

    labels: tuple[str, ...]
    people: tuple[K, ...]
    scores: NDArray[np.float64]


def score_table(
    labels: Mapping[str, ArrayLike],
    voiceprints: Mapping[K, ArrayLike] | Voiceprints[K],
    *,
    scoring: Scoring = "max",
) -> ScoreTable[K]:
    """Cosine similarity of each label to each person, in one matrix product.

    ``scoring="max"``: the person's best sample; ``"top2"``: the mean of the best two (one
    sample: that one). Labels whose embedding is damaged (NaN, zero) and people without a
    usable sample are left out of the table.
    """
    if scoring not in ("max", "top2"):
        raise ValueError(f"unknown scoring {scoring!r}: use 'max' or 'top2'")
    prints = voiceprints if isinstance(voiceprints, Voiceprints) else Voiceprints.of(voiceprints)
    label_rows: list[tuple[str, NDArray[np.float64]]] = []
    for label, vec in labels.items():
        u = unit(vec)
        if u is not None:
            label_rows.append((label, u))
    names = tuple(lb for lb, _ in label_rows)
    if not label_rows or not prints.people:
        return ScoreTable(names, prints.people, np.zeros((len(names), 0)))
    dim = prints.rows.shape[1]
    if any(v.size != dim for _, v in label_rows):
        raise ValueError(
            "embeddings of different dimensions cannot be compared: the labels and the "
            "voiceprints were made by different models; re-enrol the voiceprints"
        )
    q = np.stack([v for _, v in label_rows])
    sims = q @ prints.rows.T  # the one product: (labels, all samples of everyone)
    per_person = np.where(prints.present[None], sims[:, prints.index], -np.inf)
    if scoring == "max" or per_person.shape[2] == 1:
        scores = per_person.max(axis=2)
    else:
        top = -np.sort(-per_person, axis=2)[:, :, :2]
        # A person with one sample: its score, not a mean with -inf.
        scores = np.where(np.isfinite(top[:, :, 1]), top.mean(axis=2), top[:, :, 0])
    return ScoreTable(names, prints.people, scores)


def _decide(
    row: NDArray[np.float64],
    preferred: NDArray[np.bool_],
    threshold: float,
    margin: float,
) -> int | None:
    """Column of the person suggested for one label's scores, or None (see :func:`match`)."""
    if row.size == 0:
        return None
    if preferred.any():
        cols = np.flatnonzero(preferred)
        p = int(cols[np.argmax(row[cols])])
        others_preferred = row[preferred].copy()
        others_preferred[np.argmax(others_preferred)] = -np.inf
        outsiders = row[~preferred]
        best_outsider = float(outsiders.max()) if outsiders.size else -np.inf
        if (
            row[p] >= threshold
            and row[p] - float(others_preferred.max(initial=-np.inf)) >= margin
            and best_outsider - row[p] < margin
        ):
            return p
    order = np.argsort(-row, kind="stable")
    best = int(order[0])
    second = float(row[order[1]]) if row.size > 1 else -np.inf
    if row[best] >= threshold and row[best] - second >= margin:
        return best
    return None


def match(
    labels: Mapping[str, ArrayLike],
    voiceprints: Mapping[K, ArrayLike] | Voiceprints[K],
    *,
    threshold: float = THRESHOLD,
    margin: float = MARGIN,
    prefer: Iterable[K] = (),
    clear: float | None = AUTO_APPLY_THRESHOLD,
    scoring: Scoring = "max",
) -> dict[str, Suggestion[K] | None]:
    """Suggest a person for each label of one recording, or None where the voice is not clear.

    ``labels`` maps a label to its embedding; ``voiceprints`` maps a person id to an array
    (k, dim) of that person's samples (only consenting people belong here), or is a
    :class:`Voiceprints` stacked once for many calls. The score of a person is the cosine
    similarity of the label to the closest sample (``scoring="max"``).

    For each label, in this order:

    1. Participants (``prefer``): the best participant is suggested if its score is at
       least ``threshold``, at least ``margin`` above every other participant, and no one
       outside the participants scores ``margin`` or more above it (a near tie with an
       outsider goes to the participant; a clear win of an outsider means the participant
       list is incomplete, so step 2 decides).
    2. Everyone: the best person is suggested if its score is at least ``threshold`` and at
       least ``margin`` above the second best.

    Then one person per label: when several labels get the same person, the label with the
    highest score keeps it if it leads the next such label by ``margin``, and the others get
    None. Only when every one of them scores at least ``clear`` (one person split into two
    labels by diarization) do they all keep it; ``clear=None`` forbids that. A label that
    loses a person is not offered its second choice, which was no clear choice.

    Labels with a damaged embedding (NaN, zero) get None. Every label of ``labels`` is a key
    of the result.
    """
    result: dict[str, Suggestion[K] | None] = dict.fromkeys(labels)
    table = score_table(labels, voiceprints, scoring=scoring)
    if table.scores.size == 0:
        return result
    wanted = set(prefer)
    preferred = np.array([p in wanted for p in table.people], dtype=bool)
    chosen: dict[int, list[int]] = {}
    for i in range(len(table.labels)):
        j = _decide(table.scores[i], preferred, threshold, margin)
        if j is not None:
            chosen.setdefault(j, []).append(i)
    for j, rows in chosen.items():
        scores = sorted(((float(table.scores[i, j]), i) for i in rows), reverse=True)
        if len(scores) == 1:
            keep = [scores[0][1]]
        elif clear is not None and scores[-1][0] >= clear:
            keep = [i for _, i in scores]
        elif scores[0][0] - scores[1][0] >= margin:
            keep = [scores[0][1]]
        else:
            keep = []
        for i in keep:
            result[table.labels[i]] = Suggestion(table.people[j], float(table.scores[i, j]))
    return result


# --------------------------------------------------------------------------- calibration


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
        pick = _decide(row, np.zeros(row.size, dtype=bool), threshold, margin)
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


# --------------------------------------------------------------------------- embeddings


class Embedder(Protocol):
    """A speaker-embedding model that embeds windows cut from the audio on their own.

    ``__call__(waveforms (B, samples) float32, masks (B, frames) float32) -> (B, dim)``:
    one embedding per waveform, pooled over the frames where the mask is 1 (the mask is
    stretched over the waveform, whatever its frame count). Audio at ``sample_rate``.
    """

    sample_rate: int

    def __call__(self, waveforms: NDArray[np.float32], masks: NDArray[np.float32]) -> Any: ...


class RecordingEmbedder(Protocol):
    """A speaker-embedding model that embeds windows of a whole recording, as a diarizer
    that computes its features over the recording does (``SourcebookDiarization``).

    ``embed_windows(audio, starts (N,) seconds, masks (N, frames)) -> (N, dim)``, audio at
    ``sample_rate``; ``window`` and ``step`` (seconds) are the diarizer's chunk grid.
    """

    sample_rate: int
    window: float
    step: float

    def embed_windows(
        self, audio: NDArray[np.float32], starts: NDArray[np.float64], masks: NDArray[np.float32]
    ) -> Any: ...


class _PyannoteEmbedder:
    """Adapter for pyannote's embedding inference (``SpeakerDiarization._embedding``).

    Relies only on: ``inference(waveforms: Tensor (B, 1, samples), masks=Tensor (B, frames))
    -> ndarray (B, dim)`` and ``inference.sample_rate``, which every pyannote 3.x/4.x
    ``PretrainedSpeakerEmbedding`` provides, whatever model class is behind it.
    """

    def __init__(self, inference: Any) -> None:
        self._inference = inference
        self.sample_rate = int(inference.sample_rate)

    def __call__(self, waveforms: NDArray[np.float32], masks: NDArray[np.float32]) -> Any:
        import torch  # heavy: only where a diarizer is loaded anyway

        w = torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32)).unsqueeze(1)
        m = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32))
        return self._inference(w, masks=m)


def embedder_from_diarizer(diarizer: object) -> Embedder | RecordingEmbedder:
    """The embedding model a loaded diarizer uses, as it uses it.

    Looks for, in order: ``diarizer.embedder`` (an :class:`Embedder` or
    :class:`RecordingEmbedder`, if the diarizer offers one); the pipeline's own
    ``diarizer.pipeline.recording_embedder()`` (``SourcebookDiarization``: CAM++ features
    over the whole recording, as its diarization computes them); then pyannote's
    ``diarizer.pipeline._embedding``, which embeds each window on its own. Raises
    ``ModelError`` when none is there (the diarizer changed: give it an ``embedder``).
    """
    own = getattr(diarizer, "embedder", None)
    if own is not None and hasattr(own, "sample_rate") and (
        callable(own) or hasattr(own, "embed_windows")
    ):
        return own  # type: ignore[no-any-return]
    pipeline = getattr(diarizer, "pipeline", None)
    make = getattr(pipeline, "recording_embedder", None)
    if callable(make):
        recording = make()
        if recording is not None:
            return recording  # type: ignore[no-any-return]
    inference = getattr(pipeline, "_embedding", None)
    if inference is None or not callable(inference) or not hasattr(inference, "sample_rate"):
        raise ModelError(
            "this diarizer exposes no speaker-embedding model (neither .embedder nor "
            "pyannote's .pipeline._embedding): embeddings cannot be recomputed; "
            "re-transcribe the recording instead"
        )
    return _PyannoteEmbedder(inference)


#: Window and hop of the recomputation, unless the embedder gives its diarizer's grid:
#: pyannote's (10 s chunks every 1 s, as configured by `sourcebook models install`). On
#: labels with 5-7 s of speech a 2.5 s hop agreed with pyannote's centroid only to cosine
#: 0.965 (1 s: 0.992 or more); on long recordings MAX_WINDOWS bounds the work anyway.
WINDOW_S = 10.0
STEP_S = 1.0
#: pyannote keeps a chunk's embedding for clustering only if the speaker talks alone for
#: at least this share of it; a label without such a chunk gets no embedding (as there).
MIN_ACTIVE_RATIO = 0.2
#: Bound on the work per label: windows spread evenly over the recording beyond this.
#: Estimate, not measured on long real speech: 16 chunk embeddings of one voice with
#: pairwise cosine ~0.7 average to within cosine ~0.99 of the mean of all of them. It costs
#: 16 CAM++ passes per label, against one per second of audio for diarization.
MAX_WINDOWS = 16
_FRAMES_PER_S = 100
_BATCH = 16


def chunk_starts(num_samples: int, rate: int, window: float, step: float) -> list[float]:
    """Starts (seconds) of pyannote's chunks over ``num_samples``: whole windows every
    ``step``, then one zero-padded window on the same grid where audio is left over."""
    size, hop = round(window * rate), round(step * rate)
    whole = (num_samples - size) // hop + 1 if num_samples >= size else 0
    count = whole + int(num_samples < size or (num_samples - size) % hop > 0)
    return [c * step for c in range(count)]


def embed_labels(
    embedder: Embedder | RecordingEmbedder | Callable[..., Any],
    waveform: ArrayLike,
    turns: Iterable[SpeakerTurn],
    *,
    labels: Iterable[str] | None = None,
    step: float | None = None,
    max_windows: int = MAX_WINDOWS,
) -> dict[str, NDArray[np.float64] | None]:
    """One embedding per label, comparable with ``Diarization.embeddings``.

    ``waveform`` is mono audio at the embedder's sample rate (16 kHz), ``turns`` the
    recording's speaker turns (all labels: overlapped speech is left out, as pyannote
    does). For each label: the diarizer's chunks (the embedder's ``window`` every ``step``
    seconds; else 10 s every ``step``, default 1 s) in which the label speaks alone at least
    a fifth of the window, at most ``max_windows`` of them (spread evenly), each embedded
    with the label's frames as mask; the mean of the raw embeddings, as pyannote's
    centroid is. None for a label with no such window (too little speech to be recognised
    reliably).
    """
    audio = np.asarray(waveform, dtype=np.float32).reshape(-1)
    rate = int(getattr(embedder, "sample_rate", 16000))
    window_s = float(getattr(embedder, "window", WINDOW_S))
    step_s = step if step is not None else float(getattr(embedder, "step", STEP_S))
    turn_list = list(turns)
    wanted = sorted(set(labels) if labels is not None else {t.speaker for t in turn_list})
    result: dict[str, NDArray[np.float64] | None] = dict.fromkeys(wanted)
    duration = audio.size / rate
    if duration <= 0 or not wanted:
        return result
    starts = chunk_starts(audio.size, rate, window_s, step_s)
    win = round(window_s * _FRAMES_PER_S)
    n_frames = max(math.ceil(duration * _FRAMES_PER_S), round(starts[-1] * _FRAMES_PER_S) + win)
    activity: dict[str, NDArray[np.float32]] = {}
    for t in turn_list:
        a = activity.setdefault(t.speaker, np.zeros(n_frames, dtype=np.float32))
        lo = max(0, round(t.start * _FRAMES_PER_S))
        hi = min(n_frames, round(t.end * _FRAMES_PER_S))
        a[lo:hi] = 1.0
    total = sum(activity.values(), np.zeros(n_frames, dtype=np.float32))

    jobs: list[tuple[float, str, NDArray[np.float32]]] = []
    for label in wanted:
        own = activity.get(label)
        if own is None:
            continue
        clean = own * (total < 2)
        picked: list[tuple[float, NDArray[np.float32]]] = []
        for s in starts:
            first = round(s * _FRAMES_PER_S)
            mask = clean[first : first + win]
            if mask.sum() >= MIN_ACTIVE_RATIO * win:
                picked.append((s, mask))
        if len(picked) > max_windows:
            idx = np.linspace(0, len(picked) - 1, max_windows).round().astype(int)
            picked = [picked[i] for i in sorted(set(idx.tolist()))]
        jobs.extend((s, label, m) for s, m in picked)
    # Same window for several labels side by side: a CAM++ pass can be shared between them.
    jobs.sort(key=lambda j: (j[0], j[1]))
    if not jobs:
        return result
    masks = np.stack([m for _, _, m in jobs])
    if hasattr(embedder, "embed_windows"):
        starts_s = np.array([s for s, _, _ in jobs], dtype=np.float64)
        out = np.asarray(embedder.embed_windows(audio, starts_s, masks), dtype=np.float64)
    else:
        out = _embed_cut_windows(embedder, audio, rate, window_s, jobs, masks)
    if out.ndim != 2 or out.shape[0] != len(jobs):
        raise ModelError(f"the embedding model returned shape {out.shape} for {len(jobs)}")
    sums: dict[str, NDArray[np.float64]] = {}
    counts: dict[str, int] = {}
    for k, (_, label, _) in enumerate(jobs):
        if np.all(np.isfinite(out[k])):
            sums[label] = sums.get(label, 0.0) + out[k]
            counts[label] = counts.get(label, 0) + 1
    for label, total_vec in sums.items():
        result[label] = total_vec / counts[label]
    return result


def _embed_cut_windows(
    embedder: Embedder | Callable[..., Any],
    audio: NDArray[np.float32],
    rate: int,
    window_s: float,
    jobs: Sequence[tuple[float, str, NDArray[np.float32]]],
    masks: NDArray[np.float32],
) -> NDArray[np.float64]:
    """(N, dim) embeddings of the jobs' windows, each cut from ``audio`` and embedded alone."""
    win_samples = round(window_s * rate)
    parts: list[NDArray[np.float64]] = []
    for b in range(0, len(jobs), _BATCH):
        batch = jobs[b : b + _BATCH]
        waves = np.zeros((len(batch), win_samples), dtype=np.float32)
        for k, (s, _, _) in enumerate(batch):
            lo = round(s * rate)
            chunk = audio[lo : lo + win_samples]
            waves[k, : chunk.size] = chunk  # zero padded at the end, as pyannote pads
        out = np.asarray(embedder(waves, masks[b : b + _BATCH]), dtype=np.float64)
        if out.ndim != 2 or out.shape[0] != len(batch):
            raise ModelError(f"the embedding model returned shape {out.shape} for {len(batch)}")
        parts.append(out)
    return np.concatenate(parts)
