"""Stage `render`: GIF grids and training-curve plots in reports/, attached to the training's MLflow run."""

from __future__ import annotations

from prefect import task

from pipeline.common import load_params, workspace
from pipeline.stage import run_stage, stage_flow
from pipeline.tracking import attached_run


@task(cache_policy=None)
def render(config) -> list:
    from videogan.render import render_reports

    root = workspace()
    return render_reports(
        config,
        root / "data/processed",
        root / "models/checkpoint.pt",
        root / "models/snapshots",
        root / "reports/train_log.jsonl",
        root / "reports",
    )


@stage_flow("render")
def render_flow() -> None:
    config = load_params()
    written = render(config)
    with attached_run(config, workspace() / "models/checkpoint.pt") as mlflow:
        for path in written:
            mlflow.log_artifact(str(path), "media")
    print("render: " + ", ".join(p.name for p in written))


if __name__ == "__main__":
    run_stage(render_flow, tracked=True)
