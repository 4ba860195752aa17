"""The Ms Pacman metrics mean something: real windows pass, known failures fail (issue 12).

Real emulator clips (32x32 windows that follow Pacman, 10 frames) from three disjoint seeds: half A
is what everything is scored against, half B gives the references, C is the honest candidate the
failures are made from.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from videogan.config import load_config
from videogan.data.config import PacmanEmulator
from videogan.data.pacman_emulator import generate
from videogan.data.video import StoreTransform
from videogan.metrics.config import EvaluateConfig, EvaluatorConfig
from videogan.metrics.fit import fit_evaluator
from videogan.metrics.scoring import RealHalves, Scorer

pytestmark = pytest.mark.slow
N = 100
ROOT = Path(__file__).resolve().parents[1]
MAZE_AND_SPRITES = {"wall_iou", "moving_sprites"}
DIGITS = {"classes_covered", "modes_covered", "mode_kl", "content_consistency", "recognisable_frames"}


@functools.cache
def real_clips() -> dict[str, np.ndarray]:
    cfg = PacmanEmulator(window=32, episode_frames=400, train_clips=400, val_clips=64, test_clips=3 * N, workers=1)
    splits, _ = generate(cfg, 10, seed=5, transform=StoreTransform(32, 3, 10), progress=False)
    return splits


@functools.cache
def scorer(source: str = "pacman_emulator") -> tuple[Scorer, dict[str, float]]:
    clips = real_clips()
    cfg = EvaluatorConfig(
        width=8, frame_dim=32, motion_dim=32, clip_frames=6, epochs=6, batch_size=16, val_clips=64, device="cpu"
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, accuracy = fit_evaluator(clips["train"], None, clips["val"], None, cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    test = clips["test"]
    cfg = EvaluateConfig(num_samples=N, fvd={"enabled": False})
    return Scorer(model, RealHalves(test[:N], test[N : 2 * N], None), cfg, source=source), accuracy


@functools.cache
def scores(kind: str) -> dict[str, float]:
    real = real_clips()["test"][2 * N :]
    rng = np.random.default_rng(3)
    fake = {
        "real": lambda: real,
        "static": lambda: np.repeat(real[:, :1], real.shape[1], axis=1),
        "scrambled": lambda: scramble_tiles(real, rng),
        "noisy start": lambda: np.concatenate(
            [rng.integers(0, 256, real[:, :1].shape, dtype=np.uint8), real[:, 1:]], axis=1
        ),
        "noise": lambda: rng.integers(0, 256, real.shape, dtype=np.uint8),
        "untrained": lambda: untrained_generator_clips(),
    }[kind]()
    return scorer()[0].score(fake)


def scramble_tiles(clips: np.ndarray, rng: np.random.Generator, tile: int = 8) -> np.ndarray:
    """Each video's 8x8 tiles shuffled (the same way in every frame): the maze's colours and the
    sprites' motion stay, the corridors do not."""
    n, t, h, w, c = clips.shape
    tiles = clips.reshape(n, t, h // tile, tile, w // tile, tile, c).transpose(0, 1, 2, 4, 3, 5, 6)
    tiles = tiles.reshape(n, t, -1, tile, tile, c)
    out = np.stack([video[:, rng.permutation(tiles.shape[2])] for video in tiles])
    out = out.reshape(n, t, h // tile, w // tile, tile, tile, c).transpose(0, 1, 2, 4, 3, 5, 6)
    return out.reshape(n, t, h, w, c)


def untrained_generator_clips() -> np.ndarray:
    from videogan.models import build_generator
    from videogan.sampling import sample_clips

    config = load_config(ROOT / "profiles/pacman.yaml")
    return sample_clips(build_generator(config).eval(), N, seed=0, batch_size=50)


def test_the_evaluator_learns_the_order_of_pacman_windows():
    assert scorer()[1]["order"] >= 0.85


def test_a_pacman_store_gets_maze_and_sprite_metrics_and_nothing_about_digits():
    s = scores("real")
    assert MAZE_AND_SPRITES <= set(s) and {f"{n}_ref" for n in MAZE_AND_SPRITES} <= set(s)
    assert not DIGITS & set(s)
    other = scorer("moving_mnist_generated")[0].score(real_clips()["test"][2 * N :])
    assert not MAZE_AND_SPRITES & set(other) and {"motion_by_frame_min", "fd_video"} <= set(other)


def test_real_windows_pass():
    s = scores("real")
    assert s["wall_iou_ref"] > 0.6 and s["wall_iou"] > s["wall_iou_ref"] - 0.1
    assert 0.8 < s["moving_sprites"] < 1.25 and 0.8 < s["moving_sprites_ref"] < 1.25
    assert 0.7 < s["motion_by_frame_min"] <= s["motion_by_frame_max"] < 1.4


def test_a_scrambled_maze_fails_the_walls_but_not_the_sprites():
    s = scores("scrambled")
    assert s["wall_iou"] < s["wall_iou_ref"] - 0.2
    assert s["moving_sprites"] > 0.5


def test_videos_that_stand_still_have_no_moving_sprites():
    s = scores("static")
    assert s["moving_sprites"] == 0 and s["motion_by_frame_max"] == 0
    assert s["wall_iou"] > s["wall_iou_ref"] - 0.1  # the maze itself is real


def test_a_noisy_first_frame_fails_motion_by_frame():
    s = scores("noisy start")
    assert s["motion_by_frame_max"] > 5 and 0.7 < s["motion_by_frame_min"] < 1.4


def test_noise_fails_the_maze_and_the_sprites():
    s = scores("noise")
    assert s["wall_iou"] < 0.5 * s["wall_iou_ref"]
    assert s["moving_sprites"] < 0.2  # the whole frame changes: one region, no sprite


@pytest.mark.parametrize("kind", ["noise", "untrained"])
def test_inputs_unlike_the_real_ones_give_distances_with_a_scale(kind):
    """Features are bounded: pixel noise and the step-0 generator stay within a few hundred times the
    real-versus-real distance (an unbounded evaluator gave 1e11)."""
    s = scores(kind)
    assert 10 * s["fd_video_ref"] < s["fd_video"] < 500 * s["fd_video_ref"]
