"""MLflow: one run per training run, continued on resume, joined by evaluate and render."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from videogan.config import Config, flatten, to_dict
from videogan.training.callbacks import Callback

from pipeline.common import repo_root, tracking_uri

RUN_ID_KEY = "mlflow_run_id"


def experiment_name(config: Config) -> str:
    """One experiment per dataset and clip shape: the demo and the full size never share one."""
    d = config.data
    return f"videogan-{d.dataset}-{d.frame_size}px-{d.frames}f"


def use_store(config: Config):
    import mlflow

    chosen_by_user = bool(os.environ.get("MLFLOW_TRACKING_URI"))  # read first: set_tracking_uri sets it
    mlflow.set_tracking_uri(tracking_uri())
    name = experiment_name(config)
    if mlflow.get_experiment_by_name(name) is None:
        location = None if chosen_by_user else (repo_root() / "mlartifacts").as_uri()
        mlflow.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)
    return mlflow


def git_commit() -> str:
    rev = os.environ.get("DVC_EXP_BASELINE_REV")
    if rev:
        return rev
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=repo_root())
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def run_tags(data_digest: str) -> dict[str, str]:
    return {"git_commit": git_commit(), "dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
            "data_digest": data_digest}


class MlflowCallback(Callback):
    """Training metrics per log step, snapshots, the final checkpoint and the generator as a model."""

    def __init__(self, config: Config, data_digest: str):
        self.config, self.data_digest = config, data_digest
        self.mlflow = use_store(config)

    def on_train_start(self, info: dict[str, Any]) -> None:
        mlflow, extra = self.mlflow, info["extra"]
        if info["resumed"] and extra.get(RUN_ID_KEY):
            mlflow.start_run(run_id=extra[RUN_ID_KEY])
            return
        name = os.environ.get("DVC_EXP_NAME") or f"train-{info['training_hash'][:8]}"
        run = mlflow.start_run(run_name=name, tags=run_tags(self.data_digest))
        extra[RUN_ID_KEY] = run.info.run_id
        params = flatten(to_dict(self.config))
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        self.mlflow.log_metrics({f"train/{k}": float(v) for k, v in metrics.items()}, step=step)

    def on_snapshot(self, step: int, path: Path) -> None:
        self.mlflow.log_artifact(str(path), "snapshots")

    def on_train_end(self, checkpoint: Path, metrics: dict[str, float]) -> None:
        self.mlflow.log_artifact(str(checkpoint), "checkpoint")
        log_generator_model(self.mlflow, checkpoint)
        self.mlflow.end_run()


def log_generator_model(mlflow, checkpoint: Path) -> None:
    """The final generator as an MLflow model: `mlflow.pytorch.load_model(uri)(z)` gives videos.
    Requirements are explicit (no inference, no network) and the package code travels with it."""
    import mlflow.pytorch
    import torch

    import videogan
    from videogan.sampling import load_generator

    generator, _, _ = load_generator(checkpoint)
    mlflow.pytorch.log_model(
        generator, name="generator", code_paths=[str(Path(videogan.__file__).parent)],
        serialization_format="pickle",
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "numpy", "pydantic", "PyYAML"],
    )


@contextmanager
def attached_run(config: Config, checkpoint: Path):
    """Join the training run recorded in `checkpoint` (for evaluate and render)."""
    from videogan.training import checkpoint as ckpt

    mlflow = use_store(config)
    run_id = ckpt.load(checkpoint, kinds=("full",)).get("extra", {}).get(RUN_ID_KEY)
    if run_id is None:
        name = os.environ.get("DVC_EXP_NAME") or "unrecorded-training"
        mlflow.start_run(run_name=name)
    else:
        mlflow.start_run(run_id=run_id)
    try:
        yield mlflow
    finally:
        mlflow.end_run()
