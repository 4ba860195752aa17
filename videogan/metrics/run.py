"""Evaluation on the clip store: fit the evaluator, score a checkpoint or any clip array.

These are what the CLI commands and the pipeline stages call; everything
below them works on arrays.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from videogan.config import Config
from videogan.data import store
from videogan.devices import resolve_device
from videogan.metrics.artifact import check_version, load_evaluator, save_evaluator
from videogan.metrics.fit import fit_evaluator
from videogan.metrics.scoring import Scorer, check_clip_array, real_halves
from videogan.metrics.tasks import digit_size

INIT_SNAPSHOT = "step_0000000.pt"


def _digit_labels(store_dir: Path, split: str) -> dict | None:
    labels = store.load_labels(store_dir, split)
    return labels if labels and "digits" in labels else None


def fit_from_store(config: Config, store_dir: str | Path, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Fit on the train split, measure on val, save to `out`; returns {version, accuracy, ...}."""
    store_dir = Path(store_dir)
    meta = store.verify_store(store_dir)
    train = store.open_split(store_dir, "train")
    val = store.open_split(store_dir, "val")
    digit = (meta.get("source_info") or {}).get("digit_size") or digit_size(train.shape[2])
    model, accuracy = fit_evaluator(
        train,
        _digit_labels(store_dir, "train"),
        val,
        _digit_labels(store_dir, "val"),
        config.evaluator,
        digit,
        progress,
    )
    save_evaluator(out, model, config.evaluator, meta["digest"], accuracy)
    _, info = load_evaluator(out)
    return info


def build_scorer(
    config: Config, store_dir: str | Path, evaluator_path: str | Path, frames: int, progress: bool = True
) -> tuple[Scorer, dict[str, Any]]:
    """A scorer on the test split's real halves, with the (version-checked) evaluator."""
    store_dir = Path(store_dir)
    meta = store.verify_store(store_dir)
    evaluator, info = load_evaluator(evaluator_path)
    check_version(info, meta["digest"], config.evaluator, evaluator_path)
    test = store.open_split(store_dir, "test")
    labels = _digit_labels(store_dir, "test")
    halves = real_halves(
        test, config.evaluate.num_samples, frames, config.evaluate.seed, None if labels is None else labels["digits"]
    )
    device = str(resolve_device(config.evaluate.device, "evaluate.device"))
    return Scorer(evaluator, halves, config.evaluate, device, progress, meta.get("source")), info


def _with_evaluator_info(metrics: dict[str, float], info: dict[str, Any]) -> dict[str, float]:
    accuracy = {f"evaluator_accuracy_{k}": float(v) for k, v in info["accuracy"].items()}
    return {**metrics, **accuracy}


def evaluate_clips(
    config: Config, store_dir: str | Path, evaluator_path: str | Path, clips: np.ndarray, progress: bool = True
) -> dict[str, float]:
    """Score any uint8 clip array (N, T, H, W, C) against the real test split."""
    scorer, info = build_scorer(config, store_dir, evaluator_path, check_clip_array(clips).shape[1], progress)
    return _with_evaluator_info(scorer.score(clips), info)


def evaluate_checkpoint(
    config: Config,
    store_dir: str | Path,
    evaluator_path: str | Path,
    checkpoint: str | Path,
    snapshots: str | Path,
    progress: bool = True,
) -> dict[str, float]:
    """Score `evaluate.num_samples` videos (seed `evaluate.seed`) of a checkpoint, and of its step-0 snapshot."""
    from videogan.models import build_generator
    from videogan.sampling import load_generator, sample_clips

    device = resolve_device(config.evaluate.device, "evaluate.device")
    n, seed, batch = config.evaluate.num_samples, config.evaluate.seed, config.evaluate.batch_size
    generator, saved, step = load_generator(checkpoint, device)
    scorer, info = build_scorer(config, store_dir, evaluator_path, generator.frames, progress)  # checks first
    fake = sample_clips(generator, n, seed, batch)
    init_path = Path(snapshots) / INIT_SNAPSHOT
    if init_path.exists():
        init_generator = load_generator(init_path, device)[0]
    else:  # same weights as the step-0 snapshot: build_generator is seeded by train.seed
        print(f"note: {init_path} not found; fd_video_init uses a freshly initialised generator", file=sys.stderr)
        init_generator = build_generator(saved).to(device).eval()
    init = sample_clips(init_generator, n, seed, batch)
    return {**_with_evaluator_info(scorer.score(fake, init), info), "step": step}
