"""GIF files keep every grey level and how long each frame shows; grids, interpolation and training-curve plots."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image
from support import gif_shown_ms

from videogan.models import build_generator
from videogan.render import (
    interpolation_noise,
    plot_training_curves,
    save_gif,
    side_by_side,
    snapshot_paths,
    video_grid,
)
from videogan.sampling import sample_videos


def _read(path) -> np.ndarray:
    """(T, H, W, C); a grey GIF whose later frames carry their own palette reads back as RGB with equal channels."""
    frames = iio.imread(path, index=None)
    if frames.ndim == 3:
        return frames[..., None]
    if frames.shape[-1] == 3 and (frames == frames[..., :1]).all():
        return frames[..., :1]
    return frames


def test_grey_gif_frames_equal_the_tensor_exactly(tmp_path):
    videos = torch.rand(3, 1, 6, 8, 8) * 2 - 1
    frames = video_grid(videos, ncol=2)
    back = _read(save_gif(frames, tmp_path / "grey.gif"))
    assert back.shape == frames.shape
    assert np.array_equal(back, frames)


def test_every_grey_level_round_trips(tmp_path):
    levels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(2, axis=0)
    levels[1] = 255 - levels[1]
    assert np.array_equal(_read(save_gif(levels, tmp_path / "levels.gif")), levels)


def test_a_static_video_is_shown_as_long_as_its_frames_last(tmp_path):
    frame = np.random.default_rng(0).integers(0, 256, (1, 12, 10, 1), dtype=np.uint8)
    still = frame.repeat(9, axis=0)
    path = save_gif(still, tmp_path / "still.gif", fps=10)
    assert sum(gif_shown_ms(path)) == 900  # 9 frames at 10 fps, however many are stored
    assert all(np.array_equal(f, frame[0]) for f in _read(path))
    moving = np.concatenate([still[:4], 255 - still[4:5], still[5:]])
    assert gif_shown_ms(save_gif(moving, tmp_path / "moving.gif", fps=10)) == [400, 100, 400]


def test_rgb_gif_is_within_palette_quantisation(tmp_path):
    y, x = np.mgrid[0:32, 0:32]
    frames = np.stack([np.stack([(y * 8 + t * 10) % 256, x * 8, (x + y) * 4 % 256], -1) for t in range(5)])
    frames = frames.astype(np.uint8)
    back = _read(save_gif(frames, tmp_path / "rgb.gif"))[..., :3]
    assert back.shape == frames.shape
    error = np.abs(back.astype(int) - frames)  # thousands of colours into a 256-colour palette
    assert error.mean() < 8 and error.max() <= 64
    few = (frames // 64) * 64  # 64 colours: the palette holds them all, so exact
    assert np.array_equal(_read(save_gif(few, tmp_path / "few.gif"))[..., :3], few)


def test_gif_is_looping_and_timed(tmp_path):
    path = save_gif(np.zeros((3, 4, 4, 1), np.uint8), tmp_path / "t.gif", fps=5)
    info = Image.open(path).info
    assert info["loop"] == 0 and info["duration"] == 200


def test_save_gif_refuses_floats(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        save_gif(np.zeros((3, 4, 4, 1), np.float32), tmp_path / "bad.gif")


def test_grid_places_videos_row_major_with_padding():
    clips = np.stack([np.full((2, 3, 3, 1), 10 * (i + 1), np.uint8) for i in range(3)])
    grid = video_grid(clips, ncol=2, pad=1)
    assert grid.shape == (2, 9, 9, 1)
    assert grid[0, 1, 1, 0] == 10 and grid[0, 1, 5, 0] == 20 and grid[0, 5, 1, 0] == 30
    assert grid[0, 0, 0, 0] == 0 and grid[0, 5, 5, 0] == 0  # padding and the empty cell


def test_side_by_side_puts_real_left_and_generated_right():
    left, right = np.full((2, 5, 4, 1), 1, np.uint8), np.full((2, 3, 6, 1), 2, np.uint8)
    both = side_by_side(left, right, gap=2)
    assert both.shape == (2, 5, 12, 1)
    assert (both[:, :, :4] == 1).all() and (both[:, :, 4:6] == 255).all() and (both[:, :3, 6:] == 2).all()


def test_interpolation_walks_linearly_between_two_noise_vectors(tiny):
    generator = build_generator(tiny)
    noise = interpolation_noise(generator, rows=2, steps=5, seed=3).view(2, 5, -1)
    ends = generator.sample_noise(4, torch.Generator().manual_seed(3))
    assert torch.allclose(noise[:, 0], ends[:2]) and torch.allclose(noise[:, -1], ends[2:])
    assert torch.allclose(noise[:, 2], (ends[:2] + ends[2:]) / 2, atol=1e-6)


def test_fixed_noise_grid_matches_sample_videos(tiny):
    from videogan.render import fixed_noise, render_noise

    generator = build_generator(tiny).eval()
    assert torch.equal(render_noise(generator, fixed_noise(generator, 3, 7)), sample_videos(generator, 3, seed=7))


def test_snapshot_thinning_keeps_first_and_last(tmp_path):
    for step in range(0, 2000, 100):
        (tmp_path / f"step_{step:07d}.pt").touch()
    kept = snapshot_paths(tmp_path, max_rows=5)
    assert [p.name for p in kept][0] == "step_0000000.pt" and kept[-1].name == "step_0001900.pt"
    assert len(kept) == 5


def test_training_curves_plot_every_numeric_key(tmp_path):
    log = tmp_path / "train_log.jsonl"
    rows = [
        {"step": s, "loss_critic": -s / 10, "wasserstein": 1 / (s + 1), "note": "x", "sigma": 0.1}
        for s in range(0, 50, 10)
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    path = plot_training_curves(log, tmp_path / "curves.png")
    image = Image.open(path)
    assert image.format == "PNG" and image.size[0] > 900  # three panels across


def test_damaged_training_log_is_a_clear_error(tmp_path):
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 0, "loss_critic": 1.0}\n{"step": 1, "loss_cri')
    with pytest.raises(ValueError, match="train_log.jsonl:2"):
        plot_training_curves(log, tmp_path / "curves.png")


@pytest.fixture
def tiny():
    from videogan.config import config_from_dict

    return config_from_dict(
        {
            "data": {"frame_size": 16, "frames": 8},
            "model": {"generator": {"motion_dim": 8, "content_dim": 8, "width": 8, "max_width": 16}},
        }
    )
