"""The distance functions against values known in closed form, and the mode bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from videogan.metrics.distances import (
    frechet_distance,
    kernel_distance,
    knn_radii,
    mean_pairwise_distance,
    prdc,
)
from videogan.metrics.modes import (
    mode_histogram,
    mode_table,
    modes_from_digits,
    modes_from_probs,
    num_modes,
)


def gaussian(n, dim=4, shift=0.0, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(shift, scale, (n, dim))


def test_frechet_distance_matches_the_closed_form():
    # N(0, I) vs N(m, s^2 I) in d dims: d * m^2 + d * (1 - s)^2
    x, y = gaussian(20000, seed=1), gaussian(20000, shift=0.5, scale=2.0, seed=2)
    assert frechet_distance(x, y) == pytest.approx(4 * 0.25 + 4 * 1.0, rel=0.05)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_survives_a_singular_covariance():
    x = gaussian(50, dim=8)
    x[:, 0] = 0.0
    assert np.isfinite(frechet_distance(x, gaussian(50, dim=8, seed=3)))


def test_kernel_distance_is_unbiased_near_zero_and_grows_with_shift():
    same = kernel_distance(gaussian(1000, seed=1), gaussian(1000, seed=2))
    shifted = kernel_distance(gaussian(1000, seed=1), gaussian(1000, shift=1.0, seed=2))
    assert abs(same) < 0.05 and shifted > 1.0


def test_prdc_of_two_samples_of_one_distribution():
    scores = prdc(gaussian(500, seed=1), gaussian(500, seed=2), k=5)
    assert scores["precision"] > 0.8 and scores["recall"] > 0.8 and scores["coverage"] > 0.8
    assert 0.7 < scores["density"] < 1.3


def test_prdc_of_a_collapsed_set_keeps_precision_and_loses_recall():
    real = gaussian(500, seed=1)
    collapsed = np.repeat(real[:3], 167, axis=0)[:500]  # copies of three real points
    scores = prdc(real, collapsed, k=5)
    assert scores["recall"] == 0.0 and scores["coverage"] < 0.05
    assert scores["precision"] == 1.0


def test_prdc_of_a_far_set_is_zero():
    scores = prdc(gaussian(300, seed=1), gaussian(300, shift=20, seed=2))
    assert scores == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_knn_radii_skip_the_point_itself():
    x = np.array([[0.0], [1.0], [3.0]])
    assert np.allclose(knn_radii(x, 1), [1.0, 1.0, 2.0])


def test_mean_pairwise_distance_excludes_the_diagonal():
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert mean_pairwise_distance(x) == pytest.approx(5.0)


def test_modes_are_sets_of_distinct_digits():
    table = mode_table(2)
    assert len(table) == 55 and num_modes(2) == 56
    modes = modes_from_digits(np.array([[3, 7], [7, 3], [4, 4]]), 2)
    assert modes[0] == modes[1] == table[(3, 7)] and modes[2] == table[(4,)]


def test_predicted_modes_average_over_frames_and_flag_invalid_sets():
    probs = np.zeros((3, 4, 10))
    probs[0, :, [2, 5]] = 0.9
    probs[1, :, [1, 2, 3]] = 0.9  # three digits: not a valid set for K=2
    # video 2: nothing recognised
    modes = modes_from_probs(probs, 2)
    assert modes[0] == mode_table(2)[(2, 5)]
    assert modes[1] == modes[2] == num_modes(2) - 1
    assert mode_histogram(modes, 2).sum() == 3
