"""Tiny configs for fast tests."""

from __future__ import annotations

import torch

from videogan.config import Config, config_from_dict

TINY = {
    "data": {"dataset": "bouncing_squares", "frame_size": 16, "frames": 8, "channels": 1},
    "model": {
        "generator": {"motion_dim": 16, "content_dim": 16, "width": 8, "max_width": 32},
        "critic": {"widths": [8, 16, 32, 32]},
    },
    "train": {
        "iterations": 12,
        "batch_size": 8,
        "schedule": {"n_critic": 2, "burst_first": 1, "burst_steps": 4, "burst_every": 0},
        "log_every": 1,
        "resume_every": 5,
        "snapshot_every": 5,
        "video_every": 1000,
    },
    "evaluate": {"fvd": {"enabled": False}},  # 8 frames are too few for I3D (tests/test_fvd.py covers FVD)
}


def merge(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def tiny_config(**changes) -> Config:
    """The tiny config with nested overrides, e.g. tiny_config(train={"loss": "basic"})."""
    return config_from_dict(merge(TINY, changes))


def every_tensor(node, prefix="") -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint (weights, averages, optimiser moments and steps...) by its path."""
    if isinstance(node, torch.Tensor):
        return {prefix: node}
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list | tuple) else ()
    return {k: v for key, child in items for k, v in every_tensor(child, f"{prefix}/{key}").items()}


def gif_shown_ms(path) -> list[int]:
    """How long each stored frame of a GIF is on screen (equal consecutive frames may be stored once)."""
    from PIL import Image

    image, shown = Image.open(path), []
    for index in range(image.n_frames):
        image.seek(index)
        shown.append(image.info["duration"])
    return shown


# The metrics every Moving MNIST score has, each beside its `_ref`.
DIGIT_METRICS = (
    "fd_video",
    "fd_frame",
    "kd_video",
    "precision",
    "recall",
    "density",
    "coverage",
    "temporal_error",
    "motion_error",
    "diversity",
    "classes_covered",
    "modes_covered",
    "mode_kl",
    "content_consistency",
    "recognisable_frames",
    "digits_per_frame",
)
