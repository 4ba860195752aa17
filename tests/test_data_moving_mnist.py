"""Moving MNIST: the Srivastava trajectories, rendering against labels, digit splits, the published file."""

from __future__ import annotations

import numpy as np
import pytest

from videogan.config import load_config
from videogan.data.config import MovingMnistFile, MovingMnistGenerated
from videogan.data.moving_mnist import DIGIT, generate, load_published, mnist_digits, split_digits, trajectories
from videogan.data.preprocess import prepare
from videogan.data.store import load_labels, open_split
from videogan.data.video import store_transform

SMALL = [
    "data.moving_mnist_generated.train_sequences=40",
    "data.moving_mnist_generated.val_sequences=10",
    "data.moving_mnist_generated.test_sequences=10",
]


@pytest.fixture(scope="module")
def paths():
    rng = np.random.default_rng(0)
    return trajectories(rng, 500, 40, 2, step=0.1)


def test_digits_stay_inside_the_canvas(paths):
    assert paths.min() >= 0 and paths.max() <= 1
    offsets = (paths * (64 - DIGIT)).astype(int)
    assert offsets.min() >= 0 and offsets.max() + DIGIT <= 64


def test_constant_speed_between_bounces(paths):
    moves = np.diff(paths, axis=1)
    inside = ((paths[:, :-1] > 0) & (paths[:, :-1] < 1) & (paths[:, 1:] > 0) & (paths[:, 1:] < 1)).all(-1)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(np.linalg.norm(moves, axis=-1)[inside], 0.1, atol=1e-12)


def test_reflection_at_the_borders(paths):
    moves = np.diff(paths, axis=1)  # moves[:, t] leads from frame t to frame t + 1
    clamped = (paths[:, 1:-1] == 0) | (paths[:, 1:-1] == 1)  # a component at the border at frame t
    assert clamped.sum() > 100
    before, after = moves[:, :-1][clamped], moves[:, 1:][clamped]
    low = paths[:, 1:-1][clamped] == 0
    assert np.all(before[low] < 0) and np.all(after[low] > 0)  # arrived moving out, leaves moving back in
    assert np.all(before[~low] > 0) and np.all(after[~low] < 0)
    speed = np.broadcast_to(np.abs(moves).max(axis=1, keepdims=True), moves[:, 1:].shape)
    np.testing.assert_allclose(np.abs(after), speed[clamped], atol=1e-12)  # at full speed


def _generate(n: int = 12, frames: int = 20, seed: int = 0):
    cfg = MovingMnistGenerated(train_sequences=n, val_sequences=n, test_sequences=n)
    return generate(cfg, frames, seed, store_transform(64, 1, frames), 64, progress=False)


def test_labels_match_the_pixels():
    splits, labels, info = _generate()
    images, classes = mnist_digits()
    for split, clips in splits.items():
        lab = labels[split]
        np.testing.assert_array_equal(classes[lab["digit_ids"]], lab["digits"])
        expected = np.zeros_like(clips[..., 0])
        for n in range(len(clips)):
            for t in range(clips.shape[1]):
                for k, digit in enumerate(lab["digit_ids"][n]):
                    r, c = lab["positions"][n, t, k].astype(int)
                    assert (clips[n, t, r : r + DIGIT, c : c + DIGIT, 0] >= images[digit]).all()
                    np.maximum(
                        expected[n, t, r : r + DIGIT, c : c + DIGIT],
                        images[digit],
                        out=expected[n, t, r : r + DIGIT, c : c + DIGIT],
                    )
        np.testing.assert_array_equal(clips[..., 0], expected)  # nothing drawn that the labels don't explain
    assert info["digit_size"] == DIGIT


def test_splits_share_no_digit_image():
    _, classes = mnist_digits()
    pools = split_digits(classes, (0.8, 0.1, 0.1), seed=3)
    assert sum(len(p) for p in pools.values()) == 5000
    assert not set(pools["train"]) & set(pools["val"]) and not set(pools["train"]) & set(pools["test"])
    assert not set(pools["val"]) & set(pools["test"])
    for pool in pools.values():
        assert set(classes[pool]) == set(range(10))
    _, labels, _ = _generate(n=200)
    used = {s: set(lab["digit_ids"].ravel()) for s, lab in labels.items()}
    assert not used["train"] & used["val"] and not used["train"] & used["test"] and not used["val"] & used["test"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    metas = [
        prepare(load_config(None, [*SMALL, f"data.seed={seed}"]), tmp_path, tmp_path / f"s{i}", progress=False)
        for i, seed in enumerate([5, 5, 6])
    ]
    assert metas[0]["digest"] == metas[1]["digest"] != metas[2]["digest"]
    np.testing.assert_array_equal(open_split(tmp_path / "s0", "train"), open_split(tmp_path / "s1", "train"))


def test_resized_store_scales_positions(tmp_path):
    config = load_config(None, [*SMALL, "data.frame_size=32", "data.frames=10"])
    meta = prepare(config, tmp_path, tmp_path / "store", progress=False)
    assert meta["shapes"]["train"] == [40, 10, 32, 32, 1]
    assert meta["source_info"]["digit_size"] == 14
    labels = load_labels(tmp_path / "store", "train")
    assert labels["positions"].shape == (40, 10, 2, 2) and labels["digits"].shape == (40, 2)
    clips = open_split(tmp_path / "store", "train")
    r, c = np.rint(labels["positions"][0, 0, 0]).astype(int)
    assert clips[0, 0, r : r + 14, c : c + 14].max() > 100  # the digit is where its label says


def test_published_file_is_transposed_and_split(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (20, 30, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "mnist_test_seq.npy", data)
    cfg = MovingMnistFile(val_sequences=5, test_sequences=5)
    splits = load_published(tmp_path / "mnist_test_seq.npy", cfg, store_transform(64, 1, 16))
    assert {s: a.shape for s, a in splits.items()} == {
        "train": (20, 16, 64, 64, 1),
        "val": (5, 16, 64, 64, 1),
        "test": (5, 16, 64, 64, 1),
    }
    np.testing.assert_array_equal(splits["val"][2, :, :, :, 0], data[:16, 22])
    np.testing.assert_array_equal(splits["test"][4, 3, :, :, 0], data[3, 29])


def test_published_file_through_prepare(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (20, 30, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "mnist_test_seq.npy", data)
    config = load_config(
        None,
        [
            "data.dataset=moving_mnist",
            "data.moving_mnist.val_sequences=5",
            "data.moving_mnist.test_sequences=5",
            "data.frame_size=32",
        ],
    )
    meta = prepare(config, tmp_path, tmp_path / "store", progress=False)
    assert meta["shapes"]["test"] == [5, 20, 32, 32, 1] and meta["labels"] == {}
    assert load_labels(tmp_path / "store", "test") is None
    expected = data[:, 25:].reshape(20, 5, 32, 2, 32, 2).mean(axis=(3, 5))  # 2x2 area means
    np.testing.assert_allclose(open_split(tmp_path / "store", "test")[..., 0], expected.transpose(1, 0, 2, 3), atol=0.5)
