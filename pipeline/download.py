"""Stage `download`: fetch the published dataset `data.dataset` needs into data/raw (nothing offline)."""

from __future__ import annotations

import json

from prefect import task

from pipeline.common import load_params, workspace
from pipeline.stage import run_stage, stage_flow


@task(cache_policy=None)  # no task retries: the downloader retries what is transient (a dropped connection,
def fetch(config):  # a timeout, HTTP 5xx/429) itself; an offline host or a wrong md5 fail at once
    from videogan.data.download import download_dataset

    return download_dataset(config.data, workspace() / "data/raw")


@stage_flow("download")
def download_flow() -> None:
    config = load_params()
    raw = workspace() / "data/raw"
    raw.mkdir(parents=True, exist_ok=True)
    got = fetch(config)
    # A record of what the stage produced, so data/raw is an output even for offline sources.
    (raw / "source.json").write_text(
        json.dumps({"dataset": config.data.dataset, "fetched": None if got is None else str(got.name)})
    )
    print(f"download: {config.data.dataset}: " + ("nothing to fetch (offline source)" if got is None else str(got)))


if __name__ == "__main__":
    run_stage(download_flow)
