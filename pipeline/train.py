"""Stage `train`: train the GAN, resuming when the same config was interrupted; record it in MLflow."""

from __future__ import annotations

import pandas as pd
from prefect import task

from pipeline.common import load_params, workspace
from pipeline.search_study import trial_link
from pipeline.stage import run_stage, stage_flow
from pipeline.tracking import MlflowCallback


@task(cache_policy=None)
def train(config):
    from videogan.data.store import read_meta
    from videogan.training.api import train_from_store

    root = workspace()
    store = root / "data/processed"
    callbacks = [MlflowCallback(config, read_meta(store)["digest"])]
    if searched := trial_link():  # a trial of `python -m pipeline.search`: report snapshots, stop when pruned
        from pipeline.search_trial import TrialReporter

        callbacks.append(TrialReporter(*searched))
    return train_from_store(config, store, root, callbacks=callbacks)


@task(cache_policy=None)
def curves_for_dvc_plots() -> None:
    """DVC plots cannot read JSON lines: the same log as CSV, for `dvc plots show`."""
    reports = workspace() / "reports"
    pd.read_json(reports / "train_log.jsonl", lines=True).to_csv(reports / "train_log.csv", index=False)


@stage_flow("train")
def train_flow() -> None:
    result = train(load_params())
    curves_for_dvc_plots()
    print(
        f"train: step {result.step}, checkpoint {result.checkpoint}"
        + (f" (resumed from {result.resumed_from})" if result.resumed_from else "")
        + (f"; stopped early: {result.stopped_early}" if result.stopped_early else "")
    )


if __name__ == "__main__":
    run_stage(train_flow, tracked=True)
