"""Everything the metrics need from one clip array, computed once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from videogan.data.batches import to_video_batch
from videogan.metrics.modes import modes_from_digits, modes_from_probs
from videogan.metrics.network import Evaluator


@dataclass(frozen=True)
class Features:
    video: np.ndarray  # (N, F + M) normalised video features
    frame: np.ndarray  # (N, T, F) normalised frame features
    motion: np.ndarray  # (N,) mean absolute pixel change between consecutive frames, in [0, 1]
    probs: np.ndarray | None  # (N, T, 10) per-frame digit probabilities; None without a classifier
    modes: np.ndarray | None  # (N,) mode index: from true labels when given, else predicted
    digits_per_video: int = 0  # K: modes are sets of 1..K digit classes (0 = no classifier)
    clips: np.ndarray | None = None  # the uint8 clips themselves, for the pixel metrics
    content_dims: int = 0  # the first dims of each frame feature: what the frame shows (the `what` block)

    def __len__(self) -> int:
        return len(self.video)


def pixel_motion(clips: np.ndarray) -> np.ndarray:
    """uint8 (N, T, H, W, C) -> (N,) mean |x_{t+1} - x_t| / 255."""
    out = np.empty(len(clips), np.float64)
    for start in range(0, len(clips), 256):
        chunk = np.asarray(clips[start : start + 256], np.float32)
        out[start : start + 256] = np.abs(np.diff(chunk, axis=1)).mean(axis=(1, 2, 3, 4)) / 255.0
    return out


@torch.no_grad()
def extract(
    evaluator: Evaluator,
    clips: np.ndarray,
    digits: np.ndarray | None = None,
    batch_size: int = 100,
    device: str | torch.device = "cpu",
    desc: str | None = None,
) -> Features:
    """Features of uint8 clips (N, T, H, W, C); `digits` (N, K) are true labels, if known."""
    evaluator = evaluator.to(device).eval()
    parts: dict[str, list[np.ndarray]] = {"video": [], "frame": [], "probs": []}
    starts = range(0, len(clips), batch_size)
    for start in tqdm(starts, desc=desc, disable=desc is None, unit="batch", leave=False):
        out = evaluator.features(to_video_batch(clips[start : start + batch_size]).to(device))
        for key, value in out.items():
            parts[key].append(value.float().cpu().numpy())
    probs = np.concatenate(parts["probs"]) if parts["probs"] else None
    k = evaluator.arch.digits_per_video
    modes: np.ndarray | None
    if digits is not None and k:
        modes = modes_from_digits(digits, k)
    else:
        modes = modes_from_probs(probs, k) if probs is not None else None
    return Features(
        np.concatenate(parts["video"]),
        np.concatenate(parts["frame"]),
        pixel_motion(clips),
        probs,
        modes,
        k,
        clips,
        evaluator.frame_blocks[0],
    )
