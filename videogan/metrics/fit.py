"""Fit the evaluator on real clips, deterministically, and measure it on held-out clips."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from videogan.data.batches import to_video_batch
from videogan.devices import resolve_device
from videogan.metrics.config import EvaluatorConfig
from videogan.metrics.network import Architecture, Evaluator
from videogan.metrics.tasks import (
    NUM_CLASSES,
    covered,
    digit_batch,
    digit_size,
    frame_targets,
    order_batch,
    shuffle_half,
    visible_digits,
)


def fit_evaluator(
    train: np.ndarray,
    train_labels: dict | None,
    val: np.ndarray,
    val_labels: dict | None,
    cfg: EvaluatorConfig,
    digit: float | None = None,
    progress: bool = True,
) -> tuple[Evaluator, dict[str, float]]:
    """(fitted evaluator in eval mode on the CPU, held-out accuracy) from uint8 clips (N, T, H, W, C).

    Labels, where the source has them: `digits` (N, K) and `positions` (N, T, K, 2) in stored
    pixels; `digit` is a digit's side in stored pixels (default: 28 on a 64 canvas).
    """
    if train.shape[1] < 3:
        raise ValueError(f"clips have {train.shape[1]} frames; the evaluator needs at least 3")
    device = resolve_device(cfg.device, "evaluator.device")
    digit = digit or digit_size(train.shape[2])
    val, val_labels = val[: cfg.val_clips], _head(val_labels, cfg.val_clips)
    length = min(cfg.clip_frames, train.shape[1])
    rng = np.random.default_rng(cfg.seed)
    index = np.sort(rng.choice(len(train), min(len(train), cfg.max_clips), replace=False))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        digits_per_video = 0 if train_labels is None else int(np.asarray(train_labels["digits"]).shape[1])
        arch = Architecture(
            train.shape[-1],
            cfg.input_size,
            cfg.width,
            cfg.frame_dim,
            cfg.motion_dim,
            NUM_CLASSES if train_labels is not None else 0,
            digits_per_video,
        )
        model = Evaluator(arch).to(device)
    steps_per_epoch = math.ceil(len(index) / cfg.batch_size)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, cfg.epochs * steps_per_epoch)
    model.train()
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc="fit evaluator", disable=not progress, unit="step")
    for _ in range(cfg.epochs):
        order = rng.permutation(index)
        for start in range(0, len(order), cfg.batch_size):
            chunk = np.sort(order[start : start + cfg.batch_size])
            batches = [order_batch(train, chunk, length, rng)]
            if train_labels is not None:
                n = len(chunk) * length
                batches.append(digit_batch(train, train_labels, index, n, cfg.negatives, digit, rng))
            loss = sum(_loss(model, {k: v.to(device) for k, v in b.items()}) for b in batches)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]  # a sum of one or two loss tensors
            optimiser.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")  # type: ignore[union-attr]
    bar.close()
    model.eval()
    set_normalisation(model, val, device)
    accuracy = held_out_accuracy(model, val, val_labels, length, digit, cfg.seed, device)
    return model.cpu(), accuracy


def _head(labels: dict | None, n: int) -> dict | None:
    return None if labels is None else {k: np.asarray(v)[:n] for k, v in labels.items()}


def _loss(model: Evaluator, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Order loss on an order batch (the digit reader is not run on it); on a digit batch, the encoder's
    digit loss and the reader's, per frame and per cell."""
    out = model(batch["video"], read_digits="order" not in batch)
    if "order" in batch:
        return F.cross_entropy(out["order"], batch["order"])
    encoder = F.binary_cross_entropy_with_logits(out["encoder_digits"], batch["digits"])
    frames = F.binary_cross_entropy_with_logits(out["digits"], batch["digits"])
    cells = F.binary_cross_entropy_with_logits(
        out["digit_cells"], batch["digit_cells"], weight=batch["cell_weights"], reduction="sum"
    ) / batch["cell_weights"].sum().clamp_min(1)
    return encoder + frames + cells


def _batches(clips: np.ndarray, size: int = 64):
    for start in range(0, len(clips), size):
        yield start, to_video_batch(clips[start : start + size])


@torch.no_grad()
def set_normalisation(model: Evaluator, clips: np.ndarray, device: torch.device) -> None:
    """Centre the features on real clips and scale each block of them to unit variance."""
    parts: dict[str, list[torch.Tensor]] = {"frame": [], "video": []}
    for _, video in _batches(clips):
        raw = model.raw_features(video.to(device))
        parts["frame"].append(raw["frame"].flatten(0, 1))
        parts["video"].append(raw["video"])
    for name, blocks in (("frame", model.frame_blocks), ("video", model.video_blocks)):
        values = torch.cat(parts[name])
        getattr(model, f"{name}_mean").copy_(values.mean(0))
        scale = getattr(model, f"{name}_scale")
        for chunk, block in zip(values.split(list(blocks), dim=1), scale.split(list(blocks))):
            block.fill_(chunk.var(0).mean().sqrt().clamp_min(1e-6).item())


@torch.no_grad()
def held_out_accuracy(
    model: Evaluator, clips: np.ndarray, labels: dict | None, length: int, digit: float, seed: int, device: torch.device
) -> dict[str, float]:
    """Order accuracy on `length`-frame clips (shuffled or not, chance 0.5) and, with labels:
    - `each_digit`: the share of visible digits whose class the frame's prediction holds;
    - `digits`: the share of frames whose predicted digit set is exactly right;
    - `each_digit_clear`, `digits_clear`: the same over digits (frames) that no other digit covers by
      half or more. Overlapping digits are part of the data and count in the first two."""
    rng = np.random.default_rng([seed, 1])
    order_hits, hits = 0, {"each_digit": [0, 0], "digits": [0, 0], "each_digit_clear": [0, 0], "digits_clear": [0, 0]}
    for start, video in _batches(clips):
        shuffled, _, order = shuffle_half(np.asarray(clips[start : start + 64, :length]), rng)
        out = model(to_video_batch(shuffled).to(device))
        order_hits += int((out["order"].argmax(1).cpu().numpy() == order).sum())
        if labels is None:
            continue
        index = np.arange(start, start + len(video))
        targets = frame_targets(labels, index, clips.shape[1], clips.shape[2], digit) > 0.5
        predicted = model(video.to(device))["digits"].cpu().numpy() > 0  # (B, T, 10)
        visible = visible_digits(labels, index, clips.shape[1], clips.shape[2], digit)  # (B, T, K)
        clear = visible & (covered(labels, index, clips.shape[1], digit) < 0.5)
        classes = np.asarray(labels["digits"])[index][:, None, :].repeat(clips.shape[1], axis=1)
        named = np.take_along_axis(predicted, classes, axis=2)  # (B, T, K)
        exact = (predicted == targets).all(axis=2)  # (B, T)
        frame_clear = (clear | ~visible).all(axis=2)
        for name, ok, where in (
            ("each_digit", named, visible),
            ("digits", exact, np.ones_like(exact)),
            ("each_digit_clear", named, clear),
            ("digits_clear", exact, frame_clear),
        ):
            hits[name][0] += int(ok[where].sum())
            hits[name][1] += int(where.sum())
    accuracy = {"order": order_hits / len(clips)}
    if labels is not None:
        accuracy.update({name: hit / max(total, 1) for name, (hit, total) in hits.items()})
    return accuracy
