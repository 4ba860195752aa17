"""The metrics, by name. Each compares a candidate set with a real set (`Features` of both).

`better` says which way is good: "lower" (distances, errors, KL), "higher"
(fractions), "one" (ratios whose ideal is 1), or "real" (counts whose ideal is
the real data's, `<name>_ref`). Which metrics apply depends on
the store: digit metrics need the evaluator's classifier (a labelled source),
maze and sprite metrics a Ms Pacman source (the store's `source`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import wasserstein_distance

from videogan.metrics.config import EvaluateConfig
from videogan.metrics.distances import (
    frechet_distance,
    kernel_distance,
    mean_pairwise_distance,
    prdc,
)
from videogan.metrics.features import Features
from videogan.metrics.modes import mode_histogram, num_modes, present_classes
from videogan.metrics.pixels import best_wall_iou, motion_by_transition, moving_sprites

MetricFn = Callable[[Features, Features, EvaluateConfig], float]
PACMAN = ("pacman_emulator", "pacman_folder")
SEEN, UNSEEN = 0.5, 0.2  # content_consistency: a half reads a digit class at mean probability >= SEEN,
# and has lost it below UNSEEN


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    better: Literal["lower", "higher", "one", "real"]
    needs_digits: bool  # only where the evaluator has a digit classifier
    one_of_several: bool = False  # fn returns a dict of several metrics by name
    sources: tuple[str, ...] | None = None  # only for stores of these sources (None: any)

    def applies(self, fake: Features, real: Features, source: str | None) -> bool:
        if self.needs_digits and (fake.modes is None or real.modes is None):
            return False
        return self.sources is None or source in self.sources


METRICS: dict[str, Metric] = {}


def metric(
    name: str,
    better: Literal["lower", "higher", "one", "real"],
    needs_digits: bool = False,
    sources: tuple[str, ...] | None = None,
):
    def register(fn: MetricFn) -> MetricFn:
        METRICS[name] = Metric(name, fn, better, needs_digits, sources=sources)
        return fn

    return register


def metrics(better: dict[str, Literal["lower", "higher", "one", "real"]]):
    """Several metrics from one computation, which returns them as a dict by name."""

    def register(fn):
        for name, direction in better.items():
            METRICS[name] = Metric(name, fn, direction, needs_digits=False, one_of_several=True)
        return fn

    return register


def compute(
    fake: Features, real: Features, cfg: EvaluateConfig, names: list[str] | None = None, source: str | None = None
) -> dict[str, float]:
    """Every metric (or those named) that applies to a store of `source`, of `fake` against `real`;
    each computation runs once."""
    chosen = [METRICS[n] for n in names] if names else list(METRICS.values())
    results: dict[Callable, Any] = {}
    out: dict[str, float] = {}
    for m in chosen:
        if not m.applies(fake, real, source):
            continue
        if m.fn not in results:
            results[m.fn] = m.fn(fake, real, cfg)
        out[m.name] = float(results[m.fn][m.name] if m.one_of_several else results[m.fn])
    return out


# ---------------------------------------------------------------- distributions
@metric("fd_video", "lower")
def frechet_distance_of_video_features(fake, real, cfg):
    return frechet_distance(fake.video, real.video)


@metric("fd_frame", "lower")
def frechet_distance_of_frame_features(fake, real, cfg):
    return frechet_distance(fake.frame.reshape(-1, fake.frame.shape[-1]), real.frame.reshape(-1, real.frame.shape[-1]))


@metric("kd_video", "lower")
def kernel_distance_of_video_features(fake, real, cfg):
    return kernel_distance(fake.video, real.video)


@metrics({"precision": "higher", "recall": "higher", "density": "higher", "coverage": "higher"})
def precision_recall_density_coverage(fake, real, cfg):
    """Naeem et al. 2020, from one k-nearest-neighbour search."""
    return prdc(real.video, fake.video, cfg.k)


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
    """Videos whose two halves show the same digits: no class is read in one half (mean probability over
    its frames >= SEEN) and out of sight in the other (< UNSEEN), and each half reads a digit.
    Half-video means, not single frames: one misread or occluded frame does not break a video, and a
    class in between (a digit half hidden under the other for a while) counts as neither."""
    half = fake.probs.shape[1] // 2
    first, second = fake.probs[:, :half].mean(axis=1), fake.probs[:, half:].mean(axis=1)
    seen_first, seen_second = first >= SEEN, second >= SEEN
    changed = (seen_first & (second < UNSEEN)) | (seen_second & (first < UNSEEN))
    return (~changed.any(axis=1) & seen_first.any(axis=1) & seen_second.any(axis=1)).mean()


@metric("recognisable_frames", "higher", needs_digits=True)
def share_of_frames_with_a_confident_digit(fake, real, cfg):
    return (fake.probs.max(axis=2) >= cfg.threshold).mean()


@metric("digits_per_frame", "real", needs_digits=True)
def digit_classes_named_per_frame(fake, real, cfg):
    """Mean number of digit classes the reader names (p >= 0.5) in a frame: one stroke that passes for a
    digit counts once where real frames show two (fewer where they overlap or share a class)."""
    return (fake.probs >= 0.5).sum(axis=2).mean()


# ---------------------------------------------------------------- content through time (MoCoGAN's ACD)
@metrics({"acd": "lower", "acd_between": "higher"})
def average_content_distance(fake, real, cfg):
    """Tulyakov et al. 2018 on the evaluator's content features (the `what` block of each frame):
    `acd`, the mean L2 distance between consecutive frames of a video (content kept: low); `acd_between`,
    the same distance between frame t of a video and frame t of another, paired by a seeded shuffle
    (diverse content: high)."""
    what = fake.frame[:, :, : fake.content_dims]
    within = np.linalg.norm(np.diff(what, axis=1), axis=2).mean()
    other = np.random.default_rng(0).permutation(len(what))
    between = np.linalg.norm(what - what[other], axis=2).mean()
    return {"acd": within, "acd_between": between}


# ---------------------------------------------------------------- time
@metric("temporal_error", "lower")
def relative_error_of_frame_to_frame_feature_change(fake, real, cfg):
    step = lambda f: np.linalg.norm(np.diff(f.frame, axis=1), axis=2).mean()  # noqa: E731
    return abs(step(fake) - step(real)) / max(step(real), 1e-12)


@metric("motion_error", "lower")
def relative_wasserstein_of_pixel_motion(fake, real, cfg):
    return wasserstein_distance(fake.motion, real.motion) / max(real.motion.mean(), 1e-12)


@metrics({"motion_by_frame_min": "one", "motion_by_frame_max": "one"})
def pixel_motion_of_each_transition_against_real(fake, real, cfg):
    """Generated over real mean |x_{t+1} - x_t| for each t; the smallest and largest ratio."""
    ratio = motion_by_transition(fake.clips) / np.maximum(motion_by_transition(real.clips), 1e-9)
    return {"motion_by_frame_min": ratio.min(), "motion_by_frame_max": ratio.max()}


@metric("diversity", "one")
def pairwise_video_distance_ratio(fake, real, cfg):
    return mean_pairwise_distance(fake.video) / max(mean_pairwise_distance(real.video), 1e-12)


# ---------------------------------------------------------------- Ms Pacman (pixels, no labels)
@metric("wall_iou", "higher", sources=PACMAN)
def walls_matching_the_nearest_real_maze(fake, real, cfg):
    return best_wall_iou(fake.clips, real.clips).mean()


@metric("moving_sprites", "one", sources=PACMAN)
def moving_sprite_rate_against_real(fake, real, cfg):
    return moving_sprites(fake.clips).mean() / max(moving_sprites(real.clips).mean(), 1e-9)


def _invalid(features: Features) -> int:
    return num_modes(features.digits_per_video) - 1
