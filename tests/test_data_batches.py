"""Training batches: a pure function of (seed, k), identical with worker processes, and after a kill."""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from videogan.config import ConfigError, load_config
from videogan.data.batches import ClipBatches, open_training_batches, to_clips, to_video_batch
from videogan.data.store import StoreError, open_split, write_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    splits = {
        s: rng.integers(0, 256, (n, 12, 16, 16, 1), dtype=np.uint8) for s, n in [("train", 40), ("val", 8), ("test", 8)]
    }
    write_store(path, splits, None, {"source": "test"})
    return path


def _digest(batch: torch.Tensor) -> str:
    return hashlib.sha256(batch.numpy().tobytes()).hexdigest()


def test_batch_layout_and_range(store):
    batches = ClipBatches(open_split(store, "train"), batch_size=5, frames=8, seed=1)
    x = batches.batch(0)
    assert x.shape == (5, 1, 8, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.is_contiguous()
    clips = open_split(store, "train")
    items, starts = batches.indices(0)
    raw = torch.from_numpy(np.stack([clips[i, s : s + 8] for i, s in zip(items, starts)]))
    assert torch.equal(x, raw.permute(0, 4, 1, 2, 3).float() / 127.5 - 1)  # exactly x / 127.5 - 1
    np.testing.assert_array_equal(to_clips(x), np.stack([clips[i, s : s + 8] for i, s in zip(items, starts)]))


def test_batches_are_a_function_of_seed_and_step(store):
    a = ClipBatches(open_split(store, "train"), 4, 8, seed=7)
    b = ClipBatches(open_split(store, "train"), 4, 8, seed=7)
    assert _digest(a.batch(12)) == _digest(b.batch(12)) != _digest(a.batch(13))
    assert _digest(ClipBatches(open_split(store, "train"), 4, 8, seed=8).batch(12)) != _digest(a.batch(12))
    resumed = list(itertools.islice(b.stream(start=10), 3))
    assert [_digest(x) for x in resumed] == [_digest(a.batch(k)) for k in (10, 11, 12)]
    starts = np.concatenate([a.indices(k)[1] for k in range(20)])
    assert len(set(starts.tolist())) == 5  # random temporal crops use every offset 0..4


def test_workers_give_bit_identical_batches(store):
    plain = ClipBatches(open_split(store, "train"), 6, 10, seed=3)
    workers = ClipBatches(open_split(store, "train"), 6, 10, seed=3, num_workers=2)
    got = list(itertools.islice(workers.stream(start=4), 6))
    assert [_digest(x) for x in got] == [_digest(plain.batch(k)) for k in range(4, 10)]


def test_memory_map_is_reopened_not_copied(store):
    batches = ClipBatches(open_split(store, "train"), 4, 8)
    blob = pickle.dumps(batches)
    assert len(blob) < 2000  # the path travels, not the clips
    clone = pickle.loads(blob)
    assert isinstance(clone.clips, np.memmap) and _digest(clone.batch(3)) == _digest(batches.batch(3))
    part = ClipBatches(open_split(store, "train")[:10], 4, 8)  # a slice must not reopen as the whole file
    assert pickle.loads(pickle.dumps(part)).clips.shape[0] == 10


def test_spawned_worker_reopens_the_store(store):
    batches = ClipBatches(open_split(store, "train"), 4, 8, seed=5)
    loader = DataLoader(batches, batch_size=None, sampler=[6, 2], num_workers=1, multiprocessing_context="spawn")
    assert [_digest(x) for x in loader] == [_digest(batches.batch(6)), _digest(batches.batch(2))]


def test_in_memory_clips_work_with_workers():
    clips = np.random.default_rng(1).integers(0, 256, (9, 8, 8, 8, 3), dtype=np.uint8)
    plain, workers = ClipBatches(clips, 3, 8, seed=2), ClipBatches(clips, 3, 8, seed=2, num_workers=1)
    assert _digest(next(workers.stream(5))) == _digest(plain.batch(5))
    assert torch.equal(to_video_batch(to_clips(plain.batch(0))), plain.batch(0))


CHILD = textwrap.dedent("""
    import hashlib, sys
    from videogan.data.batches import ClipBatches
    from videogan.data.store import open_split
    batches = ClipBatches(open_split(sys.argv[1], "train"), 6, 10, seed=11, num_workers=2)
    for x in batches.stream(start=0):
        print(hashlib.sha256(x.numpy().tobytes()).hexdigest(), flush=True)
""")


def test_killed_stream_resumes_with_the_same_batches(store):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        seen = [child.stdout.readline().strip() for _ in range(5)]
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    resumed = ClipBatches(open_split(store, "train"), 6, 10, seed=11, num_workers=2)
    after = [_digest(x) for x in itertools.islice(resumed.stream(start=len(seen)), 4)]
    reference = ClipBatches(open_split(store, "train"), 6, 10, seed=11)
    assert seen + after == [_digest(reference.batch(k)) for k in range(9)]


def test_open_training_batches_checks_the_store_against_the_config(store):
    ok = load_config(None, ["data.frame_size=16", "data.frames=12", "model.frames=8"])
    batches = open_training_batches(ok, store, batch_size=4, seed=0, num_workers=0)
    assert batches.batch(0).shape == (4, 1, 8, 16, 16)
    with pytest.raises(StoreError, match="data.frame_size=32.*videogan preprocess"):
        open_training_batches(load_config(None, ["data.frame_size=32", "data.frames=12"]), store, 4, 0)
    with pytest.raises(StoreError, match="data.channels=3"):
        open_training_batches(
            load_config(None, ["data.frame_size=16", "data.channels=3", "data.frames=12"]), store, 4, 0
        )
    with pytest.raises(ConfigError, match="16 frames.*holds 12"):
        open_training_batches(load_config(None, ["data.frame_size=16", "data.frames=16"]), store, 4, 0)
