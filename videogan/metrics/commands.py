"""`videogan fit-evaluator`, `videogan evaluate` and `videogan render` (registered in videogan/cli.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from videogan.console import user_errors
from videogan.errors import ConfigError

PARAMS = Annotated[Path, typer.Option("--params", help="params file (missing keys take the full-size defaults)")]
SET = Annotated[list[str] | None, typer.Option("--set", help="override a params key, e.g. evaluate.num_samples=500")]
STORE = Annotated[Path, typer.Option("--store", help="folder of the clip store")]
EVALUATOR = Annotated[Path, typer.Option("--evaluator", help="evaluator file")]
CHECKPOINT = Annotated[Path, typer.Option("--checkpoint", help="checkpoint to sample from")]
SNAPSHOTS = Annotated[Path, typer.Option("--snapshots", help="folder of step_NNNNNNN.pt generator snapshots")]


def _load(params: Path, overrides: list[str] | None):
    from videogan.config import load_config

    return load_config(params, overrides or [])


def fit_evaluator(
    params: PARAMS = Path("params.yaml"),
    set_: SET = None,
    store: STORE = Path("data/processed"),
    out: Annotated[Path, typer.Option("--out", help="evaluator file to write")] = Path("models/evaluator.pt"),
) -> None:
    """Fit the evaluator network on the real train split (deterministic) and report its held-out accuracy."""
    from videogan.metrics.run import fit_from_store

    started = time.perf_counter()
    with user_errors():
        info = fit_from_store(_load(params, set_), store, out)
    accuracy = ", ".join(f"{k} {v:.3f}" for k, v in info["accuracy"].items())
    typer.echo(
        f"evaluator {out} version {info['version']}: held-out accuracy {accuracy} "
        f"({time.perf_counter() - started:.1f} s)"
    )


def evaluate(
    params: PARAMS = Path("params.yaml"),
    set_: SET = None,
    store: STORE = Path("data/processed"),
    evaluator: EVALUATOR = Path("models/evaluator.pt"),
    checkpoint: CHECKPOINT = Path("models/checkpoint.pt"),
    snapshots: SNAPSHOTS = Path("models/snapshots"),
    out: Annotated[Path, typer.Option("--out", help="metrics file to write")] = Path("reports/metrics.json"),
    fake: Annotated[
        Path | None,
        typer.Option("--fake", help="score this uint8 (N, T, H, W, C) .npy instead of the checkpoint; prints only"),
    ] = None,
) -> None:
    """Score a checkpoint's samples (or any clip array) against the real test split, with references."""
    import numpy as np

    from videogan.metrics.run import evaluate_checkpoint, evaluate_clips
    from videogan.metrics.scoring import write_metrics

    with user_errors():
        config = _load(params, set_)
        if fake is not None:
            if not fake.exists():
                raise ConfigError(f"--fake {fake} does not exist: give a .npy clip array (N, T, H, W, C) uint8")
            try:
                clips = np.load(fake, mmap_mode="r")
            except ValueError as exc:
                raise ConfigError(f"{fake} is not a readable .npy array ({exc})") from None
            metrics = evaluate_clips(config, store, evaluator, clips)
        else:
            metrics = evaluate_checkpoint(config, store, evaluator, checkpoint, snapshots)
            write_metrics(metrics, out)
    typer.echo(json.dumps(metrics, indent=2))


def render(
    params: PARAMS = Path("params.yaml"),
    set_: SET = None,
    store: STORE = Path("data/processed"),
    checkpoint: CHECKPOINT = Path("models/checkpoint.pt"),
    snapshots: SNAPSHOTS = Path("models/snapshots"),
    log: Annotated[Path, typer.Option("--log", help="training log (one JSON object per line)")] = Path(
        "reports/train_log.jsonl"
    ),
    out: Annotated[Path, typer.Option("--out", help="folder for the GIFs and plots")] = Path("reports"),
) -> None:
    """GIF grids (samples, real vs generated, interpolation, snapshots) and training-curve plots."""
    from videogan.render import render_reports

    with user_errors():
        written = render_reports(_load(params, set_), store, checkpoint, snapshots, log, out)
    for path in written:
        typer.echo(f"wrote {path}")
