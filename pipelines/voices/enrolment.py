"""Voiceprints: a bounded, diverse list of a person's samples (see :func:`enrol`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipelines.voices.vectors import unit, unit_rows

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

#: Most samples kept per person (see :func:`enrol`).
VOICEPRINT_LIMIT = 8


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
    return unit_rows(np.asarray(vectors, dtype=np.float64))
