"""Stage `evaluator`: fit the evaluation network on the real train split (models/evaluator.pt)."""

from __future__ import annotations

from prefect import task

from pipeline.common import load_params, workspace
from pipeline.stage import run_stage, stage_flow


@task(cache_policy=None)
def fit(config) -> dict:
    from videogan.metrics.run import fit_from_store

    root = workspace()
    return fit_from_store(config, root / "data/processed", root / "models/evaluator.pt")


@stage_flow("evaluator")
def evaluator_flow() -> None:
    info = fit(load_params())
    accuracy = ", ".join(f"{k} {v:.3f}" for k, v in info["accuracy"].items())
    print(f"evaluator: version {info['version']}, held-out accuracy {accuracy}")


if __name__ == "__main__":
    run_stage(evaluator_flow)
