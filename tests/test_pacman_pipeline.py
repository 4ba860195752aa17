"""`dvc repro` on the published Ms Pacman folder layout, at the full size, from real emulator frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pipeline_support import TINY_PARAMS, copy_repo, deep_update, sh

from videogan.data import pacman_emulator as pe
from videogan.data.config import PacmanEmulator
from videogan.data.pacman_view import pacman_pixels

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SCREEN = (0, 210, 0, 160)  # the whole 210x160 screen, as the published frames are


def write_published_folder(root, episodes: dict[str, list[int]]) -> None:
    """Ms_Pacman/{Train,Test}/<episode>/<frame>.png, each episode a seeded emulator rollout."""
    env = pe.make_env("ALE/MsPacman-v5")
    try:
        for split, lengths in episodes.items():
            for ep, length in enumerate(lengths):
                seed = 100 * (split == "Test") + ep
                frames, _ = pe.rollout(
                    env, PacmanEmulator(crop=SCREEN, episode_frames=length), seed, np.random.default_rng(seed)
                )
                folder = root / "Ms_Pacman" / split / str(ep + 1)
                folder.mkdir(parents=True)
                for i, frame in enumerate(frames):
                    Image.fromarray(frame).save(folder / f"{i}.png")
    finally:
        env.close()


def test_repro_builds_the_store_from_a_published_folder_and_scores_it_as_pacman(tmp_path):
    write_published_folder(tmp_path / "published", {"Train": [60, 60, 60], "Test": [200, 200]})
    params = deep_update(
        json.loads(json.dumps(TINY_PARAMS)),
        {
            "data": {
                "dataset": "pacman_folder",
                "frame_size": 64,
                "frames": 20,
                "channels": 3,
                "pacman_folder": {"path": str(tmp_path / "published"), "window": 64},
            },
            "evaluator": {"val_clips": 16, "max_clips": 16},
            "evaluate": {"num_samples": 8, "k": 3},
        },
    )
    repo = copy_repo(tmp_path / "repo", params)
    sh(repo, "dvc", "repro", "evaluator")

    meta = json.loads((repo / "data/processed/meta.json").read_text())
    assert meta["source"] == "pacman_folder" and meta["source_info"]["window"] == 64
    assert meta["source_info"]["episodes"] == {"train": 2, "val": 1, "test": 2}  # no episode in two splits
    assert meta["shapes"]["test"] == [20, 20, 64, 64, 3]  # 2 episodes x 200 frames, all moving
    train = np.load(repo / "data/processed/train.npy")
    assert train.shape[1:] == (20, 64, 64, 3)
    assert (pacman_pixels(train).sum(axis=(2, 3)).max(axis=1) >= 20).all()  # Pacman at full resolution

    metrics = json.loads(sh(repo, "videogan", "evaluate", "--fake", "data/processed/test.npy").stdout)
    assert {"wall_iou", "wall_iou_ref", "moving_sprites", "fd_video"} <= set(metrics)
    assert not {"recognisable_frames", "content_consistency", "modes_covered"} & set(metrics)
    assert metrics["wall_iou"] > 0.5
