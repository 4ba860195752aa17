"""The clip store: round trip, refusals, atomic replacement; and the shared array transforms."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from videogan.data.store import StoreError, load_labels, open_split, read_meta, verify_store, write_store
from videogan.data.video import cut_clips, motion, resize_area, store_transform, to_channels


def _splits(seed: int = 0, n: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (8, 16, 16, 1)
    return {s: rng.integers(0, 256, (n + i, *shape), dtype=np.uint8) for i, s in enumerate(["train", "val", "test"])}


def _labels(splits):
    return {
        s: {"digits": np.arange(len(a) * 2).reshape(-1, 2), "positions": np.zeros((len(a), 8, 2, 2))}
        for s, a in splits.items()
    }


@pytest.fixture
def store(tmp_path):
    splits = _splits()
    meta = write_store(tmp_path / "store", splits, _labels(splits), {"source": "test", "seed": 1})
    return tmp_path / "store", splits, meta


def test_round_trip(store):
    path, splits, meta = store
    assert read_meta(path) == meta
    assert meta["shapes"]["val"] == [7, 8, 16, 16, 1] and meta["sizes"] == {"train": 6, "val": 7, "test": 8}
    assert meta["source"] == "test" and meta["seed"] == 1 and len(meta["digest"]) == 32
    for split, arr in splits.items():
        got = open_split(path, split)
        assert isinstance(got, np.memmap) and not got.flags.writeable
        np.testing.assert_array_equal(got, arr)
        np.testing.assert_array_equal(load_labels(path, split)["digits"], _labels(splits)[split]["digits"])
    assert verify_store(path)["digest"] == meta["digest"]
    assert not [p for p in path.iterdir() if p.name.startswith(".tmp")]


def test_store_without_labels(tmp_path):
    meta = write_store(tmp_path, _splits(), None, {"source": "x"})
    assert load_labels(tmp_path, "train") is None and meta["labels"] == {}


def test_missing_store_says_how_to_fix(tmp_path):
    with pytest.raises(StoreError, match="videogan preprocess"):
        open_split(tmp_path, "train")


def test_truncated_file_is_refused(store):
    path, _, _ = store
    data = (path / "train.npy").read_bytes()
    (path / "train.npy").write_bytes(data[: len(data) - 100])
    with pytest.raises(StoreError, match="truncated.*videogan preprocess"):
        open_split(path, "train")


def test_trailing_bytes_are_refused(store):
    path, _, _ = store
    with open(path / "val.npy", "ab") as f:
        f.write(b"\0" * 64)
    with pytest.raises(StoreError, match="more than its header"):
        open_split(path, "val")


def test_meta_that_disagrees_with_the_array_is_refused(store):
    path, _, meta = store
    meta["shapes"]["test"] = [8, 8, 32, 32, 1]
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="meta.json says"):
        open_split(path, "test")


def test_changed_content_fails_the_digest(store):
    path, splits, _ = store
    changed = splits["train"].copy()
    changed[0, 0, 0, 0, 0] ^= 1
    np.save(path / "train.npy", changed)
    open_split(path, "train")  # shape still agrees: only the digest notices
    with pytest.raises(
        StoreError,
        match=rf"{path / 'train.npy'} was changed after the store was written.*"
        r"videogan preprocess",
    ):
        verify_store(path)


def test_a_store_written_before_file_digests_is_checked_by_its_content_digest(store):
    path, splits, meta = store
    (path / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "files"}))
    verify_store(path)
    np.save(path / "val.npy", splits["val"] ^ 1)
    with pytest.raises(StoreError, match="does not match the digest in meta.json"):
        verify_store(path)


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda m: m.pop("shapes"), "malformed at `shapes` (field required)"),
        (lambda m: m.update(shapes=None), "malformed at `shapes`"),
        (lambda m: m.update(sizes=[1, 2, 3]), "malformed at `sizes`"),
        (lambda m: m.pop("digest"), "malformed at `digest`"),
        (lambda m: m["shapes"].update(extra=[1, 8, 16, 16, 1]), "must be among ['train', 'val', 'test']"),
        (lambda m: m.clear(), "not a clip store's meta.json"),
    ],
)
def test_an_edited_meta_json_is_one_error_naming_the_key(store, edit, named):
    path, _, meta = store
    edit(meta)
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=re.escape(named)):
        read_meta(path)


def test_a_meta_json_that_is_a_list_is_refused(store):
    path, _, _ = store
    (path / "meta.json").write_text("[1, 2]")
    with pytest.raises(StoreError, match="not a clip store's meta.json"):
        read_meta(path)


def test_rewrite_replaces_the_store_and_drops_stale_labels(store):
    path, _, _ = store
    new = {s: a[:3] for s, a in _splits(seed=1).items()}
    meta = write_store(path, new, None, {"source": "other"})
    assert read_meta(path)["digest"] == meta["digest"] and open_split(path, "val").shape[0] == 3
    assert not list(path.glob("*_labels.npz")) and load_labels(path, "train") is None


def test_failed_staging_keeps_the_old_store(store, monkeypatch):
    path, splits, _ = store

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="disk full"):
        write_store(path, _splits(seed=2), _labels(splits), {"source": "x"})
    verify_store(path)  # untouched
    assert not [p for p in path.iterdir() if p.name.startswith(".tmp")]


def test_interrupted_swap_leaves_a_store_that_is_refused(store, monkeypatch):
    path, _, _ = store
    real, calls = os.replace, []

    def crash_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        write_store(path, _splits(seed=2), None, {"source": "x"})
    with pytest.raises(StoreError, match="meta.json is missing"):
        open_split(path, "train")
    assert not [p for p in path.iterdir() if p.name.startswith(".tmp")]


def test_bad_arrays_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_store(tmp_path, {"train": np.zeros((2, 8, 4, 4, 1), np.float32)}, None, {})
    with pytest.raises(ValueError, match="unknown splits"):
        write_store(tmp_path, {"training": np.zeros((2, 8, 4, 4, 1), np.uint8)}, None, {})
    assert not (tmp_path / "meta.json").exists()


# ------------------------------------------------------------------ transforms
def test_area_resize_is_the_mean_of_covered_pixels():
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 12, 3), dtype=np.uint8)
    halved = resize_area(x, 4, 6)
    np.testing.assert_allclose(halved, x.reshape(2, 3, 4, 2, 6, 2, 3).mean(axis=(3, 5)), atol=0.5)
    third = resize_area(np.full((1, 1, 6, 6, 1), 90, np.uint8), 4, 4)  # non-integer factor keeps a flat image flat
    assert (third == 90).all()
    ramp = np.tile(np.arange(3, dtype=np.uint8) * 90, (1, 1, 3, 1))[..., None]  # columns 0, 90, 180
    np.testing.assert_array_equal(resize_area(ramp, 3, 2)[0, 0, 0, :, 0], [30, 150])  # [0,1.5), [1.5,3)


def test_channels_and_transform():
    rgb = np.zeros((1, 2, 4, 4, 3), np.uint8)
    rgb[..., 1] = 200
    assert to_channels(rgb, 1).shape == (1, 2, 4, 4, 1) and to_channels(rgb, 1).max() == round(0.587 * 200)
    assert (to_channels(to_channels(rgb, 1), 3)[..., 0] == 117).all()
    out = store_transform(2, 1, 1)(rgb)
    assert out.shape == (1, 1, 2, 2, 1)
    with pytest.raises(ValueError, match="data.frames"):
        store_transform(2, 1, 3)(rgb)


def test_cut_and_motion():
    frames = np.zeros((23, 4, 4, 3), np.uint8)
    assert cut_clips(frames, 5).shape == (4, 5, 4, 4, 3)
    clips = cut_clips(frames, 5).copy()
    clips[1, ::2] = 255
    assert motion(clips)[0] == 0 and motion(clips)[1] == pytest.approx(4.0)


def test_store_files_get_the_umasks_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        write_store(tmp_path, _splits(), None, {"source": "x"})
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {p.name: 0o644 for p in tmp_path.iterdir()}
