"""The metrics, by name. Each compares a candidate set with a real set (`Features` of both).

`better` says which way is good: "lower" (distances, errors, KL), "higher"
(fractions), or "one" (ratios whose ideal is 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import wasserstein_distance

from videogan.metrics.config import EvaluateConfig
from videogan.metrics.distances import (
    frechet_distance, kernel_distance, mean_pairwise_distance, prdc,
)
from videogan.metrics.features import Features
from videogan.metrics.modes import mode_histogram, num_modes, present_classes

MetricFn = Callable[[Features, Features, EvaluateConfig], float]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    better: Literal["lower", "higher", "one"]
    needs_digits: bool  # only where the evaluator has a digit classifier


METRICS: dict[str, Metric] = {}


def metric(name: str, better: Literal["lower", "higher", "one"], needs_digits: bool = False):
    def register(fn: MetricFn) -> MetricFn:
        METRICS[name] = Metric(name, fn, better, needs_digits)
        return fn
    return register


def compute(fake: Features, real: Features, cfg: EvaluateConfig,
            names: list[str] | None = None) -> dict[str, float]:
    """Every applicable metric (or those named) of `fake` against `real`."""
    chosen = [METRICS[n] for n in names] if names else list(METRICS.values())
    global _prdc_of_this_call
    _prdc_of_this_call = {}
    try:
        return {m.name: float(m.fn(fake, real, cfg)) for m in chosen
                if not (m.needs_digits and (fake.modes is None or real.modes is None))}
    finally:
        _prdc_of_this_call = None


# precision, recall, density and coverage share one neighbour search per `compute` call
_prdc_of_this_call: dict[tuple[int, int, int], dict[str, float]] | None = None


def _prdc(fake: Features, real: Features, cfg: EvaluateConfig) -> dict[str, float]:
    key = (id(fake), id(real), cfg.k)
    if _prdc_of_this_call is None:  # called outside `compute`: nothing to share
        return prdc(real.video, fake.video, cfg.k)
    if key not in _prdc_of_this_call:
        _prdc_of_this_call[key] = prdc(real.video, fake.video, cfg.k)
    return _prdc_of_this_call[key]


# ---------------------------------------------------------------- distributions
@metric("fd_video", "lower")
def frechet_distance_of_video_features(fake, real, cfg):
    return frechet_distance(fake.video, real.video)


@metric("fd_frame", "lower")
def frechet_distance_of_frame_features(fake, real, cfg):
    return frechet_distance(fake.frame.reshape(-1, fake.frame.shape[-1]),
                            real.frame.reshape(-1, real.frame.shape[-1]))


@metric("kd_video", "lower")
def kernel_distance_of_video_features(fake, real, cfg):
    return kernel_distance(fake.video, real.video)


@metric("precision", "higher")
def share_of_fakes_inside_the_real_manifold(fake, real, cfg):
    return _prdc(fake, real, cfg)["precision"]


@metric("recall", "higher")
def share_of_reals_inside_the_fake_manifold(fake, real, cfg):
    return _prdc(fake, real, cfg)["recall"]


@metric("density", "higher")
def real_neighbourhoods_per_fake(fake, real, cfg):
    return _prdc(fake, real, cfg)["density"]


@metric("coverage", "higher")
def share_of_real_neighbourhoods_with_a_fake(fake, real, cfg):
    return _prdc(fake, real, cfg)["coverage"]


# ---------------------------------------------------------------- digits (labelled sources)
@metric("classes_covered", "higher", needs_digits=True)
def share_of_digit_classes_produced(fake, real, cfg):
    return present_classes(fake.probs)[fake.modes < _invalid(fake)].any(axis=0).mean()


@metric("modes_covered", "higher", needs_digits=True)
def share_of_real_digit_sets_produced(fake, real, cfg):
    wanted = set(real.modes.tolist()) - {_invalid(real)}
    return len(wanted & set(fake.modes.tolist())) / max(len(wanted), 1)


@metric("mode_kl", "lower", needs_digits=True)
def kl_real_to_fake_over_digit_sets(fake, real, cfg):
    k = fake.digits_per_video
    p, q = mode_histogram(real.modes, k) + 1, mode_histogram(fake.modes, k) + 1
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


@metric("content_consistency", "higher", needs_digits=True)
def share_of_videos_keeping_their_digits(fake, real, cfg):
    frames = fake.probs >= 0.5  # (N, T, 10)
    same = (frames == frames[:, :1]).all(axis=(1, 2))
    return (same & frames[:, 0].any(axis=1)).mean()


@metric("recognisable_frames", "higher", needs_digits=True)
def share_of_frames_with_a_confident_digit(fake, real, cfg):
    return (fake.probs.max(axis=2) >= cfg.threshold).mean()


# ---------------------------------------------------------------- time
@metric("temporal_error", "lower")
def relative_error_of_frame_to_frame_feature_change(fake, real, cfg):
    step = lambda f: np.linalg.norm(np.diff(f.frame, axis=1), axis=2).mean()  # noqa: E731
    return abs(step(fake) - step(real)) / max(step(real), 1e-12)


@metric("motion_error", "lower")
def relative_wasserstein_of_pixel_motion(fake, real, cfg):
    return wasserstein_distance(fake.motion, real.motion) / max(real.motion.mean(), 1e-12)


@metric("diversity", "one")
def pairwise_video_distance_ratio(fake, real, cfg):
    return mean_pairwise_distance(fake.video) / max(mean_pairwise_distance(real.video), 1e-12)


def _invalid(features: Features) -> int:
    return num_modes(features.digits_per_video) - 1
