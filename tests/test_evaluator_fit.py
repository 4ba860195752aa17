"""The evaluator: deterministic fitting, its file and version, and features that see appearance and motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from test_metrics_moving_digits import fitted, moving_digits

from videogan.data.batches import to_video_batch
from videogan.data.squares import bouncing_squares
from videogan.metrics.artifact import (
    EvaluatorError,
    check_version,
    evaluator_version,
    load_evaluator,
    save_evaluator,
)
from videogan.metrics.config import EvaluatorConfig
from videogan.metrics.fit import fit_evaluator
from videogan.metrics.tasks import digit_batch, digit_free_clips, dust, frame_targets, order_batch

TINY = dict(
    input_size=16,
    width=8,
    frame_dim=16,
    motion_dim=16,
    clip_frames=4,
    epochs=1,
    batch_size=16,
    val_clips=32,
    device="cpu",
)


def tiny_fit(seed=0, labelled=True):
    clips, labels = moving_digits(48, frames=6, size=16, seed=seed)
    return fit_evaluator(
        clips,
        labels if labelled else None,
        clips[:32],
        labels if labelled else None,
        EvaluatorConfig(**TINY),
        progress=False,
    )


def test_fitting_twice_gives_the_same_weights():
    (a, acc_a), (b, acc_b) = tiny_fit(), tiny_fit()
    assert acc_a == acc_b
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_label_free_fit_has_no_classifier_and_reports_order_accuracy():
    model, accuracy = tiny_fit(labelled=False)
    assert model.classifier is None and set(accuracy) == {"order"}
    out = model.features(to_video_batch(moving_digits(4, frames=6, size=16)[0]))
    assert "probs" not in out and out["video"].shape == (4, 16 + 16 + 16)  # 2 x width channels at 16 px


@pytest.mark.slow
def test_label_free_evaluator_learns_to_spot_shuffled_frames():
    clips = bouncing_squares(600, 8, 16, square=3, seed=1)
    cfg = EvaluatorConfig(**{**TINY, "epochs": 4, "clip_frames": 8, "val_clips": 200})
    _, accuracy = fit_evaluator(clips[:400], None, clips[400:], None, cfg, progress=False)
    assert accuracy["order"] > 0.8


def test_video_features_are_capped_at_256_dims():
    assert EvaluatorConfig().width * 4 + EvaluatorConfig().frame_dim + EvaluatorConfig().motion_dim == 256
    with pytest.raises(ValidationError, match="<= 256"):
        EvaluatorConfig(frame_dim=100)
    model, _ = tiny_fit()
    assert model.features(to_video_batch(moving_digits(2, frames=6, size=16)[0]))["video"].shape == (2, 16 + 16 + 16)


def test_frame_targets_mark_only_digits_inside_the_frame():
    labels = {
        "digits": np.array([[3, 5]]),
        "positions": np.array([[[[0, 0], [20, 20]], [[0, 0], [40, 40]]]], np.float32),
    }
    targets = frame_targets(labels, np.array([0]), 2, frame_size=32, digit=14)
    assert targets[0, 0, [3, 5]].tolist() == [1, 1]
    assert targets[0, 1, [3, 5]].tolist() == [1, 0]  # the 5 has left the frame
    assert targets.sum() == 3


def test_training_batches_are_seeded():
    clips, labels = moving_digits(16, frames=6, size=16)
    for make in (
        lambda rng: order_batch(clips, np.arange(8), 4, rng),
        lambda rng: digit_batch(clips, labels, np.arange(16), 8, 0.25, 7.0, rng),
    ):
        a, b = make(np.random.default_rng(5)), make(np.random.default_rng(5))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_order_batch_shuffles_half_the_clips():
    clips, _ = moving_digits(64, frames=6, size=16)
    batch = order_batch(clips, np.arange(64), 5, np.random.default_rng(0))
    assert batch["video"].shape == (64, 1, 5, 16, 16) and 16 < int(batch["order"].sum()) < 48
    plain = to_video_batch(clips[:, :5])
    ordered = batch["order"] == 0
    # A clip labelled "in order" is some 5-frame window of its clip, frames unpermuted.
    windows = [torch.stack([to_video_batch(clips[i : i + 1, s : s + 5])[0] for s in range(2)]) for i in range(64)]
    assert all(any(torch.equal(batch["video"][i], w) for w in windows[i]) for i in np.nonzero(ordered.numpy())[0])
    assert plain.shape == batch["video"].shape


def test_digit_batch_labels_each_frame_and_adds_digit_free_frames():
    clips, labels = moving_digits(16, frames=6, size=16)
    batch = digit_batch(clips, labels, np.arange(16), 8, 0.25, 7.0, np.random.default_rng(1))
    assert batch["video"].shape == (8, 1, 1, 16, 16) and batch["digits"].shape == (8, 1, 10)
    assert (batch["digits"][:6].sum(dim=2) >= 1).all() and batch["digits"][6:].sum() == 0


def test_digit_free_clips_hold_no_digit_shapes():
    clips = digit_free_clips(6, (4, 16, 16, 1), np.random.default_rng(0))
    assert clips.dtype == np.uint8 and clips.shape == (6, 4, 16, 16, 1)


def test_dust_is_sparse_bright_pixels_on_black():
    clips = np.stack([dust((4, 32, 32, 1), np.random.default_rng(seed)) for seed in range(20)])
    lit = clips > 0
    assert 0.003 < lit.mean() < 0.2 and clips[lit].min() >= 128


def test_version_follows_data_and_params_but_not_device():
    cfg = EvaluatorConfig(**TINY)
    base = evaluator_version("digest-a", cfg)
    assert evaluator_version("digest-b", cfg) != base
    assert evaluator_version("digest-a", cfg.model_copy(update={"epochs": 2})) != base
    assert evaluator_version("digest-a", cfg.model_copy(update={"device": "auto"})) == base


def test_evaluator_file_round_trips_and_refuses_stale_use(tmp_path):
    model, accuracy = tiny_fit()
    cfg = EvaluatorConfig(**TINY)
    path = save_evaluator(tmp_path / "evaluator.pt", model, cfg, "digest-a", accuracy)
    loaded, info = load_evaluator(path)
    assert info["accuracy"] == accuracy and info["version"] == evaluator_version("digest-a", cfg)
    video = to_video_batch(moving_digits(3, frames=6, size=16)[0])
    assert torch.equal(loaded.features(video)["video"], model.features(video)["video"])
    check_version(info, "digest-a", cfg, path)
    with pytest.raises(EvaluatorError, match="clip store changed"):
        check_version(info, "digest-b", cfg, path)
    with pytest.raises(EvaluatorError, match="evaluator.epochs"):
        check_version(info, "digest-a", cfg.model_copy(update={"epochs": 3}), path)


def test_unreadable_evaluator_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "evaluator.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EvaluatorError, match="unreadable"):
        load_evaluator(bad)
    with pytest.raises(EvaluatorError, match="fit-evaluator"):
        load_evaluator(tmp_path / "missing.pt")


@pytest.mark.slow
def test_fitted_evaluator_sees_digits_appearance_and_motion():
    model, accuracy, _ = fitted()
    assert accuracy["order"] > 0.75 and accuracy["digits"] > 0.2  # 500 steps; the demo's fit gets further
    assert accuracy["each_digit_clear"] > 0.5 and accuracy["each_digit"] >= accuracy["digits"]
    clips, labels = moving_digits(64, seed=12)
    video = to_video_batch(clips)
    plain = model.features(video)
    shuffled = model.features(video[:, :, torch.randperm(video.shape[2], generator=torch.Generator().manual_seed(0))])
    other = model.features(to_video_batch(moving_digits(64, seed=13)[0]))
    split = sum(model.video_blocks[:2])
    # Shuffling keeps the frames (appearance blocks move little) but changes the motion block.
    appearance = (plain["video"][:, :split] - shuffled["video"][:, :split]).norm(dim=1).mean()
    motion = (plain["video"][:, split:] - shuffled["video"][:, split:]).norm(dim=1).mean()
    other_appearance = (plain["video"][:, :split] - other["video"][:, :split]).norm(dim=1).mean()
    assert motion > 2 * appearance and other_appearance > 2 * appearance
    # The classifier often names exactly the video's digits (chance: well under 1%).
    present = plain["probs"].mean(dim=1).numpy() >= 0.5
    truth = np.zeros_like(present)
    np.put_along_axis(truth, labels["digits"], True, axis=1)
    assert (present == truth).all(axis=1).mean() > 0.2


def test_label_free_scoring_skips_the_digit_metrics():
    from videogan.metrics.config import EvaluateConfig
    from videogan.metrics.scoring import Scorer, real_halves

    model, _ = tiny_fit(labelled=False)
    clips = bouncing_squares(60, 6, 16, seed=2)
    scorer = Scorer(model, real_halves(clips, 20, 6, seed=0), EvaluateConfig(num_samples=20, fvd={"enabled": False}))
    metrics = scorer.score(bouncing_squares(20, 6, 16, seed=3))
    assert {"fd_video", "fd_video_ref", "recall", "motion_error", "diversity"} <= set(metrics)
    assert not {"classes_covered", "modes_covered", "mode_kl", "recognisable_frames"} & set(metrics)
