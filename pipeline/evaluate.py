"""Stage `evaluate`: score the trained generator against the real test split (reports/metrics.json)."""

from __future__ import annotations

from prefect import task

from pipeline.common import load_params, workspace
from pipeline.stage import run_stage, stage_flow
from pipeline.tracking import attached_run


@task(cache_policy=None)
def score(config) -> dict:
    from videogan.metrics.run import evaluate_checkpoint
    from videogan.metrics.scoring import write_metrics

    root = workspace()
    metrics = evaluate_checkpoint(
        config,
        root / "data/processed",
        root / "models/evaluator.pt",
        root / "models/checkpoint.pt",
        root / "models/snapshots",
    )
    write_metrics(metrics, root / "reports/metrics.json")
    return metrics


def evaluator_version() -> str:
    from videogan.metrics.artifact import load_evaluator

    return load_evaluator(workspace() / "models/evaluator.pt")[1]["version"]


@stage_flow("evaluate")
def evaluate_flow() -> None:
    config = load_params()
    metrics = score(config)
    with attached_run(config, workspace() / "models/checkpoint.pt") as mlflow:
        mlflow.set_tag("evaluator_version", evaluator_version())
        mlflow.log_metrics({f"eval/{k}": float(v) for k, v in metrics.items()})
        mlflow.log_artifact(str(workspace() / "reports/metrics.json"))
    shown = {
        k: round(v, 4)
        for k, v in metrics.items()
        if k
        in ("fd_video", "fd_video_init", "fd_video_ref", "fvd", "fvd_ref", "fvd_init", "recall", "recognisable_frames")
    }
    print(f"evaluate: {shown}")


if __name__ == "__main__":
    run_stage(evaluate_flow, tracked=True)
