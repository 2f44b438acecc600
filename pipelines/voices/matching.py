"""Matching: the consenting person each label of a recording sounds like, if any."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

import numpy as np

from pipelines.voices.vectors import unit

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

K = TypeVar("K", bound=Hashable)

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


def decide(
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
        j = decide(table.scores[i], preferred, threshold, margin)
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
