"""Ms Pacman: emulator rollouts and clips, and the published folder layout (a small one this test writes)."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
from conftest_data import FileServer
from PIL import Image

from videogan.config import load_config
from videogan.data import pacman_emulator as pe
from videogan.data.config import DataConfig, PacmanEmulator, PacmanFolder
from videogan.data.download import download_dataset, file_md5
from videogan.data.pacman_folder import FolderError, find_root, load, read_episode
from videogan.data.pacman_view import follow_pacman, pacman_pixels
from videogan.data.preprocess import prepare
from videogan.data.store import open_split
from videogan.data.video import motion, store_transform


@pytest.fixture(scope="module")
def env():
    env = pe.make_env("ALE/MsPacman-v5")
    yield env
    env.close()


def test_rollout_is_seeded_and_pacman_travels(env):
    cfg = PacmanEmulator(episode_frames=120)
    frames, where = pe.rollout(env, cfg, 3, np.random.default_rng(3))
    again, _ = pe.rollout(env, cfg, 3, np.random.default_rng(3))
    other, _ = pe.rollout(env, cfg, 4, np.random.default_rng(4))
    assert frames.shape == (120, 172, 160, 3) and np.array_equal(frames, again) and not np.array_equal(frames, other)
    travelled = np.abs(where[20:] - where[:-20]).sum(axis=1)  # Manhattan distance over 20 frames
    assert np.median(travelled) >= 25  # a jittering policy covers about 10


def test_policy_turns_away_from_walls_and_holds_otherwise():
    policy = pe.TravelPolicy(np.random.default_rng(0), turn_probability=0.0)
    moving = [policy.act((x, 5), elapsed=4) for x in range(20)]
    assert set(moving) == {pe.LEFT}
    first = policy.act((19, 5), elapsed=4)
    stuck = policy.act((19, 5), elapsed=4)  # 8 emulator frames without moving: a wall
    assert first == pe.LEFT and stuck != pe.LEFT


def test_deflicker_merges_ghosts_but_not_pacman_trails():
    blue, ghost, pac = (0, 28, 136), (200, 72, 72), pe.PACMAN_RGB
    frames = [np.full((6, 6, 3), blue, np.uint8) for _ in range(4)]
    frames[0][1, 1] = ghost
    frames[1][2, 2] = pac  # an old Pacman position
    frames[3][4, 4] = pac
    out = pe.deflicker(frames)
    assert tuple(out[1, 1]) == ghost and tuple(out[2, 2]) == blue and tuple(out[4, 4]) == pac


def test_emulator_clips_move_and_have_the_configured_shape(tmp_path):
    config = load_config(
        None,
        [
            "data.dataset=pacman_emulator",
            "data.frame_size=32",
            "data.channels=3",
            "data.frames=8",
            "data.pacman_emulator.train_clips=6",
            "data.pacman_emulator.val_clips=2",
            "data.pacman_emulator.test_clips=2",
            "data.pacman_emulator.episode_frames=80",
        ],
    )
    meta = prepare(config, tmp_path, tmp_path / "store", progress=False)
    assert meta["shapes"] == {"train": [6, 8, 32, 32, 3], "val": [2, 8, 32, 32, 3], "test": [2, 8, 32, 32, 3]}
    for split in ("train", "val", "test"):
        clips = open_split(tmp_path / "store", split)
        assert (motion(np.asarray(clips)) > 1e-3).all()
        assert clips[..., 2].mean() > clips[..., 0].mean()  # the blue maze: colour survives


def test_the_window_follows_pacman_and_stays_on_the_screen():
    clips = np.zeros((3, 4, 100, 80, 3), np.uint8)
    for t in range(4):
        clips[0, t, 50:58, 30 + 2 * t : 38 + 2 * t] = pe.PACMAN_RGB  # centre (53.5, 36.5) over the clip
        clips[1, t, 0:8, 72:80] = pe.PACMAN_RGB  # in the top right corner
    windows = follow_pacman(clips, 32)
    assert windows.shape == (2, 4, 32, 32, 3)  # the clip without Pacman is dropped
    rows, cols = np.nonzero(pacman_pixels(windows[0]).any(axis=0))
    assert abs(rows.mean() - 15.5) <= 1 and abs(cols.mean() - 15.5) <= 1
    assert pacman_pixels(windows[1, :, 0:8, 24:32]).all()  # clamped: the window ends at the screen's edge


def test_emulator_windows_show_pacman_at_full_resolution(tmp_path):
    config = load_config(
        None,
        [
            "data.dataset=pacman_emulator",
            "data.frame_size=32",
            "data.channels=3",
            "data.frames=8",
            "data.pacman_emulator.window=32",
            "data.pacman_emulator.train_clips=6",
            "data.pacman_emulator.val_clips=2",
            "data.pacman_emulator.test_clips=2",
            "data.pacman_emulator.episode_frames=80",
        ],
    )
    meta = prepare(config, tmp_path, tmp_path / "store", progress=False)
    assert meta["source_info"]["window"] == 32
    clips = np.asarray(open_split(tmp_path / "store", "train"))
    seen = pacman_pixels(clips).sum(axis=(2, 3))  # Pacman's pixels per frame: his 8 px sprite, unshrunk
    assert (seen.max(axis=1) >= 20).all()


def test_a_window_larger_than_the_crop_names_the_fix():
    with pytest.raises(ValueError, match="pacman_emulator.window 64 does not fit in the 40x160 crop"):
        DataConfig(pacman_emulator=PacmanEmulator(crop=(0, 40, 0, 160), window=64))


def test_static_threshold_gives_a_clear_error():
    cfg = PacmanEmulator(episode_frames=16, motion_threshold=100.0)
    with pytest.raises(pe.SourceError, match="motion_threshold"):
        with pe.EpisodeRunner(cfg, 8, store_transform(16, 1, 8), workers=1) as runner:
            pe._collect(runner, cfg, [0, 0], 1, "x", progress=False)


# ------------------------------------------------------------------ folder
def _frame(step: int, still: bool = False) -> np.ndarray:
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[..., 2] = 136
    x = 10 if still else 10 + 3 * step
    frame[40:52, x : x + 12] = (210, 164, 74)
    frame[190:200] = 255  # below the playfield: cropped away
    return frame


def _write_folder(root, episodes: dict[str, list[int]], still: str | None = None):
    for split, lengths in episodes.items():
        for ep, length in enumerate(lengths):
            folder = root / "Ms_Pacman" / split / f"ep{ep}"
            folder.mkdir(parents=True)
            for i in range(length):
                Image.fromarray(_frame(i, still=f"{split}/{ep}" == still)).save(folder / f"{i}.png")


def test_read_episode_in_natural_order(tmp_path):
    _write_folder(tmp_path, {"Train": [12], "Test": []})
    frames = read_episode(tmp_path / "Ms_Pacman" / "Train" / "ep0", (0, 172, 0, 160))
    assert frames.shape == (12, 172, 160, 3) and frames.max() < 255
    columns = [np.flatnonzero(f[45, :, 0])[0] for f in frames]
    assert columns == [10 + 3 * i for i in range(12)]  # 10.png after 9.png, not after 1.png


def test_folder_source_splits_episodes_and_drops_static_clips(tmp_path):
    _write_folder(tmp_path, {"Train": [16, 16, 17, 9, 16], "Test": [16, 8]}, still="Train/0")
    cfg = PacmanFolder(path=str(tmp_path), val_fraction=0.25)
    splits, info = load(cfg, tmp_path, frames=8, seed=0, transform=store_transform(16, 1, 8), progress=False)
    assert info["episodes"] == {"train": 4, "val": 1, "test": 2}
    total_train = sum(len(splits[s]) for s in ("train", "val"))
    assert total_train == (2 + 2 + 1 + 2)  # 16, 17, 9, 16 frames -> 2 + 2 + 1 + 2 clips; the still episode dropped
    assert splits["test"].shape == (3, 8, 16, 16, 1)


def test_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(FolderError, match="data.pacman_folder.path.*drive.google.com"):
        find_root(PacmanFolder(path=str(tmp_path)), tmp_path)


def test_archive_download_then_preprocess(tmp_path):
    _write_folder(tmp_path / "src", {"Train": [16, 16], "Test": [16]})
    archive = tmp_path / "ms_pacman.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "Ms_Pacman", arcname="Ms_Pacman")
    server = FileServer({"/ms_pacman.tar.gz": archive.read_bytes()})
    try:
        url = server.url + "/ms_pacman.tar.gz"
        overrides = [
            "data.dataset=pacman_folder",
            f"data.pacman_folder.url={url}",
            f"data.pacman_folder.md5={file_md5(archive)}",
            "data.frame_size=16",
            "data.frames=8",
        ]
        config = load_config(None, overrides)
        raw = tmp_path / "raw"
        assert download_dataset(config.data, raw, progress=False) == raw / "pacman_folder"
        assert download_dataset(config.data, raw, progress=False) == raw / "pacman_folder"  # no re-extract
        assert len(server.requests) == 1
    finally:
        server.close()
    meta = prepare(config, raw, tmp_path / "store", progress=False)
    assert meta["sizes"] == {"train": 2, "val": 2, "test": 2}


def test_folder_without_url_or_path_explains(tmp_path):
    from videogan.data.download import DownloadError

    with pytest.raises(DownloadError, match="drive.google.com.*pacman_emulator"):
        download_dataset(DataConfig(dataset="pacman_folder"), tmp_path)


def test_clips_are_the_same_for_any_number_of_worker_processes():
    cfg = PacmanEmulator(episode_frames=16, train_clips=5, val_clips=2, test_clips=2)
    made = {
        workers: pe.generate(
            cfg.model_copy(update={"workers": workers}), 8, 3, store_transform(16, 3, 8), progress=False
        )
        for workers in (1, 2, 3)
    }
    (one, info), *others = made.values()
    assert info["episodes"]["train"] > 1  # several episodes, so the order of their arrival matters
    for splits, other_info in others:
        assert other_info == info
        for split in one:
            assert np.array_equal(splits[split], one[split]), split
