"""Distances between two feature sets (rows are samples)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from sklearn.neighbors import NearestNeighbors


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x S_y)^(1/2)) (Heusel et al. 2017)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    with warnings.catch_warnings():  # a singular product is expected for collapsed sets
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s_x @ s_y)
        if not np.isfinite(covmean).all():  # regularise as the reference (pytorch-fid) code does
            eps = 1e-6 * np.eye(len(s_x))
            covmean = linalg.sqrtm((s_x + eps) @ (s_y + eps))
    covmean = np.real(covmean)
    value = np.sum((mu_x - mu_y) ** 2) + np.trace(s_x) + np.trace(s_y) - 2 * np.trace(covmean)
    return float(max(value, 0.0))


def kernel_distance(x: np.ndarray, y: np.ndarray, block: int = 1000) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (KID, Binkowski et al. 2018), averaged over blocks."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = min(len(x), len(y))
    blocks = max(1, n // block)
    size = n // blocks
    values = [_mmd2(x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]) for i in range(blocks)]
    return float(np.mean(values))


def _mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m = len(x)
    off = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))  # noqa: E731
    return off(kxx) + off(kyy) - 2 * kxy.mean()


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row."""
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return dist[:, k]


def balls_containing(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """For each point, how many open balls (centre, radius) contain it (strict <, as in Naeem's prdc)."""
    counts = np.empty(len(points), np.int64)
    for start in range(0, len(points), chunk):
        p = points[start : start + chunk]
        d2 = (p**2).sum(1)[:, None] - 2 * p @ centres.T + (centres**2).sum(1)[None]
        counts[start : start + chunk] = (np.sqrt(np.maximum(d2, 0)) < radii[None]).sum(1)
    return counts


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Precision, recall (Kynkaanniemi 2019), density and coverage (Naeem 2020) with k neighbours."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    real_r, fake_r = knn_radii(real, k), knn_radii(fake, k)
    in_real = balls_containing(fake, real, real_r)
    nearest_fake, _ = NearestNeighbors(n_neighbors=1).fit(fake).kneighbors(real)
    return {
        "precision": float((in_real > 0).mean()),
        "recall": float((balls_containing(real, fake, fake_r) > 0).mean()),
        "density": float(in_real.sum() / (k * len(fake))),
        "coverage": float((nearest_fake[:, 0] < real_r).mean()),
    }


def mean_pairwise_distance(x: np.ndarray, max_points: int = 2000, seed: int = 0) -> float:
    """Mean Euclidean distance between distinct rows (a seeded subset of at most max_points)."""
    x = np.asarray(x, np.float64)
    if len(x) > max_points:
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
    d2 = (x**2).sum(1)[:, None] - 2 * x @ x.T + (x**2).sum(1)[None]
    np.fill_diagonal(d2, 0.0)
    n = len(x)
    return float(np.sqrt(np.maximum(d2, 0)).sum() / (n * (n - 1)))
