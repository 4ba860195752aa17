"""Score a clip array against the real test split, beside the real-versus-real reference.

The test split gives two disjoint real halves A and B of `num_samples` clips
each. The candidate set is scored against A; B is scored against A the same
way (`<name>_ref`), so both numbers carry the same finite-sample bias.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videogan.config import ConfigError
from videogan.files import write_atomic
from videogan.metrics.config import EvaluateConfig
from videogan.metrics.features import Features, extract
from videogan.metrics.fvd import FvdScorer
from videogan.metrics.network import Evaluator
from videogan.metrics.registry import compute


@dataclass(frozen=True)
class RealHalves:
    a: np.ndarray  # (n, T, H, W, C) the set everything is scored against
    b: np.ndarray  # (n, T, H, W, C) the reference candidate
    digits_a: np.ndarray | None  # (n, K) true labels of A, where the source has them


def real_halves(clips: np.ndarray, n: int, frames: int, seed: int, digits: np.ndarray | None = None) -> RealHalves:
    """Two disjoint seeded halves of n clips, each cropped (seeded) to `frames` frames."""
    if len(clips) < 2 * n:
        raise ConfigError(
            f"evaluate.num_samples: the test split has {len(clips)} clips, fewer than 2 x {n} "
            f"(two real halves); lower evaluate.num_samples to at most {len(clips) // 2}"
        )
    if frames > clips.shape[1]:
        raise ConfigError(f"videos have {frames} frames but the test clips only {clips.shape[1]}")
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(clips))
    a, b = np.sort(order[:n]), np.sort(order[n : 2 * n])
    starts = rng.integers(0, clips.shape[1] - frames + 1, 2 * n)
    crop = lambda idx, s: np.stack([clips[i, t : t + frames] for i, t in zip(idx, s)])  # noqa: E731
    return RealHalves(crop(a, starts[:n]), crop(b, starts[n:]), None if digits is None else np.asarray(digits)[a])


MIN_CLIPS = 2  # evaluate.num_samples's minimum


def check_clip_array(fake: np.ndarray) -> np.ndarray:
    """A clip array a metric can read: uint8 (N, T, H, W, C) with at least MIN_CLIPS clips."""
    if fake.ndim != 5 or fake.dtype != np.uint8:
        raise ConfigError(f"clips must be uint8 (N, T, H, W, C); got {fake.dtype} with shape {fake.shape}")
    if len(fake) < MIN_CLIPS:
        raise ConfigError(f"{len(fake)} clips given; scoring needs at least {MIN_CLIPS}")
    return fake


def check_clips(fake: np.ndarray, clip_shape: tuple[int, ...], n: int) -> np.ndarray:
    """The first n candidate clips, after checking they have the real clips' shape (T, H, W, C)."""
    check_clip_array(fake)
    if fake.shape[1:] != tuple(clip_shape):
        raise ConfigError(f"clips are (T, H, W, C) = {fake.shape[1:]} but the real ones {tuple(clip_shape)}")
    if len(fake) < n:
        raise ConfigError(
            f"{len(fake)} clips given but evaluate.num_samples is {n}; "
            f"give more or set evaluate.num_samples={len(fake)}"
        )
    return fake[:n]


class Scorer:
    """Features of the real halves, computed once; scores any number of candidate sets."""

    def __init__(
        self,
        evaluator: Evaluator,
        halves: RealHalves,
        cfg: EvaluateConfig,
        device: str = "cpu",
        progress: bool = False,
        source: str | None = None,
    ):
        """`source` is the store's (meta.json): it decides which metrics apply."""
        self.evaluator, self.cfg, self.device, self.progress = evaluator, cfg, device, progress
        self.source, self.clip_shape = source, halves.a.shape[1:]
        self.real = self.features(halves.a, "real A", halves.digits_a)
        self.reference = compute(self.features(halves.b, "real B"), self.real, cfg, source=source)
        self.fvd = FvdScorer.build(halves.a, halves.b, cfg.fvd, device, progress)

    def features(self, clips: np.ndarray, name: str, digits: np.ndarray | None = None) -> Features:
        return extract(
            self.evaluator,
            clips,
            digits,
            self.cfg.batch_size,
            self.device,
            f"features: {name}" if self.progress else None,
        )

    def score(self, fake: np.ndarray, init: np.ndarray | None = None) -> dict[str, float]:
        """Flat {name, name_ref, ..., fd_video_init, fvd*, samples_*}: `fake` (and the step-0 `init` clips)."""
        fake = check_clips(fake, self.clip_shape, len(self.real))
        values = compute(self.features(fake, "candidate"), self.real, self.cfg, source=self.source)
        out: dict[str, float] = {}
        for name, value in values.items():
            out[name], out[f"{name}_ref"] = value, self.reference[name]
        if init is not None:
            init = check_clips(init, self.clip_shape, len(self.real))
            out["fd_video_init"] = compute(self.features(init, "step 0"), self.real, self.cfg, ["fd_video"])["fd_video"]
        if self.fvd is not None:
            out.update(self.fvd.score(fake, init))
        out.update(samples_fake=len(fake), samples_real=len(self.real), frames=self.clip_shape[0])
        return out


def write_metrics(metrics: dict[str, float], path: str | Path) -> Path:
    """Flat name -> number JSON, written atomically."""
    return write_atomic((json.dumps(metrics, indent=2) + "\n").encode(), path)
