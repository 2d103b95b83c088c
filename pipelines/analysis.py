"""Task-independent helpers for the notebooks (pure Python + numpy, unit-tested): embedding nearest
neighbours and length histograms. The task-specific ones are in pipelines/tasks/<task>/analysis.py."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def nearest_neighbours(matrix, itos: Sequence[str], word: str, k: int = 10, skip: int = 2):
    """Top-``k`` words by cosine similarity to ``word``, highest first.

    ``matrix`` is ``(V, D)`` with row ``i`` the vector of ``itos[i]``. The
    word itself and the first ``skip`` rows (padding/OOV) are never returned.
    Zero-norm rows get similarity 0. Raises KeyError for an unknown word.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != len(itos):
        raise ValueError(
            f"matrix of shape {matrix.shape} does not match a vocabulary of {len(itos)} words"
        )
    if k < 0 or skip < 0:
        raise ValueError(f"k and skip must be >= 0, got k={k}, skip={skip}")
    try:
        idx = list(itos).index(word)
    except ValueError:
        raise KeyError(f"word {word!r} is not in the vocabulary ({len(itos)} words)") from None
    norms = np.linalg.norm(matrix, axis=1)
    dots = matrix @ matrix[idx]
    denom = norms * norms[idx]
    sims = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
    candidates = np.array([i for i in range(skip, len(itos)) if i != idx], dtype=np.int64)
    if candidates.size == 0 or k == 0:
        return []
    order = candidates[np.argsort(-sims[candidates], kind="stable")][:k]
    return [(str(itos[i]), float(sims[i])) for i in order]


def length_histogram_data(lengths, bins=30) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, bin_edges)`` of sequence lengths, as :func:`numpy.histogram`."""
    return np.histogram(np.asarray(lengths, dtype=np.float64), bins=bins)
