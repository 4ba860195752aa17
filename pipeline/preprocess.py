"""Stage `preprocess`: build the clip store data/processed from data/raw (or offline generation)."""

from __future__ import annotations

from prefect import task

from pipeline.common import load_params, workspace
from pipeline.stage import run_stage, stage_flow


@task(cache_policy=None)
def build_store(config) -> dict:
    from videogan.data.preprocess import prepare

    root = workspace()
    return prepare(config, root / "data/raw", root / "data/processed")


@stage_flow("preprocess")
def preprocess_flow() -> None:
    meta = build_store(load_params())
    sizes = ", ".join(f"{k} {v}" for k, v in meta["sizes"].items())
    print(f"preprocess: {meta['source']} -> data/processed ({sizes}); digest {meta['digest'][:12]}")


if __name__ == "__main__":
    run_stage(preprocess_flow)
