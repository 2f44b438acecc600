"""Embeddings as unit vectors: every comparison in :mod:`pipelines.voices` is a cosine."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


def unit(vector: ArrayLike) -> NDArray[np.float64] | None:
    """``vector`` scaled to length 1, or None if it is empty, not finite or zero."""
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        return None
    norm = float(np.linalg.norm(v))
    if norm <= 1e-12 or not math.isfinite(norm):
        return None
    return v / norm


def unit_rows(rows: ArrayLike) -> NDArray[np.float64]:
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
