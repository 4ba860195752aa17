"""Modes of a labelled source: the set of digit classes in a video.

A mode is the unordered set of distinct digits a video shows (a pair of equal
digits is the one-digit set), so true labels and the classifier's multi-label
output land in the same space. Index `len(table)` is the "no valid set" bin:
no digit recognised, or more than K.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np

from videogan.metrics.tasks import NUM_CLASSES


@cache
def mode_table(k: int) -> dict[tuple[int, ...], int]:
    """Every set of 1..k distinct classes, sorted, to its index."""
    sets = [c for size in range(1, k + 1) for c in itertools.combinations(range(NUM_CLASSES), size)]
    return {s: i for i, s in enumerate(sets)}


def num_modes(k: int) -> int:
    """Mode bins including the invalid bin."""
    return len(mode_table(k)) + 1


def modes_from_digits(digits: np.ndarray, k: int) -> np.ndarray:
    """True labels (N, K) -> mode index per video."""
    table = mode_table(k)
    return np.array([table[tuple(sorted(set(row.tolist())))] for row in np.asarray(digits)], np.int64)


def present_classes(probs: np.ndarray) -> np.ndarray:
    """Per-frame probabilities (N, T, 10) -> classes the video shows (N, 10) bool (mean over frames >= 0.5)."""
    return probs.mean(axis=1) >= 0.5


def modes_from_probs(probs: np.ndarray, k: int) -> np.ndarray:
    """Classifier output (N, T, 10) -> mode index per video (invalid bin if 0 or more than k classes)."""
    table, invalid = mode_table(k), len(mode_table(k))
    present = present_classes(probs)
    return np.array([table.get(tuple(np.nonzero(row)[0].tolist()), invalid) for row in present], np.int64)


def mode_histogram(modes: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(modes, minlength=num_modes(k)).astype(np.float64)
