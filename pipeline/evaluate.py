"""Stage `evaluate`: score the trained generator against the real test split (reports/metrics.json)."""

from __future__ import annotations

from prefect import task

from pipeline.common import load_params, workspace
from pipeline.stage import run_stage, stage_flow
from pipeline.tracking import attached_run


def search_record(checkpoint) -> tuple[dict, dict | None]:
    """(the search trial the training ran for, how it was pruned): ({}, None) outside a search."""
    from pipeline.search_study import PRUNED_KEY, SEARCH_KEY
    from videogan.training import checkpoint as ckpt

    extra = ckpt.load(checkpoint, kinds=("full",)).get("extra", {})
    return extra.get(SEARCH_KEY) or {}, extra.get(PRUNED_KEY)


def pruned_metrics(pruned: dict) -> dict:
    """What a pruned trial's reports/metrics.json says: pruned, where, and the score that got it pruned."""
    return {"pruned": 1, "pruned_at_step": pruned["step"], f"{pruned['metric']}_at_prune": pruned["value"]}


@task(cache_policy=None)
def score(config) -> dict:
    from videogan.metrics.run import evaluate_checkpoint

    root = workspace()
    return evaluate_checkpoint(
        config,
        root / "data/processed",
        root / "models/evaluator.pt",
        root / "models/checkpoint.pt",
        root / "models/snapshots",
    )


def evaluator_version() -> str:
    from videogan.metrics.artifact import load_evaluator

    return load_evaluator(workspace() / "models/evaluator.pt")[1]["version"]


@stage_flow("evaluate")
def evaluate_flow() -> None:
    from videogan.metrics.scoring import write_metrics

    config = load_params()
    checkpoint = workspace() / "models/checkpoint.pt"
    trial, pruned = search_record(checkpoint)
    if pruned:  # a search trial the pruner stopped: its score at that step, not a full evaluation
        metrics = pruned_metrics(pruned)
    else:
        metrics = score(config) | ({"pruned": 0} if trial else {})
    write_metrics(metrics, workspace() / "reports/metrics.json")
    with attached_run(config, checkpoint) as mlflow:
        if trial:
            mlflow.set_tags({"search.state": "PRUNED" if pruned else "COMPLETE", "search.study": trial["study"]})
        mlflow.set_tag("evaluator_version", evaluator_version())
        mlflow.log_metrics({f"eval/{k}": float(v) for k, v in metrics.items()})
        mlflow.log_artifact(str(workspace() / "reports/metrics.json"))
    shown = {
        k: round(v, 4)
        for k, v in metrics.items()
        if k
        in ("fd_video", "fd_video_init", "fd_video_ref", "fvd", "fvd_ref", "fvd_init", "recall", "recognisable_frames")
        or k.startswith("pruned")
    }
    print(f"evaluate: {shown}")


if __name__ == "__main__":
    run_stage(evaluate_flow, tracked=True)
