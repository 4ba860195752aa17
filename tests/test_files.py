"""Atomic writes: a full disk is one line and keeps the earlier file; killed writes leave nothing behind."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml
from support import TINY
from test_cli import run

from videogan.files import NoSpaceError, write_atomic


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MiB filesystem (tmpfs), so a write can really run out of space."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk, leave: int) -> None:
    """Leave about `leave` bytes free on `disk`."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * max(free - leave, 0))


def test_a_full_disk_is_one_error_naming_the_file_and_the_earlier_file_stays(small_disk):
    target = small_disk / "checkpoint.pt"
    write_atomic(b"old" * 1000, target)
    fill(small_disk, 64 << 10)
    with pytest.raises(NoSpaceError) as error:
        write_atomic(os.urandom(512 << 10), target)
    message = str(error.value)
    assert f"no space left to write {target}: it needs 0.5 MiB" in message, message
    assert "the earlier checkpoint.pt is intact" in message
    assert target.read_bytes() == b"old" * 1000
    assert sorted(p.name for p in small_disk.iterdir()) == ["checkpoint.pt", "filler"]


def test_a_writer_removes_the_temp_files_of_killed_writes_of_the_same_name(tmp_path):
    (tmp_path / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"half")
    (tmp_path / ".other.pt.k1ll3d.tmp").write_bytes(b"someone else's")
    write_atomic(b"whole", tmp_path / "checkpoint.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.k1ll3d.tmp", "checkpoint.pt"]


@pytest.mark.e2e
def test_training_on_a_full_disk_stops_with_one_line_and_keeps_the_last_states(small_disk, tmp_path):
    params = {
        **TINY,
        "data": {**TINY["data"], "bouncing_squares": {"num_videos": 64}},
        "train": {**TINY["train"], "iterations": 4, "resume_every": 2, "snapshot_every": 2},
    }
    (small_disk / "params.yaml").write_text(yaml.safe_dump(params))
    store = ["--store", str(tmp_path / "store")]
    assert run(["preprocess", "--out", str(tmp_path / "store")], small_disk).returncode == 0
    done = run(["train", "--no-tensorboard", *store], small_disk)
    assert done.returncode == 0, done.stderr
    kept = {p: p.read_bytes() for p in [small_disk / "models/checkpoint.pt", *small_disk.glob(".videogan/resume/*")]}
    fill(small_disk, 16 << 10)
    done = run(["train", "--no-tensorboard", *store, "--set", "train.iterations=8"], small_disk)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("train:")]
    assert len(errors) == 1 and errors[0].startswith("error: no space left to write "), done.stderr
    assert "MiB free" in errors[0] and "rerun" in errors[0]
    assert all(path.read_bytes() == data for path, data in kept.items())
    assert not list(small_disk.rglob("*.tmp"))


def test_a_clip_store_that_does_not_fit_is_one_error_and_the_old_store_stays(small_disk):
    import numpy as np

    from videogan.data.store import verify_store, write_store

    small = {s: np.full((4, 8, 16, 16, 1), i, np.uint8) for i, s in enumerate(("train", "val", "test"))}
    write_store(small_disk / "store", small, None, {"source": "test"})
    big = {s: np.zeros((40, 8, 64, 64, 1), np.uint8) for s in ("train", "val", "test")}  # 3.75 MiB
    fill(small_disk, 1 << 20)
    with pytest.raises(
        NoSpaceError,
        match=r"no space left to write .*/store: it needs 3.8 MiB .*"
        r"\(the store there is as it was\)",
    ):
        write_store(small_disk / "store", big, None, {"source": "test"})
    assert verify_store(small_disk / "store")["shapes"]["train"] == [4, 8, 16, 16, 1]
    assert not [p.name for p in (small_disk / "store").iterdir() if p.name.startswith(".")]


def test_files_get_the_umasks_mode_and_private_ones_0600(tmp_path):
    old = os.umask(0o022)
    try:
        assert write_atomic(b"x", tmp_path / "report.json").stat().st_mode & 0o777 == 0o644
        assert write_atomic(b"x", tmp_path / "secret", private=True).stat().st_mode & 0o777 == 0o600
        os.umask(0o077)
        assert write_atomic(b"x", tmp_path / "report.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
