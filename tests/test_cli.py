"""The `videogan` console script end to end: preprocess, train (killed and resumed), sample."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import TINY, gif_shown_ms

CLI = [sys.executable, "-m", "videogan.cli"]


def write_params(folder: Path, **train) -> Path:
    import yaml

    params = {**TINY, "train": {**TINY["train"], **train}}
    params["data"] = {**TINY["data"], "bouncing_squares": {"num_videos": 64}}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run(args, cwd, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True, env=env, **kw)


@pytest.fixture
def store(tmp_path):
    write_params(tmp_path)
    done = run(["preprocess"], tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path


@pytest.mark.e2e
def test_train_then_sample_a_gif(store):
    done = run(["train", "--no-tensorboard"], store)
    assert done.returncode == 0, done.stderr
    assert (store / "models/checkpoint.pt").exists()
    done = run(["sample", "--checkpoint", "models/checkpoint.pt", "--n", "6", "--out", "x.gif"], store)
    assert done.returncode == 0, done.stderr
    assert sum(gif_shown_ms(store / "x.gif")) == 8 * 120  # 8 frames at 8 fps (GIFs count centiseconds)
    done = run(["sample", "--checkpoint", "models/checkpoint.pt", "--n", "6", "--out", "x.npy", "--seed", "3"], store)
    clips = np.load(store / "x.npy")
    assert clips.shape == (6, 8, 16, 16, 1) and clips.dtype == np.uint8
    done = run(["sample", "--checkpoint", "models/checkpoint.pt", "--n", "6", "--out", "x.png", "--seed", "3"], store)
    import imageio.v3 as iio

    sheet = iio.imread(store / "x.png")  # 6 rows of 8 frames, each pixel 2 x 2, 2 px white gaps
    assert sheet.shape == (2 * (6 * 18 + 2), 2 * (8 * 18 + 2))
    assert (sheet[4:36, 4:36] == clips[0, 0, :, :, 0].repeat(2, 0).repeat(2, 1)).all()


@pytest.mark.e2e
def test_a_killed_training_resumes_where_it_stopped(store):
    write_params(store, iterations=400, resume_every=2, log_every=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        CLI + ["train", "--no-tensorboard"], cwd=store, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    log = store / "reports/train_log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 6):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(log.read_text().splitlines())
    write_params(store, iterations=killed_at + 4, resume_every=2, log_every=1)
    done = run(["train", "--no-tensorboard"], store)
    assert done.returncode == 0, done.stderr
    assert "resuming from step" in done.stdout + done.stderr
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == list(range(1, killed_at + 5))


def test_bad_params_name_the_key_and_write_nothing(tmp_path):
    write_params(tmp_path, loss="wgan", lrr=1)
    done = run(["train"], tmp_path)
    assert done.returncode == 1
    assert "train.loss" in done.stderr
    assert "'wgan-gp', 'basic', 'alternative', 'non-saturating' or 'hinge'" in done.stderr
    assert "train.lrr: unknown key" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "models").exists() and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("content", ["zeros", "pickle"])
def test_sample_refuses_a_damaged_or_foreign_checkpoint_without_relaying_unsafe_advice(tmp_path, content):
    bad = tmp_path / "c.pt"
    if content == "zeros":
        bad.write_bytes(b"\x00" * 100)
    else:  # a real torch file holding a class: weights_only refuses it, and PyTorch's message says how not to
        import argparse

        import torch

        torch.save({"weights": argparse.Namespace(a=1), "kind": "full"}, bad)
    done = run(["sample", "--checkpoint", str(bad), "--out", str(tmp_path / "x.gif")], tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"checkpoint {bad} is unreadable" in done.stderr and "not a checkpoint this project wrote" in done.stderr
    assert "weights_only" not in done.stderr and "succeed" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.gif").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_step_saves_a_resume_state_and_says_how_to_resume(store, sig):
    write_params(store, iterations=400, resume_every=1000, log_every=1)  # only the signal writes a resume state
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        CLI + ["train", "--no-tensorboard"],
        cwd=store,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = store / "reports/train_log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    said = re.search(
        r"training stopped by (SIG\w+) at step (\d+); its resume state is (\S+): run the same "
        r"command again to resume",
        err,
    )
    assert said and said[1] == sig.name, err
    step, resume_state = int(said[2]), store / said[3]
    assert resume_state.exists() and not list(store.rglob("*.tmp"))
    write_params(store, iterations=step + 2, resume_every=1000, log_every=1)
    done = run(["train", "--no-tensorboard"], store)
    assert done.returncode == 0 and f"resuming from step {step}" in done.stdout + done.stderr, done.stderr


@pytest.mark.e2e
def test_a_store_edited_after_preprocess_is_refused_naming_the_file(store):
    train = store / "data/processed/train.npy"
    clips = np.load(train)
    np.save(train, np.full_like(clips, 255))  # same shape, meta.json untouched
    done = run(["train", "--no-tensorboard"], store)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: data/processed/train.npy was changed after the store was written" in done.stderr
    assert "videogan preprocess" in done.stderr and not (store / "models").exists()
